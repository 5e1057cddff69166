"""Keys: the two allowed key types, their PEM and wire forms, and fingerprints.

On the wire a public key is its DER SubjectPublicKeyInfo: one self-describing form for both key types,
the one X.509 certificates already carry. A fingerprint is SHA-256 over those exact bytes.
"""

from __future__ import annotations

from enum import StrEnum
import hashlib

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .errors import InvalidKeyError, UnsupportedAlgorithmError, describe

type PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
type PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

#: COSE algorithm identifiers (IANA COSE Algorithms registry).
ALG_EDDSA = -8
ALG_ES256 = -7
ALLOWED_ALGORITHMS = frozenset({ALG_EDDSA, ALG_ES256})

FINGERPRINT_SIZE = 32
_MAX_KEY_BYTES = 1024


class KeyType(StrEnum):
    """The key types AutoAdd allows, everywhere a key appears."""

    ED25519 = "ed25519"
    P256 = "p256"


def generate_private_key(key_type: KeyType = KeyType.ED25519) -> PrivateKey:
    """Make a fresh private key of the given type."""
    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def key_type_of(key: PrivateKey | PublicKey) -> KeyType:
    """Say which allowed type a key is, or refuse it."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return KeyType.ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return KeyType.P256
    raise UnsupportedAlgorithmError(f"{type(key).__name__} is not an Ed25519 or P-256 key")


def algorithm_for(key: PrivateKey | PublicKey) -> int:
    """The COSE algorithm a key signs with: EdDSA for Ed25519, ES256 for P-256."""
    return ALG_EDDSA if key_type_of(key) is KeyType.ED25519 else ALG_ES256


def _checked_public(key: object) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        key_type_of(key)
        return key
    raise UnsupportedAlgorithmError(f"{type(key).__name__} is not an Ed25519 or P-256 key")


def _checked_private(key: object) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        key_type_of(key)
        return key
    raise UnsupportedAlgorithmError(f"{type(key).__name__} is not an Ed25519 or P-256 key")


def public_key_to_bytes(key: PublicKey) -> bytes:
    """The wire form of a public key: DER SubjectPublicKeyInfo."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_from_bytes(data: bytes) -> PublicKey:
    """Load a public key from its wire form, refusing anything but Ed25519 and P-256."""
    if len(data) > _MAX_KEY_BYTES:
        raise InvalidKeyError("public key is larger than any Ed25519 or P-256 key")
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidKeyError(f"not a DER SubjectPublicKeyInfo ({describe(err)})") from err
    checked = _checked_public(key)
    if public_key_to_bytes(checked) != data:
        raise InvalidKeyError("public key is not in canonical DER form")
    return checked


def fingerprint(key: PublicKey) -> bytes:
    """SHA-256 over the key's wire form: how a key is named in headers, logs and the UI."""
    return hashlib.sha256(public_key_to_bytes(key)).digest()


#: Groups of four hex digits a fingerprint is shown with (§2.3): 128 bits, so making a key that shows the
#: same digits takes ~2^128 tries (64 bits would be within reach); one form on every screen, log line and
#: tool, so any two can be compared digit for digit.
DISPLAY_GROUPS = 8


def format_fingerprint(digest: bytes) -> str:
    """The fingerprint as people see it (§2.3): the first 32 hex digits, lowercase, in 8 groups of 4."""
    text = digest[: DISPLAY_GROUPS * 2].hex()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def private_key_to_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: storage protection is the caller's job (HA's storage, file modes)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pem(data: bytes) -> PrivateKey:
    """Load an unencrypted PEM private key (PKCS#8 or the traditional forms `openssl` writes)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, InternalError) as err:  # OpenSSL rejects some keys
        raise InvalidKeyError(f"not an unencrypted PEM private key ({describe(err)})") from err
    return _checked_private(key)


def public_key_to_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_from_pem(data: bytes) -> PublicKey:
    """Load a PEM public key."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidKeyError(f"not a PEM public key ({describe(err)})") from err
    return _checked_public(key)

"""Keys: the two allowed key types, their PEM and wire forms, and fingerprints.

On the wire a public key is its DER SubjectPublicKeyInfo: one self-describing form for both key types,
the one X.509 certificates already carry. A fingerprint is SHA-256 over those exact bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
import hashlib
import threading
from typing import Any

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
    known = _FORMS.kind(key)
    if known is not None:
        return known
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


#: DER SubjectPublicKeyInfo up to the key itself: Ed25519 (RFC 8410 §4) and P-256 with the named curve and
#: an uncompressed point (RFC 5480 §2). cryptography writes exactly these, so a key's wire form is the
#: prefix followed by its raw public key; reading it that way skips an export through OpenSSL's encoders.
_SPKI_PREFIX_ED25519 = bytes.fromhex("302a300506032b6570032100")
_SPKI_PREFIX_P256 = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


class _WireForms:
    """What is known about public keys in use, so each key is parsed and exported once, not per use.

    A chain verify names every owner key several times (kid lookup, signer, owner fingerprints), and each
    DER export costs about as much as a fifth of a signature check; the same owner keys come back in link
    after link and chain after chain. Key objects are immutable but neither hashable nor weakly
    referenceable, so entries are keyed by identity and hold the key itself: its id cannot be reused while
    the entry lives. Keys read from the wire are also kept by their bytes (reading is a pure function of
    them), with their type. The oldest entries go first once `size` are held.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[int, tuple[PublicKey, bytes, bytes, KeyType | None]] = {}
        self._read: dict[bytes, PublicKey] = {}
        self._lock = threading.Lock()  # verification may run in executor threads as well as the loop

    def get(self, key: PublicKey) -> tuple[bytes, bytes] | None:
        entry = self._entries.get(id(key))
        return (entry[1], entry[2]) if entry is not None and entry[0] is key else None

    def kind(self, key: PrivateKey | PublicKey) -> KeyType | None:
        entry = self._entries.get(id(key))
        return entry[3] if entry is not None and entry[0] is key else None

    def read(self, der: bytes) -> PublicKey | None:
        return self._read.get(der)

    def put(self, key: PublicKey, der: bytes, kind: KeyType | None = None) -> tuple[bytes, bytes]:
        forms = (der, hashlib.sha256(der).digest())
        with self._lock:
            if len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[id(key)] = (key, *forms, kind)
            if kind is not None:
                if len(self._read) >= self._size:
                    del self._read[next(iter(self._read))]
                self._read[der] = key
        return forms


_FORMS = _WireForms(4096)


def _wire_forms(key: PublicKey) -> tuple[bytes, bytes]:
    known = _FORMS.get(key)
    if known is not None:
        return known
    return _FORMS.put(
        key,
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def public_key_to_bytes(key: PublicKey) -> bytes:
    """The wire form of a public key: DER SubjectPublicKeyInfo."""
    return _wire_forms(key)[0]


def _spki(key: PublicKey) -> bytes:
    """The canonical DER of a checked key, built from its raw form (see `_SPKI_PREFIX_ED25519`)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _SPKI_PREFIX_ED25519 + key.public_bytes_raw()
    return _SPKI_PREFIX_P256 + key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def public_key_from_bytes(data: bytes) -> PublicKey:
    """Load a public key from its wire form, refusing anything but Ed25519 and P-256."""
    if len(data) > _MAX_KEY_BYTES:
        raise InvalidKeyError("public key is larger than any Ed25519 or P-256 key")
    cacheable = type(data) is bytes  # only immutable bytes are kept (a caller may pass a bytearray)
    known = _FORMS.read(data) if cacheable else None
    if known is not None:
        return known
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidKeyError(f"not a DER SubjectPublicKeyInfo ({describe(err)})") from err
    checked = _checked_public(key)
    # The canonical form, read cheaply; anything else is compared with the full export, so a key is
    # refused exactly when its export differs from the bytes received.
    if _spki(checked) != data and public_key_to_bytes(checked) != data:
        raise InvalidKeyError("public key is not in canonical DER form")
    if cacheable:  # a checked key that is not Ed25519 is P-256
        kind = KeyType.ED25519 if isinstance(checked, ed25519.Ed25519PublicKey) else KeyType.P256
        _FORMS.put(checked, data, kind)
    return checked


class _Own:
    """Per private key in use (few: the home keys, a device's IDevID key), what is derived from it once:
    its public key object (so that the wire forms above are found again) and whatever a caller keeps
    under a name (cose.py keeps its signing key object). Keyed by identity, holding the key itself."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[int, tuple[PrivateKey, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def of(self, key: PrivateKey) -> dict[str, Any]:
        entry = self._entries.get(id(key))
        if entry is not None and entry[0] is key:
            return entry[1]
        derived: dict[str, Any] = {"public": key.public_key()}
        with self._lock:
            if len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[id(key)] = (key, derived)
        return derived


_OWN = _Own(256)


def public_key_of(key: PrivateKey) -> PublicKey:
    """The key's public key, the same object every time (its fingerprint and DER are computed once)."""
    public: PublicKey = _OWN.of(key)["public"]
    return public


def derived[T](key: PrivateKey, name: str, make: Callable[[], T]) -> T:
    """What `make()` derives from `key`, made once per key and kept under `name`."""
    forms = _OWN.of(key)
    if name not in forms:
        forms[name] = make()
    value: T = forms[name]
    return value


def fingerprint(key: PublicKey) -> bytes:
    """SHA-256 over the key's wire form: how a key is named in headers, logs and the UI."""
    return _wire_forms(key)[1]


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

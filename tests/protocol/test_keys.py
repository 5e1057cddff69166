"""Keys: only Ed25519 and P-256, one canonical wire form, fingerprints over that form."""

from __future__ import annotations

import hashlib
import inspect

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
import pytest

from custom_components.autoadd.protocol.errors import InvalidKeyError, UnsupportedAlgorithmError
from custom_components.autoadd.protocol.keys import (
    ALG_EDDSA,
    ALG_ES256,
    KeyType,
    algorithm_for,
    fingerprint,
    format_fingerprint,
    generate_private_key,
    key_type_of,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_bytes,
    public_key_from_pem,
    public_key_to_bytes,
    public_key_to_pem,
)
from tests.factory import fixed_key


def _pkcs8(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(key: object, encoding: serialization.Encoding = serialization.Encoding.DER) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | x25519.X25519PublicKey)
    return key.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key, generated once (it is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _p384() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


# --- What is allowed --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "algorithm", "cls"),
    [
        (KeyType.ED25519, ALG_EDDSA, ed25519.Ed25519PrivateKey),
        (KeyType.P256, ALG_ES256, ec.EllipticCurvePrivateKey),
    ],
)
def test_generated_key_has_its_type_and_algorithm(key_type: KeyType, algorithm: int, cls: type) -> None:
    """A generated key is of the asked type, and signs with EdDSA (Ed25519) or ES256 (P-256)."""
    key = generate_private_key(key_type)
    assert isinstance(key, cls)
    assert key_type_of(key) is key_type
    assert key_type_of(key.public_key()) is key_type
    assert algorithm_for(key) == algorithm
    assert algorithm_for(key.public_key()) == algorithm


def test_default_generated_key_is_ed25519() -> None:
    """With no type given, a new key is Ed25519."""
    assert key_type_of(generate_private_key()) is KeyType.ED25519


def test_fresh_keys_differ() -> None:
    """Two generated keys are never the same key."""
    assert fingerprint(generate_private_key().public_key()) != fingerprint(
        generate_private_key().public_key()
    )


@pytest.mark.parametrize("key_type", list(KeyType))
def test_private_pem_round_trip(key_type: KeyType) -> None:
    """A private key written as PKCS#8 PEM reads back as the same key."""
    key = generate_private_key(key_type)
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = private_key_from_pem(pem)
    assert key_type_of(again) is key_type
    assert public_key_to_bytes(again.public_key()) == public_key_to_bytes(key.public_key())


def test_traditional_ec_pem_is_accepted() -> None:
    """A P-256 key in the traditional `BEGIN EC PRIVATE KEY` form (what openssl writes) is read too."""
    key = fixed_key("traditional", KeyType.P256)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert public_key_to_bytes(private_key_from_pem(pem).public_key()) == public_key_to_bytes(
        key.public_key()
    )


@pytest.mark.parametrize("key_type", list(KeyType))
def test_public_pem_round_trip(key_type: KeyType) -> None:
    """A public key written as SubjectPublicKeyInfo PEM reads back as the same key."""
    public = generate_private_key(key_type).public_key()
    pem = public_key_to_pem(public)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_key_to_bytes(public_key_from_pem(pem)) == public_key_to_bytes(public)


@pytest.mark.parametrize(("key_type", "size"), [(KeyType.ED25519, 44), (KeyType.P256, 91)])
def test_wire_form_round_trip(key_type: KeyType, size: int) -> None:
    """The wire form is DER SubjectPublicKeyInfo (uncompressed for P-256) and reads back unchanged."""
    public = fixed_key("wire", key_type).public_key()
    wire = public_key_to_bytes(public)
    assert len(wire) == size
    assert wire == public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    again = public_key_from_bytes(wire)
    assert key_type_of(again) is key_type
    assert public_key_to_bytes(again) == wire


@pytest.mark.parametrize("key_type", list(KeyType))
def test_fingerprint_is_sha256_of_spki_der(key_type: KeyType) -> None:
    """A key's fingerprint is SHA-256 over its DER SubjectPublicKeyInfo, for private and public keys alike."""
    public = fixed_key("fingerprint", key_type).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert fingerprint(public) == hashlib.sha256(der).digest()
    assert len(fingerprint(public)) == 32


def test_format_fingerprint_shows_eight_groups_of_four() -> None:
    """The readable fingerprint is the first 8 groups of 4 lowercase hex digits, space separated."""
    digest = bytes(range(32))
    assert format_fingerprint(digest) == "0001 0203 0405 0607 0809 0a0b 0c0d 0e0f"


def test_format_fingerprint_has_one_form() -> None:
    """Every screen shows the same 128 bits: no caller can ask for fewer groups; short input stays short."""
    assert list(inspect.signature(format_fingerprint).parameters) == ["digest"]
    assert format_fingerprint(bytes.fromhex("abcdef0123")) == "abcd ef01 23"
    assert format_fingerprint(b"") == ""


# --- What is refused ---------------------------------------------------------------------------------------


def test_rsa_key_type_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """An RSA key has no key type and no algorithm in AutoAdd."""
    with pytest.raises(UnsupportedAlgorithmError) as err:
        key_type_of(rsa_key)  # type: ignore[arg-type]
    assert err.value.code == "unsupported_algorithm"
    with pytest.raises(UnsupportedAlgorithmError):
        algorithm_for(rsa_key.public_key())  # type: ignore[arg-type]


def test_p384_key_type_is_refused() -> None:
    """An elliptic-curve key on another curve than P-256 is refused."""
    key = _p384()
    with pytest.raises(UnsupportedAlgorithmError) as err:
        key_type_of(key)
    assert err.value.code == "unsupported_algorithm"
    with pytest.raises(UnsupportedAlgorithmError):
        key_type_of(key.public_key())


def test_rsa_private_pem_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """An RSA private key PEM is refused as an unsupported algorithm."""
    with pytest.raises(UnsupportedAlgorithmError) as err:
        private_key_from_pem(_pkcs8(rsa_key))
    assert err.value.code == "unsupported_algorithm"


def test_p384_private_pem_is_refused() -> None:
    """A P-384 private key PEM is refused as an unsupported algorithm."""
    with pytest.raises(UnsupportedAlgorithmError) as err:
        private_key_from_pem(_pkcs8(_p384()))
    assert err.value.code == "unsupported_algorithm"


def test_x25519_private_pem_is_refused() -> None:
    """An X25519 (key agreement) private key PEM is refused: it cannot sign."""
    with pytest.raises(UnsupportedAlgorithmError) as err:
        private_key_from_pem(_pkcs8(x25519.X25519PrivateKey.generate()))
    assert err.value.code == "unsupported_algorithm"


@pytest.mark.parametrize("which", ["rsa", "p384", "x25519"])
def test_other_public_keys_are_refused_in_every_form(which: str, rsa_key: rsa.RSAPrivateKey) -> None:
    """RSA, P-384 and X25519 public keys are refused from PEM and from the wire form."""
    public: object
    if which == "rsa":
        public = rsa_key.public_key()
    elif which == "p384":
        public = _p384().public_key()
    else:
        public = x25519.X25519PrivateKey.generate().public_key()
    with pytest.raises(UnsupportedAlgorithmError) as err:
        public_key_from_pem(_spki(public, serialization.Encoding.PEM))
    assert err.value.code == "unsupported_algorithm"
    with pytest.raises(UnsupportedAlgorithmError) as err:
        public_key_from_bytes(_spki(public))
    assert err.value.code == "unsupported_algorithm"


def test_encrypted_private_pem_is_refused() -> None:
    """A password-protected PEM is refused: storage protection is not the key file's job here."""
    key = fixed_key("encrypted")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(InvalidKeyError) as err:
        private_key_from_pem(pem)
    assert err.value.code == "invalid_key"


@pytest.mark.parametrize(
    "data", [b"", b"not a pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_garbage_private_pem_is_refused(data: bytes) -> None:
    """Bytes that are not a PEM private key are an invalid key."""
    with pytest.raises(InvalidKeyError) as err:
        private_key_from_pem(data)
    assert err.value.code == "invalid_key"


@pytest.mark.parametrize(
    "data", [b"", b"not a pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
)
def test_garbage_public_pem_is_refused(data: bytes) -> None:
    """Bytes that are not a PEM public key are an invalid key."""
    with pytest.raises(InvalidKeyError) as err:
        public_key_from_pem(data)
    assert err.value.code == "invalid_key"


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x30\x03\x02\x01\x01", bytes(44), b"garbage" * 10])
def test_wire_form_garbage_is_refused(data: bytes) -> None:
    """Bytes that are not a DER SubjectPublicKeyInfo are an invalid key."""
    with pytest.raises(InvalidKeyError) as err:
        public_key_from_bytes(data)
    assert err.value.code == "invalid_key"


def test_wire_form_oversize_is_refused_before_parsing() -> None:
    """More than 1024 bytes can be no Ed25519 or P-256 key, even if a valid key starts them."""
    wire = public_key_to_bytes(fixed_key("oversize").public_key())
    with pytest.raises(InvalidKeyError, match="larger than any") as err:
        public_key_from_bytes(wire + bytes(1024))
    assert err.value.code == "invalid_key"


def test_wire_form_compressed_point_is_non_canonical() -> None:
    """A P-256 SPKI with a compressed point is a second encoding of the same key, so it is refused."""
    public = fixed_key("compressed", KeyType.P256).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    uncompressed = public_key_to_bytes(public)
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    # SEQUENCE { AlgorithmIdentifier (id-ecPublicKey, prime256v1), BIT STRING { compressed point } }
    algorithm = uncompressed[2:23]
    assert algorithm[:2] == b"\x30\x13"
    spki = b"\x30\x39" + algorithm + b"\x03\x22\x00" + point
    assert ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point) == public
    loaded = serialization.load_der_public_key(spki)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded == public  # the same key, differently encoded
    with pytest.raises(InvalidKeyError, match="canonical") as err:
        public_key_from_bytes(spki)
    assert err.value.code == "invalid_key"


def test_wire_form_with_trailing_bytes_is_refused() -> None:
    """A valid key followed by anything is refused."""
    wire = public_key_to_bytes(fixed_key("trailing").public_key())
    with pytest.raises(InvalidKeyError) as err:
        public_key_from_bytes(wire + b"\x00")
    assert err.value.code == "invalid_key"

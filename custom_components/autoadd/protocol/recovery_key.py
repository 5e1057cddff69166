"""The recovery key string: the home's recovery private key as the owner prints and keeps it (§5.1).

    AARK1-ABCDE-FGHIJ-...

`AARK1-` then RFC 4648 base32 (no padding) of:  key type (1 byte) || private key || checksum (4 bytes),
in groups of five. The private key is Ed25519's 32-byte seed (RFC 8032) or P-256's 32-byte scalar, big
endian. The checksum is the first 4 bytes of SHA-256("AutoAdd recovery key" || type || key): another
domain than the home key string's, so neither string is ever read as the other. Home Assistant keeps only
the public part; the owner types this string back to restore the home on a new Home Assistant.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .errors import RecoveryKeyStringError
from .home_key import clean, decode, grouped
from .keys import KeyType, PrivateKey, key_type_of

PREFIX = "AARK1"
_DOMAIN = b"AutoAdd recovery key"
_TYPE_BYTES = {KeyType.ED25519: 0x01, KeyType.P256: 0x02}
_KEY_SIZE = 32
#: Characters after the prefix: base32 of 1 + 32 + 4 bytes.
LENGTH = 60
#: Characters the owner types back to show they kept the string: its last group.
CONFIRM_CHARACTERS = 5


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + body).digest()[:4]


def _raw(key: PrivateKey) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
    return key.private_numbers().private_value.to_bytes(_KEY_SIZE)


def format_recovery_key(key: PrivateKey) -> str:
    """The recovery key string for a private key."""
    body = bytes([_TYPE_BYTES[key_type_of(key.public_key())]]) + _raw(key)
    return grouped(PREFIX, body + _checksum(body))


def parse_recovery_key(text: str) -> PrivateKey:
    """Read a recovery key string back into its private key, or say exactly what is wrong with it."""
    _, data = clean(text, (PREFIX,), "a recovery key string", RecoveryKeyStringError)
    body = decode(data, {LENGTH}, "a recovery key", _checksum, RecoveryKeyStringError)
    type_byte, raw = body[0], body[1:]
    if type_byte == _TYPE_BYTES[KeyType.ED25519]:
        return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    if type_byte != _TYPE_BYTES[KeyType.P256]:
        raise RecoveryKeyStringError("key_type", f"unknown key type {type_byte}")
    value = int.from_bytes(raw)
    if not 0 < value < _P256_ORDER:
        raise RecoveryKeyStringError("key", "the key is not a P-256 private key (out of range)")
    return ec.derive_private_key(value, ec.SECP256R1())


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

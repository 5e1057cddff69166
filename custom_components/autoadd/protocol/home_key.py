"""The home key string: the text a home owner gives a shop or a seller so invoices can name their home.

    AAHK1-ABCDE-FGHIJ-...

`AAHK1-` then RFC 4648 base32 (no padding) of:  key type (1 byte) || public key || checksum (4 bytes),
in groups of five separated by dashes. The public key is compact: Ed25519's 32 raw bytes, or P-256's
33-byte compressed point. The checksum is the first 4 bytes of SHA-256("AutoAdd home key" || type || key),
so a mistyped or swapped character is caught (a random error slips through with odds of 1 in 2^32).
All characters are in QR's alphanumeric set, so the string makes a small QR code as it is.
Parsing ignores case, spaces and dashes, and says what is wrong with a bad string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .errors import HomeKeyStringError, describe
from .keys import KeyType, PublicKey, key_type_of

PREFIX = "AAHK1"
_CHECKSUM_DOMAIN = b"AutoAdd home key"
_CHECKSUM_SIZE = 4
_GROUP = 5
_TYPE_BYTES = {KeyType.ED25519: 0x01, KeyType.P256: 0x02}
_KEY_SIZES = {0x01: 32, 0x02: 33}
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(_CHECKSUM_DOMAIN + body).digest()[:_CHECKSUM_SIZE]


def _compact(key: PublicKey) -> bytes:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)


def format_home_key(key: PublicKey) -> str:
    """The home key string for a public key."""
    body = bytes([_TYPE_BYTES[key_type_of(key)]]) + _compact(key)
    text = base64.b32encode(body + _checksum(body)).decode("ascii").rstrip("=")
    groups = [text[i : i + _GROUP] for i in range(0, len(text), _GROUP)]
    return "-".join([PREFIX, *groups])


def parse_home_key(text: str) -> PublicKey:
    """Read a home key string back into a public key, or say exactly what is wrong with it."""
    if not text.isascii():
        position = next(i for i, char in enumerate(text, start=1) if not char.isascii())
        raise HomeKeyStringError(
            "characters", f"character {position}, {text[position - 1]!r}, is not A-Z or 2-7"
        )
    cleaned = "".join(text.split()).replace("-", "").upper()
    if not cleaned.startswith(PREFIX):
        raise HomeKeyStringError("prefix", f"a home key string starts with {PREFIX}-")
    data = cleaned[len(PREFIX) :]
    for position, char in enumerate(data, start=1):
        if char not in _ALPHABET:
            raise HomeKeyStringError(
                "characters", f"character {position} after the prefix, {char!r}, is not A-Z or 2-7"
            )
    expected = {(8 * (1 + size + _CHECKSUM_SIZE) + 4) // 5 for size in _KEY_SIZES.values()}
    if len(data) not in expected:
        raise HomeKeyStringError(
            "length",
            f"{len(data)} characters after the prefix; a home key has "
            f"{' or '.join(map(str, sorted(expected)))}",
        )
    try:
        raw = base64.b32decode(data + "=" * (-len(data) % 8))
    except binascii.Error as err:
        raise HomeKeyStringError("length", f"not a whole base32 string ({describe(err)})") from err
    body, checksum = raw[:-_CHECKSUM_SIZE], raw[-_CHECKSUM_SIZE:]
    # The last character's unused low bits are not read back by b32decode: a typo there must not pass.
    if _checksum(body) != checksum or base64.b32encode(raw).decode("ascii").rstrip("=") != data:
        raise HomeKeyStringError("checksum", "checksum does not match: a character is mistyped or missing")
    type_byte, compact = body[0], body[1:]
    if type_byte not in _KEY_SIZES:
        raise HomeKeyStringError("key_type", f"unknown key type {type_byte}")
    if len(compact) != _KEY_SIZES[type_byte]:
        raise HomeKeyStringError("length", "the key length does not match its type")
    try:
        if type_byte == _TYPE_BYTES[KeyType.ED25519]:
            return ed25519.Ed25519PublicKey.from_public_bytes(compact)
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), compact)
    except ValueError as err:
        raise HomeKeyStringError("key", f"the key is not a valid point ({describe(err)})") from err

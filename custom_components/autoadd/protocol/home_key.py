"""The home key string: the text a home owner gives a shop or a seller so invoices can name their home.

    AAHK1-ABCDE-FGHIJ-...

`AAHK1-` then RFC 4648 base32 (no padding) of:  key type (1 byte) || public key || checksum (4 bytes),
in groups of five separated by dashes. The public key is compact: Ed25519's 32 raw bytes, or P-256's
33-byte compressed point. The checksum is the first 4 bytes of SHA-256("AutoAdd home key" || type || key),
so a mistyped or swapped character is caught (a random error slips through with odds of 1 in 2^32).
All characters are in QR's alphanumeric set, so the string makes a small QR code as it is.
Parsing ignores case, spaces and dashes, and says what is wrong with a bad string.

    AAHK2-...   the same for two keys, the home key then the home's recovery key (each type || key), so
                that invoices name both as owners (recovery_key.py has the recovery key's own string).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .errors import HomeKeyStringError, describe
from .keys import KeyType, PublicKey, key_type_of

PREFIX = "AAHK1"
#: A home key string naming the home key and the home's recovery key, in this order (§5).
PREFIX_WITH_RECOVERY = "AAHK2"
_KEY_COUNTS = {PREFIX: 1, PREFIX_WITH_RECOVERY: 2}
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


def grouped(prefix: str, data: bytes) -> str:
    """`prefix`, then base32 (no padding) of `data` in groups of five, all joined by dashes."""
    text = base64.b32encode(data).decode("ascii").rstrip("=")
    return "-".join([prefix, *(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))])


def format_home_key(key: PublicKey, recovery: PublicKey | None = None) -> str:
    """The home key string for a home key, naming the home's recovery key too when it has one."""
    body = b"".join(bytes([_TYPE_BYTES[key_type_of(k)]]) + _compact(k) for k in (key, recovery) if k)
    return grouped(PREFIX if recovery is None else PREFIX_WITH_RECOVERY, body + _checksum(body))


def parse_home_key(text: str) -> PublicKey:
    """Read a home key string naming one key (AAHK1) back into it, or say exactly what is wrong."""
    if clean(text, (PREFIX, PREFIX_WITH_RECOVERY), "a home key string")[0] != PREFIX:
        raise HomeKeyStringError("prefix", f"this string names a recovery key too; expected {PREFIX}-")
    return parse_home_keys(text)[0]


def clean(
    text: str, prefixes: tuple[str, ...], what: str, error: type[HomeKeyStringError] = HomeKeyStringError
) -> tuple[str, str]:
    """Steps 0-3 of §5: ASCII, whitespace and dashes removed, upper case, a known prefix, the base32
    alphabet. Returns the prefix and what follows it."""
    if not text.isascii():
        position = next(i for i, char in enumerate(text, start=1) if not char.isascii())
        raise error("characters", f"character {position}, {text[position - 1]!r}, is not A-Z or 2-7")
    cleaned = "".join(text.split()).replace("-", "").upper()
    prefix = next((p for p in prefixes if cleaned.startswith(p)), None)
    if prefix is None:
        raise error("prefix", f"{what} starts with {' or '.join(f'{p}-' for p in prefixes)}")
    data = cleaned[len(prefix) :]
    for position, char in enumerate(data, start=1):
        if char not in _ALPHABET:
            raise error("characters", f"character {position} after the prefix, {char!r}, is not A-Z or 2-7")
    return prefix, data


def decode(
    data: str,
    lengths: set[int],
    what: str,
    checksum_of: Callable[[bytes], bytes],
    error: type[HomeKeyStringError] = HomeKeyStringError,
) -> bytes:
    """Steps 4-6 of §5: one of `lengths` characters, base32, the checksum (the unused low bits of the last
    character zero). Returns the body without its checksum."""
    if len(data) not in lengths:
        raise error(
            "length",
            f"{len(data)} characters after the prefix; {what} has {' or '.join(map(str, sorted(lengths)))}",
        )
    try:
        raw = base64.b32decode(data + "=" * (-len(data) % 8))
    except binascii.Error as err:
        raise error("length", f"not a whole base32 string ({describe(err)})") from err
    body, checksum = raw[:-_CHECKSUM_SIZE], raw[-_CHECKSUM_SIZE:]
    # The last character's unused low bits are not read back by b32decode: a typo there must not pass.
    if checksum_of(body) != checksum or base64.b32encode(raw).decode("ascii").rstrip("=") != data:
        raise error("checksum", "checksum does not match: a character is mistyped or missing")
    return body


def _lengths(count: int) -> set[int]:
    """Characters after the prefix for `count` keys of any types."""
    sizes = {0}
    for _ in range(count):
        sizes = {total + 1 + size for total in sizes for size in _KEY_SIZES.values()}
    return {(8 * (total + _CHECKSUM_SIZE) + 4) // 5 for total in sizes}


def parse_home_keys(text: str) -> tuple[PublicKey, ...]:
    """Read a home key string back into its keys: the home key, then the recovery key if it names one."""
    prefix, data = clean(text, (PREFIX, PREFIX_WITH_RECOVERY), "a home key string")
    body = decode(data, _lengths(_KEY_COUNTS[prefix]), "a home key", _checksum)
    keys: list[PublicKey] = []
    for _ in range(_KEY_COUNTS[prefix]):
        type_byte = body[0]
        if type_byte not in _KEY_SIZES:
            raise HomeKeyStringError("key_type", f"unknown key type {type_byte}")
        compact, body = body[1 : 1 + _KEY_SIZES[type_byte]], body[1 + _KEY_SIZES[type_byte] :]
        if len(compact) != _KEY_SIZES[type_byte] or (not body) != (len(keys) + 1 == _KEY_COUNTS[prefix]):
            raise HomeKeyStringError("length", "the key length does not match its type")
        keys.append(_load(type_byte, compact))
    if len({_compact(key) for key in keys}) != len(keys):
        raise HomeKeyStringError("key", "the home key and the recovery key are the same key")
    return tuple(keys)


def _load(type_byte: int, compact: bytes) -> PublicKey:
    try:
        if type_byte == _TYPE_BYTES[KeyType.ED25519]:
            return ed25519.Ed25519PublicKey.from_public_bytes(compact)
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), compact)
    except ValueError as err:
        raise HomeKeyStringError("key", f"the key is not a valid point ({describe(err)})") from err

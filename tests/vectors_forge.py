"""Forging for the negative vectors: COSE_Sign1 objects signed exactly as given, however wrong.

The protocol core only ever signs well-formed messages, so each negative vector that must break one rule
and no other (a hello without a kid but with a good signature, a payload that is not deterministic CBOR but
is signed) is built here, from the Sig_structure up (RFC 9052 §4.4). Ed25519 signatures are deterministic,
so everything forged with an Ed25519 key is reproduced byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.keys import PrivateKey, algorithm_for, fingerprint

#: The order of P-256's base point: the high-S twin of an ES256 signature (r, s) is (r, n - s).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
COSE_SIGN1_TAG = 18


def raw_signature(key: PrivateKey, message: bytes) -> bytes:
    """A signature as COSE carries it: Ed25519's 64 bytes, or ES256's r || s in low-S form."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32) + min(s, P256_ORDER - s).to_bytes(32)


def protected_for(
    key: PrivateKey, content_type: str, *, kid: bytes | bool | None = True, alg: int | None = None
) -> dict[int, Any]:
    """A protected header: alg (the key's, unless given), content type, and kid (the key's fingerprint by
    default, none with `kid=None`, or the bytes given)."""
    header: dict[int, Any] = {1: algorithm_for(key) if alg is None else alg, 3: content_type}
    if kid is True:
        header[4] = fingerprint(key.public_key())
    elif isinstance(kid, bytes):
        header[4] = kid
    return header


def sign_raw(protected: dict[int, Any], payload: bytes, key: PrivateKey) -> bytes:
    """A tagged COSE_Sign1 over exactly these payload bytes, with a signature that verifies under `key`."""
    protected_bytes = dumps(protected)
    to_sign = dumps(["Signature1", protected_bytes, b"", payload])
    return dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected_bytes, {}, payload, raw_signature(key, to_sign)]))


def sign_payload(payload: dict[int, Any], content_type: str, key: PrivateKey, **header: Any) -> bytes:
    """A deterministic payload map signed as given (see `protected_for` for the header options)."""
    return sign_raw(protected_for(key, content_type, **header), dumps(payload), key)


def tamper(data: bytes, change: Callable[[list[Any]], None]) -> bytes:
    """Decode a COSE_Sign1, change its four parts in place, re-encode deterministically (not re-signed)."""
    body = list(cbor2.loads(data).value)
    change(body)
    return dumps(cbor2.CBORTag(COSE_SIGN1_TAG, body))


def flip_signature(data: bytes) -> bytes:
    """The object with the lowest bit of its signature's first byte flipped."""

    def change(body: list[Any]) -> None:
        body[3] = bytes([body[3][0] ^ 1]) + body[3][1:]

    return tamper(data, change)


def resize_signature(data: bytes, size: int) -> bytes:
    """The object with its signature cut or zero-padded to `size` bytes."""

    def change(body: list[Any]) -> None:
        body[3] = body[3][:size].ljust(size, b"\x00")

    return tamper(data, change)


def high_s(data: bytes) -> bytes:
    """An ES256-signed object with its signature's s replaced by n - s: still valid ECDSA, but high-S."""

    def change(body: list[Any]) -> None:
        r, s = body[3][:32], int.from_bytes(body[3][32:])
        body[3] = r + (P256_ORDER - s).to_bytes(32)

    return tamper(data, change)


def compressed_spki(key: ec.EllipticCurvePublicKey) -> bytes:
    """A P-256 key's SubjectPublicKeyInfo with a compressed point: it parses, but is not canonical (§2.3)."""
    uncompressed = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    # The SPKI is SEQUENCE { AlgorithmIdentifier (21 bytes for P-256), BIT STRING { 0, point } }.
    algorithm = uncompressed[2:23]
    bit_string = bytes([0x03, len(point) + 1, 0x00]) + point
    body = algorithm + bit_string
    return bytes([0x30, len(body)]) + body

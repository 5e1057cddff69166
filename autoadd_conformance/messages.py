"""The messages the runner sends: genuine ones from the protocol core, and twins broken in one place each.

Every signature comes from the core (`cose.sign`); a broken twin changes one thing in a genuine object
and is re-encoded deterministically, so the device must refuse it for exactly the rule the check names
and not, by accident, for another. The runner's keys are fresh ones it makes itself ("strangers": no
owner of any device), except the owner key a maker passes with --owner-key.
"""

from __future__ import annotations

from dataclasses import dataclass
import datetime as dt
import secrets
from typing import Any

import cbor2

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.chain import VerifiedChain, chain_links, verify_chain
from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    PROTOCOL_VERSION,
    ContentType,
    Label,
)
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import MalformedError
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    fingerprint,
    generate_private_key,
    key_type_of,
    public_key_to_bytes,
)

#: The order n of P-256's base point: (r, s) and (r, n - s) both verify (docs/protocol.md V1a).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_BUNDLE_PROOF, _BUNDLE_IDEVID, _BUNDLE_CHAIN = 1, 2, 3


def now_ts() -> int:
    """The current time, as `issued_at` (the device checks it nowhere; it is there for the record)."""
    return int(dt.datetime.now(dt.UTC).timestamp())


def random_bytes() -> bytes:
    """32 random bytes: a nonce, a device id or a digest that matches nothing the device holds."""
    return secrets.token_bytes(32)


# --- Hellos ---------------------------------------------------------------------------------------------


def hello_payload(key: PrivateKey, nonce: bytes) -> dict[int, Any]:
    """A genuine hello payload for `key` (§4.2 `hello-payload`)."""
    return {
        Label.VERSION: PROTOCOL_VERSION,
        Label.ISSUED_AT: now_ts(),
        Label.REGISTRAR_NONCE: nonce,
        Label.REGISTRAR_KEY: public_key_to_bytes(key.public_key()),
    }


def signed(
    payload: dict[int, Any], kind: ContentType, key: PrivateKey, *, kid: bytes | bool | None = True
) -> bytes:
    """`payload` signed by `key` as a `kind`; kid is the key's fingerprint unless given (False: none)."""
    if kid is True:
        kid = fingerprint(key.public_key())
    return cose.sign(payload, kind, key, kid=kid if isinstance(kid, bytes) else None)


# --- Surgery on a signed object (the signature is kept) ------------------------------------------------


def _parts(message: bytes) -> list[Any]:
    outer = loads(message, what="message", max_size=MAX_BUNDLE_SIZE)
    if not isinstance(outer, cbor2.CBORTag) or not isinstance(outer.value, list) or len(outer.value) != 4:
        raise MalformedError("not a COSE_Sign1")
    return list(outer.value)


def _build(parts: list[Any]) -> bytes:
    return dumps(cbor2.CBORTag(cose.COSE_SIGN1_TAG, parts))


def with_header(message: bytes, label: int, value: Any) -> bytes:
    """The same object with protected header `label` set to `value` (None: removed)."""
    parts = _parts(message)
    header = loads(parts[0], what="protected header", max_size=MAX_BUNDLE_SIZE)
    if value is None:
        header.pop(label, None)
    else:
        header[label] = value
    parts[0] = dumps(header)
    return _build(parts)


def with_flipped_signature(message: bytes) -> bytes:
    """The same object with one bit of its signature flipped."""
    parts = _parts(message)
    parts[3] = bytes([parts[3][0] ^ 1]) + parts[3][1:]
    return _build(parts)


def with_short_signature(message: bytes) -> bytes:
    """The same object with the last byte of its signature cut off (V1a: a signature is 64 bytes)."""
    parts = _parts(message)
    parts[3] = parts[3][:-1]
    return _build(parts)


def high_s_twin(message: bytes) -> bytes:
    """The same ES256-signed object with (r, s) replaced by (r, n - s): valid ECDSA, refused by V1a."""
    parts = _parts(message)
    signature = parts[3]
    s = int.from_bytes(signature[32:])
    parts[3] = signature[:32] + (P256_ORDER - s).to_bytes(32)
    return _build(parts)


def indefinite_twin(message: bytes) -> bytes:
    """The same object with its COSE array in indefinite-length form: the same data, not deterministic."""
    if message[:2] != b"\xd2\x84":
        raise MalformedError("not a tagged four-element COSE_Sign1")
    return b"\xd2\x9f" + message[2:] + b"\xff"


# --- The device's answer to a hello, read without trusting it ------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """What a proof bundle says, read but not verified: enough to address a note to its session."""

    bundle: bytes
    proof: bytes
    device_id: bytes
    device_nonce: bytes
    registrar_nonce: bytes
    registrar_fingerprint: bytes
    chain_head: bytes
    chain_length: int
    chain: VerifiedChain


def read_probe(bundle: bytes) -> Probe:
    """Read a bundle's proof payload and the chain's head (link signatures checked, no roots needed).

    Raises an AutoAddError (from the core) when the bundle is not one.
    """
    value = loads(bundle, what="proof bundle", max_size=MAX_BUNDLE_SIZE)
    if not isinstance(value, dict) or set(value) != {_BUNDLE_PROOF, _BUNDLE_IDEVID, _BUNDLE_CHAIN}:
        raise MalformedError("a proof bundle is a map of 1, 2 and 3")
    proof = value[_BUNDLE_PROOF]
    if not isinstance(proof, bytes):
        raise MalformedError("the proof is not a byte string")
    obj = cose.parse(proof, ContentType.PROOF, max_size=MAX_BUNDLE_SIZE, what="proof")
    fields = loads(obj.payload, what="proof payload", max_size=MAX_BUNDLE_SIZE)
    chain = verify_chain(chain_links(value[_BUNDLE_CHAIN]), roots=None, now=dt.datetime.now(dt.UTC))
    try:
        return Probe(
            bundle=bundle,
            proof=proof,
            device_id=_digest(fields[Label.DEVICE_ID]),
            device_nonce=_digest(fields[Label.DEVICE_NONCE]),
            registrar_nonce=_digest(fields[Label.REGISTRAR_NONCE]),
            registrar_fingerprint=_digest(fields[Label.REGISTRAR_FINGERPRINT]),
            chain_head=_digest(fields[Label.CHAIN_HEAD]),
            chain_length=_uint(fields[Label.CHAIN_LENGTH]),
            chain=chain,
        )
    except (KeyError, TypeError) as err:
        raise MalformedError("the proof payload lacks a field") from err


def _digest(value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise MalformedError("a proof field is not 32 bytes")
    return value


def _uint(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedError("the proof's chain length is not an unsigned integer")
    return value


# --- Notes ----------------------------------------------------------------------------------------------


def note_payload(probe: Probe, **changes: Any) -> dict[int, Any]:
    """A note for `probe`'s session with no links and no config; `changes` replace fields by label name
    (`device_nonce=...`) or, with the value None, remove them."""
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: probe.device_id,
        Label.ISSUED_AT: now_ts(),
        Label.REGISTRAR_NONCE: probe.registrar_nonce,
        Label.DEVICE_NONCE: probe.device_nonce,
        Label.CHAIN_HEAD: probe.chain_head,
        Label.LINKS: [],
    }
    for name, value in changes.items():
        label = getattr(Label, name.upper())
        if value is None:
            payload.pop(label, None)
        else:
            payload[label] = value
    return payload


def owner_twin_key(owner: PublicKey) -> PrivateKey:
    """A fresh key of an owner's type: a note signed by it under the owner's kid must fail V2, not V1."""
    return generate_private_key(key_type_of(owner))


def stranger(key_type: KeyType = KeyType.ED25519) -> PrivateKey:
    """A fresh key that owns nothing."""
    return generate_private_key(key_type)

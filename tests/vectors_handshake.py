"""Negative handshake vectors: hellos, notes and receipts that must be refused, each with its state.

Each case breaks one rule of §7.5, §7.8 or §7.9 and no other: it is the good message of the vector
handshake (home B onboarding the device) with one field changed and signed again, so the code it must give
is the one of that rule. A device-side case says what the device holds (how many links of `chain.links`,
and which sessions are open); a registrar-side case says which session the registrar is in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.keys import KeyType, fingerprint, public_key_to_bytes
from tests.factory import NOW_TS, fixed_key
from tests.vectors_forge import (
    compressed_spki,
    flip_signature,
    high_s,
    protected_for,
    resize_signature,
    sign_payload,
    sign_raw,
)
from tests.vectors_scene import CONFIG, DEVICE_NONCE, OTHER_NONCE, REGISTRAR_NONCE, Scene

#: An algorithm that is not allowed: ES384.
ES384 = -35


def not_deterministic_version_2(payload: dict[int, Any]) -> bytes:
    """The payload with version 2 whose value is encoded in two bytes (0x18 0x02): E6 fails before the
    version is looked at."""
    rest = dumps({k: v for k, v in payload.items() if k != Label.VERSION})
    assert rest[0] == 0xA0 + len(payload) - 1  # a small map: its header is one byte
    return bytes([0xA0 + len(payload), 0x01, 0x18, 0x02]) + rest[1:]


def _session(scene: Scene, *, chain_length: int) -> dict[str, Any]:
    """The device session the vector hello opened (answered with `device_nonce` at that chain length)."""
    return {
        "opened_by": "handshake.hello",
        "chain_length_at_hello": chain_length,
        "device_nonce": DEVICE_NONCE.hex(),
        "registrar_nonce": REGISTRAR_NONCE.hex(),
        "registrar_fingerprint": fingerprint(scene.home_b.public_key()).hex(),
        "head": scene.chain.digests[chain_length - 1].hex(),
    }


def hello_cases(scene: Scene) -> list[dict[str, Any]]:
    """Hellos the device refuses (H1-H5); the device's state does not matter, none is opened."""
    home_b = scene.home_b
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.ISSUED_AT: NOW_TS,
        Label.REGISTRAR_NONCE: REGISTRAR_NONCE,
        Label.REGISTRAR_KEY: public_key_to_bytes(home_b.public_key()),
    }
    other_alg = -7 if scene.key_type is KeyType.ED25519 else -8
    compressed = compressed_spki(fixed_key("vector compressed point", KeyType.P256).public_key())  # type: ignore[arg-type]
    hello = ContentType.HELLO
    cases = [
        ("hello with a flipped signature bit", flip_signature(scene.session.hello), "bad_signature"),
        (
            "hello signed with the link content type",
            sign_payload(payload, ContentType.LINK, home_b),
            "wrong_content_type",
        ),
        (
            "hello with alg -35 (ES384)",
            sign_raw(protected_for(home_b, hello, alg=ES384), dumps(payload), home_b),
            "unsupported_algorithm",
        ),
        (
            "hello whose alg is not its key's",
            sign_raw(protected_for(home_b, hello, alg=other_alg), dumps(payload), home_b),
            "unsupported_algorithm",
        ),
        ("hello without a kid", sign_payload(payload, hello, home_b, kid=None), "malformed"),
        (
            "hello whose kid is another key's fingerprint",
            sign_payload(payload, hello, home_b, kid=fingerprint(scene.home_a.public_key())),
            "bad_signature",
        ),
        (
            "hello naming a P-256 key with a compressed point",
            sign_payload(
                {**payload, Label.REGISTRAR_KEY: compressed},
                hello,
                home_b,
                kid=hashlib.sha256(compressed).digest(),
            ),
            "invalid_key",
        ),
        (
            "hello of version 2",
            sign_payload({**payload, Label.VERSION: 2}, hello, home_b),
            "unsupported_version",
        ),
        (
            "hello of version 2, not deterministically encoded",
            sign_raw(protected_for(home_b, hello), not_deterministic_version_2(payload), home_b),
            "malformed",
        ),
        ("hello with a 63-byte signature", resize_signature(scene.session.hello, 63), "malformed"),
    ]
    if scene.key_type is KeyType.P256:
        cases.append(("hello with a high-S signature (n - s)", high_s(scene.session.hello), "malformed"))
    state = {"chain_length": len(scene.links), "sessions": []}
    return [
        {"name": name, "step": "hello", "input": data.hex(), "error": error, "device": state}
        for name, data, error in cases
    ]


def note_cases(scene: Scene) -> list[dict[str, Any]]:
    """Notes the device refuses (N1-N11), each against an open session of the vector hello."""
    home_b, digests = scene.home_b, scene.chain.digests
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: scene.device.device_id,
        Label.ISSUED_AT: NOW_TS,
        Label.REGISTRAR_NONCE: REGISTRAR_NONCE,
        Label.DEVICE_NONCE: DEVICE_NONCE,
        Label.CHAIN_HEAD: digests[-1],
        Label.LINKS: [],
        Label.CONFIG: CONFIG,
    }
    note = ContentType.NOTE

    def signed(**change: Any) -> bytes:
        return sign_payload(
            {**payload, **{getattr(Label, k.upper()): v for k, v in change.items()}}, note, home_b
        )

    full = len(scene.links)
    cases: list[tuple[str, bytes, str, int, int]] = [
        (
            "note for a device nonce no session holds",
            signed(device_nonce=OTHER_NONCE),
            "unknown_session",
            full,
            full,
        ),
        (
            "note with another registrar nonce",
            signed(registrar_nonce=OTHER_NONCE),
            "nonce_mismatch",
            full,
            full,
        ),
        (
            "note for another device",
            signed(device_id=hashlib.sha256(b"another device").digest()),
            "wrong_device",
            full,
            full,
        ),
        (
            "the good note after the device's head moved (a /links since the hello)",
            scene.note,
            "chain_head_mismatch",
            full - 1,
            full,
        ),
        ("note bound to an older head", signed(chain_head=digests[-2]), "chain_head_mismatch", full, full),
        (
            "note signed by a key that is not an owner (home A)",
            sign_payload(payload, note, scene.home_a),
            "not_owner",
            full,
            full,
        ),
        ("note with a flipped signature bit", flip_signature(scene.note), "bad_signature", full, full),
        ("note without a kid", sign_payload(payload, note, home_b, kid=None), "malformed", full, full),
        ("note whose config has an integer key", signed(config={1: "x"}), "malformed", full, full),
        ("note whose config holds a float", signed(config={"level": 0.5}), "malformed", full, full),
        (
            "note whose config holds a tag (24)",
            signed(config={"blob": cbor2.CBORTag(24, b"\x00")}),
            "malformed",
            full,
            full,
        ),
        (
            "note of version 2, not deterministically encoded",
            sign_raw(protected_for(home_b, note), not_deterministic_version_2(payload), home_b),
            "malformed",
            full,
            full,
        ),
    ]
    return [
        {
            "name": name,
            "step": "note",
            "input": data.hex(),
            "error": error,
            "device": {"chain_length": held, "sessions": [_session(scene, chain_length=at_hello)]},
        }
        for name, data, error, at_hello, held in cases
    ]


def receipt_cases(scene: Scene) -> list[dict[str, Any]]:
    """Receipts the registrar refuses (R2-R9) after sending the vector note."""
    key, device_id = scene.device.key, scene.device.device_id
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: device_id,
        Label.REGISTRAR_NONCE: REGISTRAR_NONCE,
        Label.DEVICE_NONCE: DEVICE_NONCE,
        Label.NOTE_HASH: hashlib.sha256(scene.note).digest(),
        Label.CHAIN_HEAD: scene.chain.digests[-1],
    }
    receipt = ContentType.RECEIPT

    def signed(**change: Any) -> bytes:
        changed = {**payload, **{getattr(Label, k.upper()): v for k, v in change.items()}}
        return sign_payload(changed, receipt, key, kid=device_id)

    cases = [
        ("receipt with another registrar nonce", signed(registrar_nonce=OTHER_NONCE), "nonce_mismatch"),
        ("receipt with another device nonce", signed(device_nonce=OTHER_NONCE), "nonce_mismatch"),
        ("receipt with a flipped signature bit", flip_signature(scene.accepted.receipt), "bad_signature"),
        (
            "receipt signed by another key under the device's kid",
            sign_payload(payload, receipt, scene.stranger, kid=device_id),
            "bad_signature",
        ),
        (
            "receipt for another note",
            signed(note_hash=hashlib.sha256(b"another note").digest()),
            "nonce_mismatch",
        ),
        (
            "receipt reporting an older head",
            signed(chain_head=scene.chain.digests[-2]),
            "chain_head_mismatch",
        ),
        (
            "receipt signed with the proof content type",
            sign_payload(payload, ContentType.PROOF, key, kid=device_id),
            "wrong_content_type",
        ),
    ]
    state = {
        "home_key": "home_b",
        "registrar_nonce": REGISTRAR_NONCE.hex(),
        "proof_bundle": "handshake.proof_bundle",
        "note": "handshake.note",
    }
    return [
        {"name": name, "step": "receipt", "input": data.hex(), "error": error, "registrar": state}
        for name, data, error in cases
    ]


def handshake_invalid(scene: Scene) -> list[dict[str, Any]]:
    """All negative handshake cases, hello first."""
    return [*hello_cases(scene), *note_cases(scene), *receipt_cases(scene)]

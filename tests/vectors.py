"""Test vectors for docs/vectors/: every artifact and message made from fixed keys, nonces and times.

    .venv/bin/python -m tests.vectors docs/vectors          write ed25519.json (and p256.json if missing)
    .venv/bin/python -m tests.vectors docs/vectors --p256   also write a new p256.json

Ed25519 signatures are deterministic, so ed25519.json is reproduced byte for byte by the test suite.
ECDSA signatures are not: p256.json is generated once and checked for acceptance only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
from pathlib import Path
from typing import Any

import cbor2

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.const import ContentType, LinkReason
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    fingerprint,
    private_key_to_pem,
    public_key_to_bytes,
)
from tests.factory import NOW, NOW_TS, Manufacturer, add_link, fixed_key

REGISTRAR_NONCE = bytes(range(32))
DEVICE_NONCE = bytes(range(32, 64))


def _key(key: PrivateKey) -> dict[str, str]:
    return {
        "private_pem": private_key_to_pem(key).decode(),
        "public_spki": public_key_to_bytes(key.public_key()).hex(),
        "fingerprint": fingerprint(key.public_key()).hex(),
    }


def _tamper(data: bytes, change: Callable[[list[Any]], None]) -> bytes:
    """Decode a COSE_Sign1, change its parts, re-encode deterministically (signature left as it was)."""
    tag = cbor2.loads(data)
    body = list(tag.value)
    change(body)
    return cbor2.dumps(cbor2.CBORTag(18, body), canonical=True)


def _flip_signature(body: list[Any]) -> None:
    body[3] = bytes([body[3][0] ^ 1]) + body[3][1:]


def build(key_type: KeyType) -> dict[str, Any]:
    """One complete vector set for a key type."""
    maker = Manufacturer.create(f"Vector {key_type.value}", key_type)
    device = maker.make_device("VEC-0001", key_type)
    home_a = fixed_key(f"vector home A {key_type.value}", key_type)
    home_a2 = fixed_key(f"vector home A rotated {key_type.value}", key_type)
    home_b = fixed_key(f"vector home B {key_type.value}", key_type)
    roots = [maker.root]

    links = [maker.invoice(device, [home_a], order_ref="ORDER-42")]
    add_link(links, home_a, [home_a2], LinkReason.ROTATE, roots)
    add_link(links, home_a2, [home_b], LinkReason.HANDOVER, roots)
    device.links = links
    chain = device.chain()

    session = RegistrarHandshake(home_b, issued_at=NOW_TS, nonce=REGISTRAR_NONCE)
    responder = device.responder()
    bundle = responder.answer_hello(session.hello, chain, now=0.0, nonce=DEVICE_NONCE)
    session.read_proof(bundle, roots=roots, now=NOW)
    note = session.make_note(signer=home_b, issued_at=NOW_TS, config={"name": "Porch lamp"})
    accepted = responder.accept_note(note, chain, now=1.0)
    session.read_receipt(accepted.receipt)

    stranger = fixed_key(f"vector stranger {key_type.value}", key_type)
    stranger_link = cose.sign({1: 1}, ContentType.LINK, stranger, kid=fingerprint(stranger.public_key()))
    flipped = _tamper(links[0], _flip_signature)
    unprotected = _tamper(links[0], lambda body: body.__setitem__(1, {4: b"x"}))
    digests = [digest.hex() for digest in chain.digests]

    def case(name: str, kind: str, data: list[bytes], error: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "kind": kind, "input": [x.hex() for x in data], "error": error, **extra}

    invalid = [
        case("invoice with a flipped signature bit", "chain", [flipped], "bad_signature"),
        case(
            "link 1 dropped (link 2 does not extend link 0)",
            "chain",
            [links[0], links[2]],
            "signer_not_owner",
        ),
        case("link 2 signed by a stranger", "chain", [links[0], links[1], stranger_link], "signer_not_owner"),
        case("a hello used as a chain link", "chain", [links[0], session.hello], "wrong_content_type"),
        case("invoice with a non-empty unprotected header", "chain", [unprotected], "malformed"),
        case(
            "rolled back to the invoice after the hand-over was seen",
            "compare",
            [chain.digests[0]],
            "rollback",
            known=digests,
        ),
    ]
    return {
        "key_type": key_type.value,
        "now": NOW_TS,
        "keys": {
            "manufacturer_root": _key(maker.root_key),
            "invoice_signer": _key(maker.signer_key),
            "device_idevid": _key(device.key),
            "home_a": _key(home_a),
            "home_a_rotated": _key(home_a2),
            "home_b": _key(home_b),
        },
        "home_key_strings": {
            "home_a": format_home_key(home_a.public_key()),
            "home_b": format_home_key(home_b.public_key()),
        },
        "certificates": {
            "root": certificate_to_der(maker.root).hex(),
            "invoice_signer": certificate_to_der(maker.signer).hex(),
            "idevid": certificate_to_der(device.cert).hex(),
        },
        "device_id": device.device_id.hex(),
        "chain": {
            "links": [link.hex() for link in links],
            "digests": [digest.hex() for digest in chain.digests],
            "reasons": [reason.value for reason in chain.reasons],
            "owners_at_head": [fp.hex() for fp in chain.head.owner_fingerprints],
        },
        "handshake": {
            "registrar_nonce": REGISTRAR_NONCE.hex(),
            "device_nonce": DEVICE_NONCE.hex(),
            "hello": session.hello.hex(),
            "proof_bundle": bundle.hex(),
            "note": note.hex(),
            "note_config": {"name": "Porch lamp"},
            "receipt": accepted.receipt.hex(),
        },
        "invalid": invalid,
    }


def render(vectors: dict[str, Any]) -> str:
    """The file form: stable JSON."""
    return json.dumps(vectors, indent=1, sort_keys=True) + "\n"


def main() -> None:
    """Write the vector files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--p256", action="store_true", help="also write a new p256.json")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    (args.folder / "ed25519.json").write_text(render(build(KeyType.ED25519)))
    p256 = args.folder / "p256.json"
    if args.p256 or not p256.exists():
        p256.write_text(render(build(KeyType.P256)))


if __name__ == "__main__":
    main()

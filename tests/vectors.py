"""Test vectors for docs/vectors/: every artifact and message made from fixed keys, nonces and times.

    .venv/bin/python -m tests.vectors docs/vectors          write ed25519.json (and p256.json if missing)
    .venv/bin/python -m tests.vectors docs/vectors --p256   also write a new p256.json

Ed25519 signatures are deterministic, so ed25519.json is reproduced byte for byte by the test suite.
ECDSA signatures are not: p256.json is generated once and checked for acceptance only.
The scene is in tests/vectors_scene.py, the negative handshake cases in tests/vectors_handshake.py, the
claim code group in tests/vectors_claim.py, the other groups in tests/vectors_extra.py, the forging tools
in tests/vectors_forge.py. A kept p256.json gets a `claim` group once, signed with its own certificates.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from custom_components.autoadd.protocol.certificates import (
    certificate_hash,
    certificate_to_der,
    load_der_certificate,
)
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    algorithm_for,
    fingerprint,
    private_key_to_pem,
    public_key_to_bytes,
)
from tests.factory import NOW_TS, Device, Manufacturer, fixed_key
from tests.vectors_claim import ORDER_REF as CLAIM_ORDER_REF, claim_group
from tests.vectors_extra import (
    DEVICE_CA_ORDER_REF,
    cbor_group,
    device_ca_group,
    home_key_groups,
    http_group,
    links_group,
    recovery_group,
    root_offer_group,
)
from tests.vectors_forge import compressed_spki, flip_signature, high_s, resize_signature, sign_raw, tamper
from tests.vectors_handshake import handshake_invalid
from tests.vectors_scene import (
    CONFIG,
    DEVICE_NONCE,
    DEVICE_NONCE_2,
    MODEL,
    ORDER_REF,
    REGISTRAR_NONCE,
    REGISTRAR_NONCE_2,
    Scene,
    certificate_inputs,
    make_scene,
)


def _key(key: PrivateKey) -> dict[str, str]:
    return {
        "private_pem": private_key_to_pem(key).decode(),
        "public_spki": public_key_to_bytes(key.public_key()).hex(),
        "fingerprint": fingerprint(key.public_key()).hex(),
    }


def _inputs(scene: Scene) -> dict[str, Any]:
    """What each object of the main scene was made from (README: "Inputs")."""
    maker, device = scene.maker, scene.device
    return {
        "certificates": {
            "root": certificate_inputs(maker.root, "root"),
            "invoice_signer": certificate_inputs(maker.signer, "root"),
            "idevid": certificate_inputs(device.cert, "root"),
        },
        "invoice": {
            "signer": "invoice_signer",
            "x5chain": ["invoice_signer"],
            "device": "device_idevid",
            "idevid": "idevid",
            "owners": ["home_a"],
            "issued_at": NOW_TS,
            "model": MODEL,
            "order_ref": ORDER_REF,
        },
        "links": [
            {
                "sequence": 1,
                "signer": "home_a",
                "owners": ["home_a_rotated"],
                "reason": "rotate",
                "issued_at": NOW_TS + 1,
            },
            {
                "sequence": 2,
                "signer": "home_a_rotated",
                "owners": ["home_b"],
                "reason": "handover",
                "issued_at": NOW_TS + 2,
            },
        ],
        "hello": {"signer": "home_b", "issued_at": NOW_TS, "registrar_nonce": REGISTRAR_NONCE.hex()},
        "proof": {"device_nonce": DEVICE_NONCE.hex(), "idevid_chain": ["idevid"], "chain_length": 3},
        "note": {"signer": "home_b", "issued_at": NOW_TS, "links": [], "config": CONFIG},
        "links_hello": {"signer": "home_b", "issued_at": NOW_TS, "registrar_nonce": REGISTRAR_NONCE_2.hex()},
        "links_proof": {"device_nonce": DEVICE_NONCE_2.hex(), "idevid_chain": ["idevid"], "chain_length": 2},
        "links_note": {"signer": "home_b", "issued_at": NOW_TS, "links": "links.links", "config": None},
        "device_ca_invoice": {
            "signer": "invoice_signer",
            "x5chain": ["invoice_signer"],
            "device": "device_idevid_via_device_ca",
            "idevid": "idevid_via_device_ca",
            "owners": ["home_a"],
            "issued_at": NOW_TS,
            "model": MODEL,
            "order_ref": DEVICE_CA_ORDER_REF,
        },
        "device_ca_hello": {
            "signer": "home_a",
            "issued_at": NOW_TS,
            "registrar_nonce": REGISTRAR_NONCE_2.hex(),
        },
        "device_ca_proof": {
            "device_nonce": DEVICE_NONCE_2.hex(),
            "idevid_chain": ["idevid_via_device_ca", "device_ca"],
            "chain_length": 1,
        },
    }


def _chain_cases(scene: Scene) -> list[dict[str, Any]]:
    """Chains (and digest lists) that must be refused, with the roots and time to verify them at."""
    links, key_type = scene.links, scene.key_type
    compressed = compressed_spki(fixed_key("vector compressed point", KeyType.P256).public_key())  # type: ignore[arg-type]
    maker = scene.maker
    invoice_payload = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: scene.device.device_id,
        Label.IDEVID_HASH: certificate_hash(scene.device.cert),
        Label.OWNERS: [compressed],
        Label.ISSUED_AT: NOW_TS,
        Label.MODEL: MODEL,
        Label.ORDER_REF: ORDER_REF,
    }
    compressed_owner = sign_raw(
        {
            1: algorithm_for(maker.signer_key),
            3: ContentType.INVOICE.value,
            33: [certificate_to_der(maker.signer)],
        },
        dumps(invoice_payload),
        maker.signer_key,
    )
    stranger_link = sign_raw(
        {
            1: algorithm_for(scene.stranger),
            3: ContentType.LINK.value,
            4: fingerprint(scene.stranger.public_key()),
        },
        dumps({1: 1}),
        scene.stranger,
    )
    unprotected = tamper(links[0], lambda body: body.__setitem__(1, {4: b"x"}))
    late = NOW_TS - 2 * 86400
    cases: list[tuple[str, list[bytes], str, list[str], int]] = [
        (
            "invoice with a flipped signature bit",
            [flip_signature(links[0])],
            "bad_signature",
            ["root"],
            NOW_TS,
        ),
        (
            "link 1 dropped (link 2 does not extend link 0)",
            [links[0], links[2]],
            "signer_not_owner",
            ["root"],
            NOW_TS,
        ),
        (
            "link 2 signed by a stranger",
            [links[0], links[1], stranger_link],
            "signer_not_owner",
            ["root"],
            NOW_TS,
        ),
        (
            "a hello used as a chain link",
            [links[0], scene.session.hello],
            "wrong_content_type",
            ["root"],
            NOW_TS,
        ),
        ("invoice with a non-empty unprotected header", [unprotected], "malformed", ["root"], NOW_TS),
        (
            "invoice naming a P-256 owner key with a compressed point",
            [compressed_owner],
            "invalid_owners",
            ["root"],
            NOW_TS,
        ),
        ("invoice with a 63-byte signature", [resize_signature(links[0], 63)], "malformed", ["root"], NOW_TS),
        (
            "link 1 with a 65-byte signature",
            [links[0], resize_signature(links[1], 65), links[2]],
            "malformed",
            ["root"],
            NOW_TS,
        ),
        (
            "the good chain against a root that did not issue the invoice signer (the Device CA)",
            links,
            "untrusted_manufacturer",
            ["device_ca"],
            NOW_TS,
        ),
        (
            "the good chain verified two days before the invoice's issued_at",
            links,
            "untrusted_manufacturer",
            ["root"],
            late,
        ),
    ]
    if key_type is KeyType.P256:
        cases += [
            ("invoice with a high-S signature (n - s)", [high_s(links[0])], "malformed", ["root"], NOW_TS),
            (
                "link 1 with a high-S signature (n - s)",
                [links[0], high_s(links[1]), links[2]],
                "malformed",
                ["root"],
                NOW_TS,
            ),
        ]
    result = [
        {
            "name": name,
            "kind": "chain",
            "input": [x.hex() for x in data],
            "error": error,
            "roots": roots,
            "now": now,
        }
        for name, data, error, roots, now in cases
    ]
    result.append(
        {
            "name": "rolled back to the invoice after the hand-over was seen",
            "kind": "compare",
            "input": [scene.chain.digests[0].hex()],
            "error": "rollback",
            "known": [digest.hex() for digest in scene.chain.digests],
        }
    )
    return result


def build(key_type: KeyType) -> dict[str, Any]:
    """One complete vector set for a key type."""
    scene = make_scene(key_type)
    device_ca, ca_certificates, ca_keys, ca_inputs = device_ca_group(scene)
    inputs = _inputs(scene)
    inputs["certificates"].update(ca_inputs)
    valid_home_keys, invalid_home_keys = home_key_groups(scene)
    hs = scene.session
    vectors: dict[str, Any] = {
        "key_type": key_type.value,
        "now": NOW_TS,
        "keys": {
            "manufacturer_root": _key(scene.maker.root_key),
            "invoice_signer": _key(scene.maker.signer_key),
            "device_idevid": _key(scene.device.key),
            "home_a": _key(scene.home_a),
            "home_a_rotated": _key(scene.home_a2),
            "home_b": _key(scene.home_b),
            "stranger": _key(scene.stranger),
            **{name: _key(key) for name, key in ca_keys.items()},
        },
        "home_key_strings": {
            "home_a": format_home_key(scene.home_a.public_key()),
            "home_b": format_home_key(scene.home_b.public_key()),
        },
        "home_key_strings_valid": valid_home_keys,
        "home_key_strings_invalid": invalid_home_keys,
        "certificates": {
            "root": certificate_to_der(scene.maker.root).hex(),
            "invoice_signer": certificate_to_der(scene.maker.signer).hex(),
            "idevid": certificate_to_der(scene.device.cert).hex(),
            **ca_certificates,
        },
        "device_id": scene.device.device_id.hex(),
        "inputs": inputs,
        "chain": {
            "links": [link.hex() for link in scene.links],
            "digests": [digest.hex() for digest in scene.chain.digests],
            "reasons": [reason.value for reason in scene.chain.reasons],
            "owners_at_head": [fp.hex() for fp in scene.chain.head.owner_fingerprints],
        },
        "handshake": {
            "registrar_nonce": REGISTRAR_NONCE.hex(),
            "device_nonce": DEVICE_NONCE.hex(),
            "hello": hs.hello.hex(),
            "proof_bundle": scene.bundle.hex(),
            "note": scene.note.hex(),
            "note_config": CONFIG,
            "receipt": scene.accepted.receipt.hex(),
        },
        "links": links_group(scene),
        "device_ca": device_ca,
        "invalid": _chain_cases(scene),
        "handshake_invalid": handshake_invalid(scene),
        "http": http_group(),
        "cbor": cbor_group(),
    }
    vectors["root_offer"] = root_offer_group(vectors["certificates"])
    vectors["keys"]["recovery"] = _key(recovery_key(key_type))
    vectors["recovery"] = recovery_group(scene.home_a, recovery_key(key_type))
    add_claim_group(vectors, scene, scene.maker)
    return vectors


def add_claim_group(vectors: dict[str, Any], scene: Scene, maker: Manufacturer) -> None:
    """The `claim` group (§14.9), with its device's key, IDevID certificate and the inputs of both.

    `maker` holds the certificates the file's invoice signer and root are: for a kept p256.json, the ones
    in that file (its keys are fixed, its ECDSA signatures are not)."""
    group, device = claim_group(
        maker,
        scene.key_type,
        home=scene.home_a,
        recovery=recovery_key(scene.key_type),
        stranger=scene.stranger,
        other_device=Device(maker, scene.device.key, _certificate(vectors, "idevid")),
        owned_invoice=bytes.fromhex(vectors["chain"]["links"][0]),
    )
    vectors["claim"] = group
    vectors["keys"][group["device"]] = _key(device.key)
    vectors["certificates"][group["idevid"]] = certificate_to_der(device.cert).hex()
    vectors["inputs"]["certificates"][group["idevid"]] = certificate_inputs(device.cert, "root")
    vectors["inputs"]["claim_invoice"] = {
        "signer": "invoice_signer",
        "x5chain": ["invoice_signer"],
        "device": group["device"],
        "idevid": group["idevid"],
        "owners": [],
        "issued_at": NOW_TS,
        "model": MODEL,
        "order_ref": CLAIM_ORDER_REF,
    }


def _certificate(vectors: dict[str, Any], name: str) -> x509.Certificate:
    return load_der_certificate(bytes.fromhex(vectors["certificates"][name]))


def recovery_key(key_type: KeyType) -> PrivateKey:
    """The vector home A's recovery key."""
    return fixed_key(f"vector recovery key {key_type.value}", key_type)


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
    else:  # its signatures are randomised: only the groups made from its own certificates are renewed
        kept = json.loads(p256.read_text())
        kept["root_offer"] = root_offer_group(kept["certificates"])
        kept["http"] = http_group()
        scene = make_scene(KeyType.P256)  # its keys are fixed; only its signatures are drawn anew
        kept["home_key_strings_valid"], kept["home_key_strings_invalid"] = home_key_groups(scene)
        kept["keys"]["recovery"] = _key(recovery_key(KeyType.P256))
        kept["recovery"] = recovery_group(scene.home_a, recovery_key(KeyType.P256))
        if "claim" not in kept:  # signed once with the file's own certificates, then kept like the rest
            root, signer = _certificate(kept, "root"), _certificate(kept, "invoice_signer")
            maker = dataclasses.replace(scene.maker, root=root, signer=signer)
            add_claim_group(kept, scene, maker)
        p256.write_text(render(kept))


if __name__ == "__main__":
    main()

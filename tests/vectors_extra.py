"""Vector groups beside the main chain and handshake: links in a note and in a /links request, an IDevID
issued through a Device CA, bad home key strings, HTTP error bodies, and the CBOR decoding limits.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from custom_components.autoadd.protocol.certificates import (
    MAX_ROOT_OFFER,
    certificate_hash,
    certificate_to_der,
)
from custom_components.autoadd.protocol.chain import encode_chain, issue_invoice, verify_chain
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.handshake import DeviceResponder, RegistrarHandshake
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.idevid import device_id_for
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.manufacturer import (
    make_device_ca_certificate,
    make_idevid_certificate,
)
from custom_components.autoadd.protocol.recovery_key import format_recovery_key
from custom_components.autoadd.protocol.transport import HTTP_STATUS, error_body
from tests.factory import NOW, NOW_TS, fixed_key
from tests.vectors_scene import DEVICE_NONCE_2, MODEL, REGISTRAR_NONCE_2, Scene, certificate_inputs

DEVICE_CA_ORDER_REF = "ORDER-43"


def links_group(scene: Scene) -> dict[str, Any]:
    """The device holds links 0-1; home B brings link 2 (A' hands over to B) once in a note and once in a
    /links request. Both end at the vector chain's head."""
    before = scene.prefix(2)
    session = RegistrarHandshake(scene.home_b, issued_at=NOW_TS, nonce=REGISTRAR_NONCE_2)
    responder = scene.device.responder()
    bundle = responder.answer_hello(session.hello, before, now=0.0, nonce=DEVICE_NONCE_2)
    session.read_proof(bundle, roots=scene.roots, now=NOW)
    note = session.make_note(signer=scene.home_b, issued_at=NOW_TS, links=scene.links[2:])
    accepted = responder.accept_note(note, before, now=1.0)
    session.read_receipt(accepted.receipt)
    assert accepted.chain.digests == scene.chain.digests
    return {
        "device_chain_length": 2,
        "links": [link.hex() for link in scene.links[2:]],
        "digests_after": [digest.hex() for digest in accepted.chain.digests],
        "owners_after": [fp.hex() for fp in accepted.chain.head.owner_fingerprints],
        "note": {
            "registrar_nonce": REGISTRAR_NONCE_2.hex(),
            "device_nonce": DEVICE_NONCE_2.hex(),
            "hello": session.hello.hex(),
            "proof_bundle": bundle.hex(),
            "note": note.hex(),
            "receipt": accepted.receipt.hex(),
        },
        "links_request": encode_chain(scene.links[2:]).hex(),
        "invalid_links_requests": [
            {
                "name": "a link the device already holds sent again",
                "input": encode_chain(scene.links[1:]).hex(),
                "error": "signer_not_owner",
            },
            {"name": "an empty array", "input": dumps([]).hex(), "error": "malformed"},
            {
                "name": "a map instead of an array",
                "input": dumps({1: scene.links[2]}).hex(),
                "error": "malformed",
            },
        ],
    }


def device_ca_group(
    scene: Scene,
) -> tuple[dict[str, Any], dict[str, str], dict[str, PrivateKey], dict[str, Any]]:
    """A second device whose IDevID is issued by a Device CA under the same root, onboarded by home A.

    Returns the group, the certificates (DER hex by name), the keys and the certificates' inputs."""
    maker, key_type = scene.maker, scene.key_type
    ca_key = fixed_key(f"{maker.name} device CA", key_type)
    ca = make_device_ca_certificate(
        maker.root_key, maker.root, ca_key.public_key(), now=NOW - dt.timedelta(days=30), serial=3
    )
    device_key = fixed_key(f"{maker.name} device VEC-0002", key_type)
    idevid = make_idevid_certificate(
        ca_key,
        ca,
        device_key.public_key(),
        serial_number="VEC-0002",
        model=MODEL,
        now=NOW - dt.timedelta(days=1),
        serial=1002,
    )
    device_id = device_id_for(device_key.public_key())
    invoice = issue_invoice(
        signer=maker.signer_key,
        signer_chain=[maker.signer],
        device_id=device_id,
        idevid_hash=certificate_hash(idevid),
        owners=[scene.home_a.public_key()],
        issued_at=NOW_TS,
        model=MODEL,
        order_ref=DEVICE_CA_ORDER_REF,
    )
    responder = DeviceResponder(device_key, [idevid, ca])
    chain = verify_chain([invoice], roots=scene.roots, now=NOW)
    session = RegistrarHandshake(scene.home_a, issued_at=NOW_TS, nonce=REGISTRAR_NONCE_2)
    bundle = responder.answer_hello(session.hello, chain, now=0.0, nonce=DEVICE_NONCE_2)
    session.read_proof(bundle, roots=scene.roots, now=NOW)
    wrong_order = DeviceResponder(device_key, [ca, idevid]).answer_hello(
        session.hello, chain, now=0.0, nonce=DEVICE_NONCE_2
    )
    leaf_only = DeviceResponder(device_key, [idevid]).answer_hello(
        session.hello, chain, now=0.0, nonce=DEVICE_NONCE_2
    )
    group = {
        "device_id": device_id.hex(),
        "idevid_chain": ["idevid_via_device_ca", "device_ca"],
        "chain": [invoice.hex()],
        "registrar_nonce": REGISTRAR_NONCE_2.hex(),
        "device_nonce": DEVICE_NONCE_2.hex(),
        "hello": session.hello.hex(),
        "proof_bundle": bundle.hex(),
        "invalid_proof_bundles": [
            {
                "name": "the IDevID chain in the wrong order (Device CA first)",
                "input": wrong_order.hex(),
                "error": "untrusted_manufacturer",
            },
            {
                "name": "the IDevID chain without its Device CA",
                "input": leaf_only.hex(),
                "error": "untrusted_manufacturer",
            },
        ],
    }
    certificates = {
        "device_ca": certificate_to_der(ca).hex(),
        "idevid_via_device_ca": certificate_to_der(idevid).hex(),
    }
    keys = {"device_ca": ca_key, "device_idevid_via_device_ca": device_key}
    inputs = {
        "device_ca": certificate_inputs(ca, "root"),
        "idevid_via_device_ca": certificate_inputs(idevid, "device_ca"),
    }
    return group, certificates, keys, inputs


def _home_key_text(body: bytes, checksum: bytes, prefix: str = "AAHK1") -> str:
    text = base64.b32encode(body + checksum).decode().rstrip("=")
    return "-".join([prefix, *(text[i : i + 5] for i in range(0, len(text), 5))])


def _home_key_checksum(body: bytes) -> bytes:
    return hashlib.sha256(b"AutoAdd home key" + body).digest()[:4]


def home_key_groups(scene: Scene) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Spellings of home A's string that parse (case, spaces, dashes), and strings that do not, by reason."""
    good = format_home_key(scene.home_a.public_key())
    data = good[len("AAHK1-") :]
    cleaned = data.replace("-", "")
    raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    body, checksum = raw[:-4], raw[-4:]
    first = data[0]
    typo = data.replace(first, "A" if first != "A" else "B", 1)
    look_alikes = {"O": "0", "I": "1", "L": "1", "B": "8", "S": "5", "Z": "2"}
    # A character that has a look-alike outside the alphabet; a digit 0, 1, 8 or 9 is never in base32.
    position, char = next((i, c) for i, c in enumerate(data) if c in look_alikes and c not in "SZ")
    look_alike = data[:position] + look_alikes[char] + data[position + 1 :]
    valid = [
        {"name": "lower case", "input": good.lower()},
        {"name": "no dashes", "input": good.replace("-", "")},
        {"name": "spaces instead of dashes, around too", "input": "  " + good.replace("-", " ") + "\n"},
    ]
    invalid = [
        ("one character changed (a typo)", "AAHK1-" + typo, "checksum"),
        (
            "the right body with its checksum inverted",
            _home_key_text(body, bytes(b ^ 0xFF for b in checksum)),
            "checksum",
        ),
        ("two neighbouring characters swapped", "AAHK1-" + data[1] + data[0] + data[2:], "checksum"),
        (f"{char} written as {look_alikes[char]}", "AAHK1-" + look_alike, "characters"),
        ("a non-ASCII long s (U+017F) that upper-cases to S", good[:-1] + "\u017f", "characters"),
        ("prefix AAHK3", "AAHK3" + good[5:], "prefix"),
        ("prefix AAHK2 (a home key and a recovery key) with one key", "AAHK2" + good[5:], "length"),
        ("no prefix", data, "prefix"),
        ("the last five characters missing", "AAHK1" + cleaned[:-5], "length"),
        # 60 and 61 are both key lengths: one character off the other type's length fails the checksum.
        (f"one character missing ({len(cleaned) - 1})", good[:-1], _length_reason(len(cleaned) - 1)),
        (f"one character more ({len(cleaned) + 1})", good + "A", _length_reason(len(cleaned) + 1)),
        (
            "type byte 3 with a good checksum",
            _home_key_text(b"\x03" + body[1:], _home_key_checksum(b"\x03" + body[1:])),
            "key_type",
        ),
        ("P-256 type, x not on the curve", _bad_point(), "key"),
    ]
    return valid, [{"name": n, "input": t, "reason": r} for n, t, r in invalid]


def recovery_group(home: PrivateKey, recovery: PrivateKey) -> dict[str, Any]:
    """The recovery key (§5.1): its string, the home key string naming it with home A (AAHK2, §5), and
    strings of each kind refused by reason. Keys and strings are deterministic for both key types."""
    text = format_recovery_key(recovery)
    data = text[len("AARK1-") :].replace("-", "")
    with_recovery = format_home_key(home.public_key(), recovery.public_key())
    both = with_recovery[len("AAHK2-") :].replace("-", "")
    raw = base64.b32decode(both + "=" * (-len(both) % 8))[:-4]
    same_twice = raw[: len(raw) // 2] * 2  # the vector's two keys are of one type: the home key, twice
    invalid_recovery = [
        ("a typo", "AARK1" + ("B" if data[7] == "A" else "A").join((data[:7], data[8:])), "checksum"),
        ("a home key string", format_home_key(home.public_key()), "prefix"),
        ("the last group missing", "AARK1" + data[:-5], "length"),
        ("type byte 3 with a good checksum", _recovery_text(b"\x03" + bytes(32)), "key_type"),
        ("P-256 scalar 0", _recovery_text(b"\x02" + bytes(32)), "key"),
    ]
    invalid_both = [
        ("AAHK2 with one key's body", "AAHK2" + format_home_key(home.public_key())[5:], "length"),
        ("the same key twice", _home_key_text(same_twice, _home_key_checksum(same_twice), "AAHK2"), "key"),
        ("prefix AAHK3", "AAHK3" + with_recovery[5:], "prefix"),
    ]
    return {
        "recovery_key_string": text,
        "home_key_string_with_recovery": with_recovery,
        "recovery_key_strings_invalid": [
            {"name": n, "input": t, "reason": r} for n, t, r in invalid_recovery
        ],
        "home_key_strings_with_recovery_invalid": [
            {"name": n, "input": t, "reason": r} for n, t, r in invalid_both
        ],
    }


def _recovery_text(body: bytes) -> str:
    checksum = hashlib.sha256(b"AutoAdd recovery key" + body).digest()[:4]
    return "AARK1" + base64.b32encode(body + checksum).decode("ascii").rstrip("=")


def _length_reason(length: int) -> str:
    """The reason for a string of this many characters after the prefix: 60 and 61 pass the length step."""
    return "checksum" if length in (60, 61) else "length"


def _bad_point() -> str:
    """A P-256 home key string with a good checksum whose compressed point is not on the curve."""
    for x in range(1, 100):
        body = b"\x02\x02" + x.to_bytes(32)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), body[1:])
        except ValueError:
            return _home_key_text(body, _home_key_checksum(body))
    raise AssertionError("no x off the curve below 100")


HTTP_ERRORS = [
    ("malformed", "the hello is not a tagged COSE_Sign1"),
    ("unknown_session", "no open session has this device nonce"),
    ("chain_head_mismatch", "the device's chain changed since the hello"),
    ("not_owner", "the note is not signed by a current owner"),
    ("too_large", "the request body is over 8192 bytes"),
    ("not_found", "no such endpoint"),
    ("rate_limited", "too many requests"),
    ("wrong_claim_code", "the claim code run failed"),
    ("already_claimed", "the device already has owners; its code no longer claims it"),
    ("claim_wait", "too many wrong claim codes; try again later"),
]


def http_group() -> dict[str, Any]:
    """Error bodies {1: code, 2: detail} as the device sends them, and the status for every code."""
    return {
        "status": dict(sorted(HTTP_STATUS.items())),
        "error_bodies": [
            {
                "code": code,
                "detail": detail,
                "status": HTTP_STATUS[code],
                "body": error_body(code, detail).hex(),
            }
            for code, detail in HTTP_ERRORS
        ],
    }


def root_offer_group(certificates: dict[str, str]) -> dict[str, Any]:
    """The body of `GET /autoadd/v1/root` (§14.7) for the vector manufacturer, and offers O1-O5 refuse;
    from a vector file's certificates (DER hex by name), so p256.json's randomised ones get theirs."""
    root_der = bytes.fromhex(certificates["root"])
    cases = [
        ("the certificate in an array, not a byte string (O1)", dumps([root_der]), "malformed"),
        ("the certificate's DER bytes without the CBOR byte string (O1)", root_der, "malformed"),
        ("over 4 099 bytes (O1)", dumps(b"\x00" * (MAX_ROOT_OFFER - 2)), "too_large"),
        ("a byte string that is not DER X.509 (O2)", dumps(b"\x30\x00"), "malformed"),
        ("the IDevID certificate: not self-issued (O4)", dumps(bytes.fromhex(certificates["idevid"])), None),
        ("the invoice signer's certificate (O4)", dumps(bytes.fromhex(certificates["invoice_signer"])), None),
    ]
    return {
        "body": dumps(root_der).hex(),
        "certificate": "root",
        "invalid": [
            {"name": name, "input": data.hex(), "error": error or "untrusted_manufacturer"}
            for name, data, error in cases
        ],
    }


def _nested(levels: int) -> bytes:
    """`levels` arrays, each the only element of the one around it: depth `levels` (outermost at 1)."""
    return bytes([0x81] * (levels - 1) + [0x80])


def cbor_group() -> list[dict[str, Any]]:
    """Single CBOR items and whether E1-E6 accept them (limit 8 192): depth, key types, determinism."""
    cases = [
        ("16 levels of nested arrays", _nested(16), None),
        ("17 levels of nested arrays", _nested(17), "malformed"),
        ("a map keyed by the float 1.0", bytes.fromhex("a1f93c0001"), "malformed"),
        ("a map keyed by true", bytes.fromhex("a1f501"), "malformed"),
        ("keys out of length-first order", bytes.fromhex("a2186401") + b"\x01\x02", "malformed"),
        ("an integer in two bytes (0x18 0x01)", bytes.fromhex("1801"), "malformed"),
        ("an indefinite-length array", bytes.fromhex("9f01ff"), "malformed"),
        (
            "text key 'a' before integer key 256 (length-first: 2 bytes before 3)",
            bytes.fromhex("a261610119010002"),
            None,
        ),
        (
            "integer key 256 before text key 'a' (RFC 8949 §4.2.1 bytewise order)",
            bytes.fromhex("a219010002616101"),
            "malformed",
        ),
    ]
    return [{"name": n, "input": d.hex(), "max_size": 8192, "error": e} for n, d, e in cases]

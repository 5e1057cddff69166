"""docs/vectors/ stays true: the code reproduces the Ed25519 vectors and accepts every vector set."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import load_der_certificate
from custom_components.autoadd.protocol.chain import compare_with_known, verify_chain
from custom_components.autoadd.protocol.const import ContentType, Label
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.handshake import DeviceResponder, RegistrarHandshake, read_hello
from custom_components.autoadd.protocol.home_key import parse_home_key
from custom_components.autoadd.protocol.keys import KeyType, fingerprint, private_key_from_pem
from tests.vectors import build, render

VECTORS = Path(__file__).parents[2] / "docs" / "vectors"
SETS = ["ed25519.json", "p256.json"]


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def test_ed25519_vectors_are_reproduced_byte_for_byte() -> None:
    """Deterministic signatures: the generator's output is exactly the committed file."""
    assert (VECTORS / "ed25519.json").read_text() == render(build(KeyType.ED25519))


@pytest.mark.parametrize("name", SETS)
def test_vector_chain_verifies(name: str) -> None:
    """The chain verifies from its root, with the documented digests, reasons and owners."""
    vec = _load(name)
    now = dt.datetime.fromtimestamp(vec["now"], dt.UTC)
    root = load_der_certificate(bytes.fromhex(vec["certificates"]["root"]))
    links = [bytes.fromhex(link) for link in vec["chain"]["links"]]
    chain = verify_chain(links, roots=[root], now=now)
    assert [d.hex() for d in chain.digests] == vec["chain"]["digests"]
    assert [hashlib.sha256(link).hexdigest() for link in links] == vec["chain"]["digests"]
    assert [r.value for r in chain.reasons] == vec["chain"]["reasons"]
    assert [fp.hex() for fp in chain.head.owner_fingerprints] == vec["chain"]["owners_at_head"]
    assert chain.device_id.hex() == vec["device_id"]


@pytest.mark.parametrize("name", SETS)
def test_vector_home_key_strings(name: str) -> None:
    """Home key strings name the vector keys."""
    vec = _load(name)
    for home, text in vec["home_key_strings"].items():
        assert fingerprint(parse_home_key(text)).hex() == vec["keys"][home]["fingerprint"]


@pytest.mark.parametrize("name", SETS)
def test_vector_handshake(name: str) -> None:
    """Each handshake message is accepted by the side that receives it."""
    vec = _load(name)
    hs = vec["handshake"]
    now = dt.datetime.fromtimestamp(vec["now"], dt.UTC)
    root = load_der_certificate(bytes.fromhex(vec["certificates"]["root"]))
    idevid = load_der_certificate(bytes.fromhex(vec["certificates"]["idevid"]))
    device_key = private_key_from_pem(vec["keys"]["device_idevid"]["private_pem"].encode())
    home_b = private_key_from_pem(vec["keys"]["home_b"]["private_pem"].encode())
    chain = verify_chain([bytes.fromhex(x) for x in vec["chain"]["links"]], roots=[root], now=now)

    hello = bytes.fromhex(hs["hello"])
    assert read_hello(hello).registrar_nonce.hex() == hs["registrar_nonce"]

    session = RegistrarHandshake(home_b, issued_at=vec["now"], nonce=bytes.fromhex(hs["registrar_nonce"]))
    proven = session.read_proof(bytes.fromhex(hs["proof_bundle"]), roots=[root], now=now)
    assert proven.device_nonce.hex() == hs["device_nonce"]

    responder = DeviceResponder(device_key, [idevid])
    responder.answer_hello(hello, chain, now=0.0, nonce=bytes.fromhex(hs["device_nonce"]))
    note = bytes.fromhex(hs["note"])
    accepted = responder.accept_note(note, chain, now=1.0)
    assert dict(accepted.config) == hs["note_config"]

    receipt = cose.parse(bytes.fromhex(hs["receipt"]), ContentType.RECEIPT, max_size=8192, what="receipt")
    cose.verify(receipt, device_key.public_key(), what="receipt")
    fields = loads(receipt.payload, what="receipt", max_size=8192)
    assert fields[Label.NOTE_HASH] == hashlib.sha256(note).digest()


@pytest.mark.parametrize("name", SETS)
def test_invalid_vectors_fail_with_their_code(name: str) -> None:
    """Every invalid vector is refused with the error code it names."""
    vec = _load(name)
    now = dt.datetime.fromtimestamp(vec["now"], dt.UTC)
    root = load_der_certificate(bytes.fromhex(vec["certificates"]["root"]))
    for case in vec["invalid"]:
        data = [bytes.fromhex(x) for x in case["input"]]
        if case["kind"] == "chain":
            with pytest.raises(AutoAddError) as caught:
                verify_chain(data, roots=[root], now=now)
        else:
            known = [bytes.fromhex(x) for x in case["known"]]
            with pytest.raises(AutoAddError) as caught:
                compare_with_known(known, data)
        assert caught.value.code == case["error"], case["name"]

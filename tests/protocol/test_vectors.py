"""docs/vectors/ stays true: the code reproduces the Ed25519 vectors, accepts every positive vector and
refuses every negative one with the code it names, in the state the vector describes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path
import time
from typing import Any

import aiohttp
import cbor2
import cpace
import pytest

from autoadd_device.device import ReferenceDevice
from autoadd_device.files import write_identity, write_invoice
from autoadd_device.limits import ServingLimits
from autoadd_device.server import make_app
from autoadd_device.serving import DeviceServer
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import (
    certificate_hash,
    load_der_certificate,
    read_root_offer,
)
from custom_components.autoadd.protocol.chain import (
    VerifiedChain,
    compare_with_known,
    decode_chain,
    extend,
    verify_chain,
)
from custom_components.autoadd.protocol.claim import ClaimDone, ClaimResponder, ClaimRun, claim_delay
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code, parse_claim_code
from custom_components.autoadd.protocol.const import ContentType, Label
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    ClaimCodeStringError,
    HomeKeyStringError,
    RecoveryKeyStringError,
)
from custom_components.autoadd.protocol.handshake import DeviceResponder, RegistrarHandshake, read_hello
from custom_components.autoadd.protocol.home_key import parse_home_key, parse_home_keys
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint, private_key_from_pem
from custom_components.autoadd.protocol.recovery_key import format_recovery_key, parse_recovery_key
from custom_components.autoadd.protocol.transport import (
    BASE_PATH,
    HTTP_STATUS,
    MEDIA_TYPE,
    error_body,
    read_error_body,
)
from tests.vectors import build, render
from tests.vectors_claim import fixed_scalar, x25519

VECTORS = Path(__file__).parents[2] / "docs" / "vectors"
SETS = ["ed25519.json", "p256.json"]
#: Vectors whose code was decided in issue 11 but which the protocol core does not give yet (name: why).
PENDING: dict[str, str] = {}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def _time(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _cert(vec: dict[str, Any], name: str) -> Any:
    return load_der_certificate(bytes.fromhex(vec["certificates"][name]))


def _key(vec: dict[str, Any], name: str) -> PrivateKey:
    return private_key_from_pem(vec["keys"][name]["private_pem"].encode())


def _chain(vec: dict[str, Any], length: int | None = None) -> VerifiedChain:
    links = [bytes.fromhex(x) for x in vec["chain"]["links"]][:length]
    return verify_chain(links, roots=[_cert(vec, "root")], now=_time(vec["now"]))


@contextmanager
def _refused(code: str, name: str) -> Iterator[None]:
    """The block raises the protocol error `code` (vector `name`), or the vector is still pending."""
    if name in PENDING:
        pytest.skip(f"pending: {name}: {PENDING[name]}")
    with pytest.raises(AutoAddError) as caught:
        yield
    assert caught.value.code == code, f"{name}: refused with {caught.value.code}, not {code}"


def _cases(group: str) -> list[Any]:
    """One test parameter per case of a group in each vector file, named after the case."""
    params = []
    for set_name in SETS:
        cases: Any = _load(set_name)
        for part in group.split("."):
            cases = cases[part]
        params += [pytest.param(set_name, case, id=f"{set_name[:-5]}: {case['name']}") for case in cases]
    return params


def _payload(data: bytes, content_type: ContentType) -> dict[int, Any]:
    obj = cose.parse(data, content_type, max_size=16384, what="vector")
    fields: dict[int, Any] = loads(obj.payload, what="vector", max_size=16384)
    return fields


def test_ed25519_vectors_are_reproduced_byte_for_byte() -> None:
    """Deterministic signatures: the generator's output is exactly the committed file."""
    assert (VECTORS / "ed25519.json").read_text() == render(build(KeyType.ED25519))


@pytest.mark.parametrize("name", SETS)
def test_vector_chain_verifies(name: str) -> None:
    """The chain verifies from its root, with the documented digests, reasons and owners."""
    vec = _load(name)
    links = [bytes.fromhex(link) for link in vec["chain"]["links"]]
    chain = _chain(vec)
    assert [d.hex() for d in chain.digests] == vec["chain"]["digests"]
    assert [hashlib.sha256(link).hexdigest() for link in links] == vec["chain"]["digests"]
    assert [r.value for r in chain.reasons] == vec["chain"]["reasons"]
    assert [fp.hex() for fp in chain.head.owner_fingerprints] == vec["chain"]["owners_at_head"]
    assert chain.device_id.hex() == vec["device_id"]


@pytest.mark.parametrize("name", SETS)
def test_vector_inputs_are_the_objects_inputs(name: str) -> None:
    """What `inputs` (and the README) says each object was made from is what the object holds."""
    vec = _load(name)
    inputs, keys = vec["inputs"], vec["keys"]
    for cert_name, made in inputs["certificates"].items():
        cert = _cert(vec, cert_name)
        assert cert.serial_number == made["serial"]
        assert int(cert.not_valid_before_utc.timestamp()) == made["not_before"]
        assert cert.subject.rfc4514_string() == made["subject"]
        assert cert.issuer == _cert(vec, made["issuer"]).subject
    invoices = {
        "invoice": vec["chain"]["links"][0],
        "device_ca_invoice": vec["device_ca"]["chain"][0],
        "claim_invoice": vec["claim"]["invoice"],
    }
    for link_name, invoice in invoices.items():
        made = inputs[link_name]
        data = bytes.fromhex(invoice)
        fields = _payload(data, ContentType.INVOICE)
        obj = cose.parse(data, ContentType.INVOICE, max_size=16384, what="invoice")
        assert [x.hex() for x in obj.x5chain] == [vec["certificates"][c] for c in made["x5chain"]]
        assert fields[Label.ISSUED_AT] == made["issued_at"]
        assert fields[Label.MODEL] == made["model"]
        assert fields[Label.ORDER_REF] == made["order_ref"]
        assert [o.hex() for o in fields[Label.OWNERS]] == [keys[o]["public_spki"] for o in made["owners"]]
        assert fields[Label.IDEVID_HASH] == certificate_hash(_cert(vec, made["idevid"]))
    for made, data in zip(inputs["links"], vec["chain"]["links"][1:], strict=True):
        fields = _payload(bytes.fromhex(data), ContentType.LINK)
        assert fields[Label.SEQUENCE] == made["sequence"]
        assert fields[Label.ISSUED_AT] == made["issued_at"]
        assert fields[Label.REASON] == made["reason"]
        assert [o.hex() for o in fields[Label.OWNERS]] == [keys[o]["public_spki"] for o in made["owners"]]
    hello = _payload(bytes.fromhex(vec["handshake"]["hello"]), ContentType.HELLO)
    assert hello[Label.ISSUED_AT] == inputs["hello"]["issued_at"]
    note = _payload(bytes.fromhex(vec["handshake"]["note"]), ContentType.NOTE)
    assert (note[Label.ISSUED_AT], note[Label.LINKS]) == (
        inputs["note"]["issued_at"],
        inputs["note"]["links"],
    )


@pytest.mark.parametrize("name", SETS)
def test_vector_home_key_strings(name: str) -> None:
    """Home key strings name the vector keys, in every spelling the parser accepts."""
    vec = _load(name)
    for home, text in vec["home_key_strings"].items():
        assert fingerprint(parse_home_key(text)).hex() == vec["keys"][home]["fingerprint"]
    for case in vec["home_key_strings_valid"]:
        assert fingerprint(parse_home_key(case["input"])).hex() == vec["keys"]["home_a"]["fingerprint"]


@pytest.mark.parametrize(("name", "case"), _cases("home_key_strings_invalid"))
def test_invalid_home_key_strings_give_their_reason(name: str, case: dict[str, Any]) -> None:
    """Each bad string is refused as invalid_home_key_string with the reason it names."""
    with pytest.raises(HomeKeyStringError) as caught:
        parse_home_keys(case["input"])  # a reader of both forms (§5)
    assert (caught.value.code, caught.value.reason) == ("invalid_home_key_string", case["reason"])


@pytest.mark.parametrize("name", SETS)
def test_vector_handshake(name: str) -> None:
    """Each handshake message is accepted by the side that receives it."""
    vec = _load(name)
    hs = vec["handshake"]
    root, idevid = _cert(vec, "root"), _cert(vec, "idevid")
    device_key = _key(vec, "device_idevid")
    chain = _chain(vec)

    hello = bytes.fromhex(hs["hello"])
    assert read_hello(hello).registrar_nonce.hex() == hs["registrar_nonce"]

    session = RegistrarHandshake(
        _key(vec, "home_b"), issued_at=vec["now"], nonce=bytes.fromhex(hs["registrar_nonce"])
    )
    proven = session.read_proof(bytes.fromhex(hs["proof_bundle"]), roots=[root], now=_time(vec["now"]))
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


@pytest.mark.parametrize(("name", "case"), _cases("invalid"))
def test_invalid_vectors_fail_with_their_code(name: str, case: dict[str, Any]) -> None:
    """Every invalid chain is refused with its code, at the roots and time the vector names."""
    vec = _load(name)
    data = [bytes.fromhex(x) for x in case["input"]]
    if case["kind"] == "chain":
        roots = [_cert(vec, root) for root in case["roots"]]
        with _refused(case["error"], case["name"]):
            verify_chain(data, roots=roots, now=_time(case["now"]))
    else:
        known = [bytes.fromhex(x) for x in case["known"]]
        with _refused(case["error"], case["name"]):
            compare_with_known(known, data)


def _device(vec: dict[str, Any], state: dict[str, Any]) -> tuple[DeviceResponder, VerifiedChain]:
    """The reference responder in the state a device-side case describes."""
    responder = DeviceResponder(_key(vec, "device_idevid"), [_cert(vec, "idevid")])
    for open_session in state["sessions"]:
        assert open_session["opened_by"] == "handshake.hello"
        hello = bytes.fromhex(vec["handshake"]["hello"])
        at_hello = _chain(vec, open_session["chain_length_at_hello"])
        assert at_hello.head.digest.hex() == open_session["head"]
        responder.answer_hello(hello, at_hello, now=0.0, nonce=bytes.fromhex(open_session["device_nonce"]))
    return responder, _chain(vec, state["chain_length"])


def _registrar(vec: dict[str, Any]) -> RegistrarHandshake:
    """Home B's handshake after it sent the vector note, waiting for the receipt."""
    hs = vec["handshake"]
    session = RegistrarHandshake(
        _key(vec, "home_b"), issued_at=vec["now"], nonce=bytes.fromhex(hs["registrar_nonce"])
    )
    session.read_proof(bytes.fromhex(hs["proof_bundle"]), roots=[_cert(vec, "root")], now=_time(vec["now"]))
    made = session.make_note(signer=_key(vec, "home_b"), issued_at=vec["now"], config=hs["note_config"])
    if vec["key_type"] == KeyType.ED25519:
        assert made.hex() == hs["note"]
    session.note = bytes.fromhex(hs["note"])  # an ES256 note is signed anew each time: take the vector's
    return session


@pytest.mark.parametrize(("name", "case"), _cases("handshake_invalid"))
def test_invalid_handshake_messages_fail_with_their_code(name: str, case: dict[str, Any]) -> None:
    """Each bad hello, note and receipt is refused with its code, and leaves the session as it was."""
    vec = _load(name)
    hs = vec["handshake"]
    data = bytes.fromhex(case["input"])
    if case["step"] == "hello":
        with _refused(case["error"], case["name"]):
            read_hello(data)
    elif case["step"] == "note":
        responder, chain = _device(vec, case["device"])
        with _refused(case["error"], case["name"]):
            responder.accept_note(data, chain, now=1.0)
        if all(s["head"] == chain.head.digest.hex() for s in case["device"]["sessions"]):
            responder.accept_note(bytes.fromhex(hs["note"]), chain, now=1.0)  # the session is still open
    else:
        session = _registrar(vec)
        with _refused(case["error"], case["name"]):
            session.read_receipt(data)
        session.read_receipt(bytes.fromhex(hs["receipt"]))  # the handshake still waits for its receipt


@pytest.mark.parametrize("name", SETS)
def test_links_in_a_note_and_in_a_links_request(name: str) -> None:
    """The device at link 1 takes link 2 from a note and from a /links body, and ends at the same head."""
    vec = _load(name)
    group, root, now = vec["links"], _cert(vec, "root"), _time(vec["now"])
    before = _chain(vec, group["device_chain_length"])
    hs = group["note"]
    session = RegistrarHandshake(
        _key(vec, "home_b"), issued_at=vec["now"], nonce=bytes.fromhex(hs["registrar_nonce"])
    )
    session.read_proof(bytes.fromhex(hs["proof_bundle"]), roots=[root], now=now)
    responder = DeviceResponder(_key(vec, "device_idevid"), [_cert(vec, "idevid")])
    responder.answer_hello(
        bytes.fromhex(hs["hello"]), before, now=0.0, nonce=bytes.fromhex(hs["device_nonce"])
    )
    note = bytes.fromhex(hs["note"])
    assert [x.hex() for x in _payload(note, ContentType.NOTE)[Label.LINKS]] == group["links"]
    assert Label.CONFIG not in _payload(note, ContentType.NOTE)
    accepted = responder.accept_note(note, before, now=1.0)
    assert [d.hex() for d in accepted.chain.digests] == group["digests_after"]
    assert [fp.hex() for fp in accepted.chain.head.owner_fingerprints] == group["owners_after"]
    links = [bytes.fromhex(x) for x in group["links"]]
    made = session.make_note(signer=_key(vec, "home_b"), issued_at=vec["now"], links=links)
    assert made == note or vec["key_type"] == KeyType.P256
    session.note = note  # an ES256 note is signed anew each time: take the vector's
    session.read_receipt(bytes.fromhex(hs["receipt"]))

    pushed = extend(before, decode_chain(bytes.fromhex(group["links_request"])))
    assert [d.hex() for d in pushed.digests] == group["digests_after"]


@pytest.mark.parametrize(("name", "case"), _cases("links.invalid_links_requests"))
def test_invalid_links_requests(name: str, case: dict[str, Any]) -> None:
    """A /links body that the device at link 1 must refuse, with its code."""
    before = _chain(_load(name), _load(name)["links"]["device_chain_length"])
    with _refused(case["error"], case["name"]):
        extend(before, decode_chain(bytes.fromhex(case["input"])))


@pytest.mark.parametrize("name", SETS)
def test_idevid_through_a_device_ca(name: str) -> None:
    """A proof whose IDevID chain is leaf then Device CA verifies; other orders and lengths do not."""
    vec = _load(name)
    group, root, now = vec["device_ca"], _cert(vec, "root"), _time(vec["now"])
    bundle = cbor2.loads(bytes.fromhex(group["proof_bundle"]))
    assert [c.hex() for c in bundle[2]] == [vec["certificates"][c] for c in group["idevid_chain"]]

    def session() -> RegistrarHandshake:
        return RegistrarHandshake(
            _key(vec, "home_a"), issued_at=vec["now"], nonce=bytes.fromhex(group["registrar_nonce"])
        )

    proven = session().read_proof(bytes.fromhex(group["proof_bundle"]), roots=[root], now=now)
    assert proven.device_id.hex() == group["device_id"]
    assert proven.device_nonce.hex() == group["device_nonce"]
    assert [link.hex() for link in proven.chain.links] == group["chain"]
    for case in group["invalid_proof_bundles"]:
        with _refused(case["error"], case["name"]):
            session().read_proof(bytes.fromhex(case["input"]), roots=[root], now=now)


@pytest.mark.parametrize("name", SETS)
def test_http_error_bodies_and_statuses(name: str) -> None:
    """Error bodies are byte-exact {1: code, 2: detail}, read back as their code; statuses as listed."""
    vec = _load(name)
    assert vec["http"]["status"] == HTTP_STATUS
    for case in vec["http"]["error_bodies"]:
        body = bytes.fromhex(case["body"])
        assert error_body(case["code"], case["detail"]) == body
        assert HTTP_STATUS[case["code"]] == case["status"]
        read = read_error_body(body, case["status"])
        assert getattr(read, "peer_code", read.code) == case["code"]


@pytest.mark.parametrize(("name", "case"), _cases("cbor"))
def test_cbor_decoding_limits(name: str, case: dict[str, Any]) -> None:
    """Single CBOR items: accepted as they are, or refused with their code (E1-E6)."""
    data = bytes.fromhex(case["input"])
    if case["error"] is None:
        loads(data, what="vector", max_size=case["max_size"])
    else:
        with _refused(case["error"], case["name"]):
            loads(data, what="vector", max_size=case["max_size"])


@pytest.mark.parametrize("name", SETS)
async def test_reference_device_refuses_the_device_side_vectors_over_http(
    name: str, tmp_path: Path, socket_enabled: None
) -> None:
    """The reference device (holding links 0-1) answers each bad hello and /links body with its status and
    code, keeps its chain through them, and then takes the good /links body."""
    vec = _load(name)
    write_identity(tmp_path, _key(vec, "device_idevid"), [_cert(vec, "idevid")])
    write_invoice(tmp_path, [bytes.fromhex(x) for x in vec["chain"]["links"][:2]])
    server = DeviceServer(
        make_app(
            ReferenceDevice(tmp_path, clock=time.monotonic), limits=ServingLimits(rate=1000.0, burst=1000)
        )
    )
    port = await server.start(["127.0.0.1"], 0)
    base = f"http://127.0.0.1:{port}{BASE_PATH}"
    posts = [("/hello", case) for case in vec["handshake_invalid"] if case["step"] == "hello"]
    posts += [("/links", case) for case in vec["links"]["invalid_links_requests"]]
    try:
        async with aiohttp.ClientSession(headers={"Content-Type": MEDIA_TYPE}) as http:
            for path, case in posts:
                async with http.post(base + path, data=bytes.fromhex(case["input"])) as answer:
                    body = await answer.read()
                refused = read_error_body(body, answer.status)
                assert (answer.status, refused.code) == (HTTP_STATUS[case["error"]], case["error"]), case[
                    "name"
                ]
            async with http.get(base + "/info") as answer:
                assert loads(await answer.read(), what="info", max_size=1024)[19] == 2
            async with http.post(
                base + "/links", data=bytes.fromhex(vec["links"]["links_request"])
            ) as answer:
                assert answer.status == 204
            async with http.get(base + "/info") as answer:
                info = loads(await answer.read(), what="info", max_size=1024)
            assert (info[19], info[14].hex()) == (3, vec["links"]["digests_after"][-1])
    finally:
        await server.stop()


@pytest.mark.parametrize("name", SETS)
def test_root_offer(name: str) -> None:
    """The offer body reads as the vector root (O1-O5); the handshake's proof bundle, refused by a
    registrar that trusts no root (P6), verifies with the offered root as its only one (O8)."""
    vec = _load(name)
    group = vec["root_offer"]
    offered = read_root_offer(bytes.fromhex(group["body"]))
    assert offered == _cert(vec, group["certificate"])
    hs = vec["handshake"]

    def session() -> RegistrarHandshake:
        return RegistrarHandshake(
            _key(vec, "home_b"), issued_at=vec["now"], nonce=bytes.fromhex(hs["registrar_nonce"])
        )

    with _refused("untrusted_manufacturer", "proof bundle with no trusted root"):
        session().read_proof(bytes.fromhex(hs["proof_bundle"]), roots=[], now=_time(vec["now"]))
    session().read_proof(bytes.fromhex(hs["proof_bundle"]), roots=[offered], now=_time(vec["now"]))


@pytest.mark.parametrize(("name", "case"), _cases("root_offer.invalid"))
def test_invalid_root_offers(name: str, case: dict[str, Any]) -> None:
    """Offers that are no root are refused with their code; a registrar then asks nothing."""
    with _refused(case["error"], case["name"]):
        read_root_offer(bytes.fromhex(case["input"]))


@pytest.mark.parametrize("name", SETS)
def test_recovery_key_strings(name: str) -> None:
    """The recovery key string is the vector recovery key; AAHK2 names home A, then that key (§5, §5.1)."""
    vec = _load(name)
    group = vec["recovery"]
    recovery = parse_recovery_key(group["recovery_key_string"])
    assert fingerprint(recovery.public_key()).hex() == vec["keys"]["recovery"]["fingerprint"]
    assert format_recovery_key(_key(vec, "recovery")) == group["recovery_key_string"]
    keys = parse_home_keys(group["home_key_string_with_recovery"])
    assert [fingerprint(key).hex() for key in keys] == [
        vec["keys"]["home_a"]["fingerprint"],
        vec["keys"]["recovery"]["fingerprint"],
    ]


@pytest.mark.parametrize(("name", "case"), _cases("recovery.recovery_key_strings_invalid"))
def test_invalid_recovery_key_strings(name: str, case: dict[str, Any]) -> None:
    with pytest.raises(RecoveryKeyStringError) as caught:
        parse_recovery_key(case["input"])
    assert (caught.value.code, caught.value.reason) == ("invalid_recovery_key_string", case["reason"])


@pytest.mark.parametrize(("name", "case"), _cases("recovery.home_key_strings_with_recovery_invalid"))
def test_invalid_home_key_strings_with_recovery(name: str, case: dict[str, Any]) -> None:
    with pytest.raises(HomeKeyStringError) as caught:
        parse_home_keys(case["input"])
    assert (caught.value.code, caught.value.reason) == ("invalid_home_key_string", case["reason"])


# --- claim codes (§5.2, §7.2a, §14.9) -------------------------------------------------------------------


def _claim_code(vec: dict[str, Any]) -> ClaimCode:
    code = vec["claim"]["code"]
    return ClaimCode(bytes.fromhex(code["hint"]), bytes.fromhex(code["secret"]))


def _unassigned(vec: dict[str, Any]) -> VerifiedChain:
    return verify_chain(
        [bytes.fromhex(vec["claim"]["invoice"])], roots=[_cert(vec, "root")], now=_time(vec["now"])
    )


def _claim_run(vec: dict[str, Any]) -> ClaimRun:
    """Home A's run of the vector: its code, nonce and owners, not finished yet."""
    group = vec["claim"]
    return ClaimRun(
        _claim_code(vec),
        device_id=bytes.fromhex(group["device_id"]),
        home=_key(vec, group["home_key"]).public_key(),
        owners=[_key(vec, name).public_key() for name in group["owners"]],
        nonce=bytes.fromhex(group["registrar_nonce"]),
    )


def _claim_finish(vec: dict[str, Any], run: ClaimRun) -> bytes:
    with fixed_scalar(bytes.fromhex(vec["claim"]["cpace"]["yb_scalar"])):
        return run.finish(bytes.fromhex(vec["claim"]["started"]))


def _claim_device(vec: dict[str, Any], state: dict[str, Any]) -> tuple[ClaimResponder, VerifiedChain]:
    """The device's claim responder in the state a case names, and the chain it holds."""
    group = vec["claim"]
    responder = ClaimResponder(_claim_code(vec), bytes.fromhex(group["device_id"]))
    if state["session"] is not None:
        assert (state["session"]["opened_by"], state["session"]["chain_length_at_start"]) == (
            "claim.start",
            1,
        )
        with fixed_scalar(bytes.fromhex(group["cpace"]["ya_scalar"])):
            start = responder.read_start(bytes.fromhex(group["start"]), _unassigned(vec))
            responder.answer_start(start, now=0.0, nonce=bytes.fromhex(group["device_nonce"]))
    links = [bytes.fromhex(link) for link in group["chain"]["links"]][: state["chain_length"]]
    return responder, verify_chain(links, roots=[_cert(vec, "root")], now=_time(vec["now"]))


def _finish_on(
    vec: dict[str, Any], responder: ClaimResponder, body: bytes, chain: VerifiedChain, now: float
) -> ClaimDone:
    return responder.finish(
        body,
        chain,
        idevid_key=_key(vec, vec["claim"]["device"]),
        idevid_certificate=_cert(vec, vec["claim"]["idevid"]),
        now=now,
        issued_at=vec["claim"]["issued_at"],
    )


@pytest.mark.parametrize("name", SETS)
def test_claim_code_strings(name: str) -> None:
    """The vector code and the §5.2 example format to their strings and parse back, in every spelling."""
    vec = _load(name)
    group = vec["claim"]
    code = _claim_code(vec)
    assert format_claim_code(code) == group["code"]["string"]
    assert code.is_for(bytes.fromhex(group["device_id"]))
    assert (
        hashlib.sha256(b"AutoAdd claim code" + code.password).digest()[:4].hex() == group["code"]["checksum"]
    )
    for case in group["code_strings_valid"]:
        assert parse_claim_code(case["input"]) == code
    example = group["example_code"]
    parsed = parse_claim_code(example["string"])
    assert (parsed.hint.hex(), parsed.secret.hex()) == (example["hint"], example["secret"])


@pytest.mark.parametrize(("name", "case"), _cases("claim.code_strings_invalid"))
def test_invalid_claim_code_strings(name: str, case: dict[str, Any]) -> None:
    with pytest.raises(ClaimCodeStringError) as caught:
        parse_claim_code(case["input"])
    assert (caught.value.code, caught.value.reason) == ("invalid_claim_code_string", case["reason"])


@pytest.mark.parametrize("name", SETS)
def test_claim_run(name: str) -> None:
    """Both sides rebuild the run from the listed inputs; the answer is the claim link, which extends the
    unassigned invoice to the listed chain, for the registrar and for any holder of the chain offline."""
    vec = _load(name)
    group = vec["claim"]
    unassigned = _unassigned(vec)
    assert unassigned.head.owners == ()
    assert unassigned.device_id.hex() == group["device_id"] == vec["keys"][group["device"]]["fingerprint"]

    run = _claim_run(vec)
    assert run.start.hex() == group["start"]
    responder = ClaimResponder(_claim_code(vec), unassigned.device_id)
    with fixed_scalar(bytes.fromhex(group["cpace"]["ya_scalar"])):
        start = responder.read_start(run.start, unassigned)
        started = responder.answer_start(start, now=0.0, nonce=bytes.fromhex(group["device_nonce"]))
    assert started.hex() == group["started"]
    finish = _claim_finish(vec, run)
    assert finish.hex() == group["finish"]

    done = _finish_on(vec, responder, finish, unassigned, 1.0)
    answer = bytes.fromhex(group["answer"])
    assert done.answer == answer or vec["key_type"] == KeyType.P256  # ES256 signs anew
    fields = loads(answer, what="answer", max_size=16512)
    assert fields == {
        1: 1,
        Label.LINKS: [bytes.fromhex(group["chain"]["links"][1])],
        Label.CONFIRMATION: bytes.fromhex(group["cpace"]["ta"]),
    }
    assert done.confirmation.hex() == group["cpace"]["ta"]

    read = run.read_link(answer, unassigned)
    assert [link.hex() for link in read.links] == group["chain"]["links"]
    for roots in ([_cert(vec, "root")], None):
        chain = verify_chain(read.links, roots=roots, now=_time(vec["now"]))
        assert [d.hex() for d in chain.digests] == group["chain"]["digests"]
        assert [r.value for r in chain.reasons] == group["chain"]["reasons"] == ["claim"]
        assert [fp.hex() for fp in chain.head.owner_fingerprints] == group["chain"]["owners_at_head"]
        assert group["chain"]["owners_at_head"] == [vec["keys"][o]["fingerprint"] for o in group["owners"]]
        assert chain.head.signer == unassigned.device_id


def _lv(*parts: bytes) -> bytes:
    """lv_cat of draft-irtf-cfrg-cpace: each part after its length in LEB128."""
    out = b""
    for part in parts:
        length, prefix = len(part), bytearray()
        while True:
            prefix.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
            length >>= 7
            if not length:
                break
        out += bytes(prefix) + part
    return out


@pytest.mark.parametrize("name", SETS)
def test_claim_cpace_values_follow_the_documented_formulas(name: str) -> None:
    """PRS, CI, sid, ADb and every CPace value are what §14.9's formulas give from the messages."""
    vec = _load(name)
    group = vec["claim"]
    v = {key: bytes.fromhex(value) for key, value in group["cpace"].items()}
    start = loads(bytes.fromhex(group["start"]), what="start", max_size=8192)
    started = loads(bytes.fromhex(group["started"]), what="started", max_size=8192)
    finish = loads(bytes.fromhex(group["finish"]), what="finish", max_size=8192)
    assert v["prs"] == _claim_code(vec).hint + _claim_code(vec).secret
    assert v["ci"] == b"AutoAdd claim" + start[Label.DEVICE_ID] + start[Label.REGISTRAR_FINGERPRINT]
    assert start[Label.REGISTRAR_FINGERPRINT].hex() == vec["keys"][group["home_key"]]["fingerprint"]
    assert v["sid"] == start[Label.REGISTRAR_NONCE] + started[Label.DEVICE_NONCE]
    assert v["generator_string"] == _lv(b"CPace255", v["prs"], bytes(106), v["ci"], v["sid"])
    assert cpace._calculate_generator(v["prs"], v["ci"], v["sid"]) == v["generator"]
    assert x25519(v["ya_scalar"], v["generator"]) == v["ya"] == started[Label.SHARE]
    assert x25519(v["yb_scalar"], v["generator"]) == v["yb"] == finish[Label.SHARE]
    assert x25519(v["ya_scalar"], v["yb"]) == v["k"] == x25519(v["yb_scalar"], v["ya"])
    assert v["ada"] == b""
    assert v["adb"] == cbor2.dumps(finish[Label.OWNERS])
    transcript = _lv(v["ya"], v["ada"]) + _lv(v["yb"], v["adb"])
    assert hashlib.sha512(_lv(b"CPace255_ISK", v["sid"], v["k"]) + transcript).digest() == v["isk"]
    assert hashlib.sha512(b"CPaceMac" + v["sid"] + v["isk"]).digest() == v["mac_key"]
    tb = hmac.new(v["mac_key"], _lv(v["yb"], v["adb"]), hashlib.sha512).digest()
    assert tb == v["tb"] == finish[Label.CONFIRMATION]
    ta = hmac.new(v["mac_key"], _lv(v["ya"], v["ada"]), hashlib.sha512).digest()
    assert ta == v["ta"] == loads(bytes.fromhex(group["answer"]), what="answer", max_size=16512)[21]


@pytest.mark.parametrize("name", SETS)
def test_claim_delays(name: str) -> None:
    """Q4's delay for each listed wrong-code count."""
    for failures, seconds in _load(name)["claim"]["delays"]:
        assert claim_delay(failures) == seconds


@pytest.mark.parametrize(("name", "case"), _cases("claim.invalid_chains"))
def test_invalid_claim_chains(name: str, case: dict[str, Any]) -> None:
    """Claim links refused by any chain verifier, with and without roots (the device's view)."""
    vec = _load(name)
    data = [bytes.fromhex(x) for x in case["input"]]
    for roots in ([_cert(vec, root) for root in case["roots"]], None):
        with _refused(case["error"], case["name"]):
            verify_chain(data, roots=roots, now=_time(case["now"]))


#: Refusals of a finish that come before the session is used up (F1-F2): the good finish still works.
_BEFORE_F3 = {"malformed", "unsupported_version", "too_large", "unknown_session"}


@pytest.mark.parametrize(("name", "case"), _cases("claim.invalid_steps"))
def test_invalid_claim_steps(name: str, case: dict[str, Any]) -> None:
    """Each claim message is refused with its code in the state it names; a device's session is used up
    by a refused finish from F3 on, and a registrar's run still takes the good answer."""
    vec = _load(name)
    group = vec["claim"]
    data = bytes.fromhex(case["input"])
    good_finish = bytes.fromhex(group["finish"])
    if case["step"] == "claim_start":
        responder, chain = _claim_device(vec, case["device"])
        with _refused(case["error"], case["name"]):
            responder.read_start(data, chain)
    elif case["step"] == "claim_finish":
        state = case["device"]
        responder, chain = _claim_device(vec, state)
        with _refused(case["error"], case["name"]):
            _finish_on(vec, responder, data, chain, state["now"])
        if chain.head.owners or state["now"] >= 60:
            return
        if case["error"] in _BEFORE_F3:
            _finish_on(vec, responder, good_finish, chain, state["now"])
        else:
            with _refused("unknown_session", case["name"]):
                _finish_on(vec, responder, good_finish, chain, state["now"])
    elif case["step"] == "claim_started":
        run = _claim_run(vec)
        with _refused(case["error"], case["name"]):
            run.finish(data)
        assert _claim_finish(vec, run) == good_finish
    else:
        run = _claim_run(vec)
        _claim_finish(vec, run)
        with _refused(case["error"], case["name"]):
            run.read_link(data, _unassigned(vec))
        run.read_link(bytes.fromhex(group["answer"]), _unassigned(vec))

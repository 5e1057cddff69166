"""Claim codes (§5.2, §7.2a, §14.9): the code string, the CPace run, the claim link and its rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cpace import CPace, CPaceRole
import pytest

from custom_components.autoadd.protocol import chain as chains, cose
from custom_components.autoadd.protocol.certificates import certificate_hash, certificate_to_der
from custom_components.autoadd.protocol.claim import (
    MAX_CLAIM_DELAY,
    ClaimDone,
    ClaimResponder,
    ClaimRun,
    claim_delay,
)
from custom_components.autoadd.protocol.claim_code import (
    ClaimCode,
    format_claim_code,
    new_claim_code,
    parse_claim_code,
)
from custom_components.autoadd.protocol.const import ContentType, Label, LinkReason
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import (
    AlreadyClaimedError,
    AutoAddError,
    BadSignatureError,
    ClaimCodeStringError,
    ClaimUnprovenError,
    MalformedError,
    NotOwnerError,
    OwnersError,
    SignerNotOwnerError,
    UnknownSessionError,
    WrongClaimCodeError,
    WrongDeviceError,
)
from custom_components.autoadd.protocol.keys import fingerprint, public_key_to_bytes
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key

HOME = fixed_key("claim home")
RECOVERY = fixed_key("claim recovery")
THIEF = fixed_key("claim thief")
CODE = ClaimCode(b"\x00\x00\x00", bytes(range(8)))


@pytest.fixture(name="device")
def _device() -> Device:
    maker = Manufacturer.create()
    device = maker.make_device("SN9001")
    device.links = [maker.invoice(device, [])]
    return device


def _code(device: Device) -> ClaimCode:
    return ClaimCode(device.device_id[:3], CODE.secret)


def _responder(device: Device) -> ClaimResponder:
    return ClaimResponder(_code(device), device.device_id)


def _run(device: Device, code: ClaimCode | None = None, **kwargs: Any) -> ClaimRun:
    options: dict[str, Any] = {"device_id": device.device_id, "home": HOME.public_key()}
    options["owners"] = [HOME.public_key(), RECOVERY.public_key()]
    return ClaimRun(code or _code(device), **(options | kwargs))


def _done(responder: ClaimResponder, device: Device, body: bytes, now: float = 0.0) -> ClaimDone:
    return responder.finish(
        body, device.chain(), idevid_key=device.key, idevid_certificate=device.cert, now=now, issued_at=NOW_TS
    )


def _finish(responder: ClaimResponder, device: Device, body: bytes, now: float = 0.0) -> chains.VerifiedChain:
    return _done(responder, device, body, now).chain


def _started(responder: ClaimResponder, device: Device, run: ClaimRun) -> bytes:
    return responder.answer_start(responder.read_start(run.start, device.chain()), now=0.0)


def test_claim_code_string_round_trip(device: Device) -> None:
    code = new_claim_code(device.device_id)
    text = format_claim_code(code)
    assert text.startswith("AACC1-")
    assert len(text.replace("-", "")) == 5 + 24
    assert parse_claim_code(text.lower().replace("-", " ")) == code
    assert code.is_for(device.device_id)
    assert code.secret.hex() not in repr(code)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t.replace("AACC1", "AARK1"), "prefix"),
        (lambda t: t[:-1], "length"),
        (lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], "checksum"),
        (lambda t: t + "1", "characters"),
        (lambda t: t.replace("A", "Ä", 1), "characters"),
    ],
)
def test_claim_code_string_refused(mangle: Callable[[str], str], reason: str) -> None:
    with pytest.raises(ClaimCodeStringError) as err:
        parse_claim_code(mangle(format_claim_code(CODE)))
    assert err.value.code == "invalid_claim_code_string"
    assert err.value.reason == reason


def test_claim_run_names_this_home(device: Device) -> None:
    responder, run = _responder(device), _run(device)
    done = _done(responder, device, run.finish(_started(responder, device, run)))
    claimed = done.chain
    assert claimed.head.owner_fingerprints == (
        fingerprint(HOME.public_key()),
        fingerprint(RECOVERY.public_key()),
    )
    assert claimed.reasons == (LinkReason.CLAIM,)
    assert claimed.head.signer == device.device_id
    # The registrar reads it back; any holder of the chain verifies it offline against the invoice.
    assert run.read_link(done.answer, device.chain()).links == claimed.links
    again = chains.verify_chain(list(claimed.links), roots=[device.maker.root], now=NOW)
    assert again.head == claimed.head
    # From there the chain works as for any device: an owner extends it.
    rotated = chains.issue_link(
        signer=HOME, head=claimed.head, owners=[THIEF.public_key()], reason=LinkReason.HANDOVER, issued_at=1
    )
    assert chains.extend(claimed, [rotated]).head.is_owner(THIEF.public_key())


def test_wrong_code_uses_up_the_run(device: Device) -> None:
    responder = _responder(device)
    wrong = ClaimCode(device.device_id[:3], bytes(8))
    run = _run(device, wrong)
    body = run.finish(_started(responder, device, run))
    with pytest.raises(WrongClaimCodeError) as err:
        _finish(responder, device, body)
    assert err.value.detail == "the claim code run failed"  # never how close
    with pytest.raises(UnknownSessionError):
        _finish(responder, device, body)  # one guess per run: the session is gone


def test_relay_cannot_change_the_owners(device: Device) -> None:
    responder, run = _responder(device), _run(device)
    fields = loads(run.finish(_started(responder, device, run)), what="t", max_size=8192)
    fields[Label.OWNERS] = [public_key_to_bytes(THIEF.public_key())]
    with pytest.raises(WrongClaimCodeError):
        _finish(responder, device, dumps(fields))


@pytest.mark.parametrize("owners", [[THIEF], [THIEF, HOME]], ids=["another home", "another home first"])
def test_bound_to_the_home_key(device: Device, owners: list[Any]) -> None:
    """A run bound to one home's fingerprint names that home first, even with the right code: so a home
    named after another's was claimed by that one (and is asked, as for a hand-over)."""
    responder = _responder(device)
    run = _run(device, owners=[owner.public_key() for owner in owners])
    with pytest.raises(NotOwnerError):
        _finish(responder, device, run.finish(_started(responder, device, run)))
    assert not device.chain().head.owners


def test_relayed_start_for_another_home_fails(device: Device) -> None:
    """A relay that swaps the home fingerprint in the start breaks CI: the code no longer confirms."""
    responder, run = _responder(device), _run(device)
    start = loads(run.start, what="t", max_size=8192)
    start[Label.REGISTRAR_FINGERPRINT] = fingerprint(THIEF.public_key())
    started = responder.answer_start(responder.read_start(dumps(start), device.chain()), now=0.0)
    with pytest.raises(WrongClaimCodeError):
        _finish(responder, device, run.finish(started))


def test_start_refusals(device: Device) -> None:
    responder, run = _responder(device), _run(device)
    other = Manufacturer.create().make_device("SN9002")
    with pytest.raises(WrongDeviceError):
        responder.read_start(_run(other).start, device.chain())
    claimed = _finish(responder, device, run.finish(_started(responder, device, run)))
    with pytest.raises(AlreadyClaimedError):
        responder.read_start(_run(device).start, claimed)
    with pytest.raises(MalformedError):
        responder.read_start(dumps({Label.VERSION: 1}), device.chain())


def test_expired_session(device: Device) -> None:
    responder, run = _responder(device), _run(device)
    body = run.finish(_started(responder, device, run))
    with pytest.raises(UnknownSessionError):
        _finish(responder, device, body, now=61.0)


def _answer(links: list[bytes], confirmation: bytes) -> bytes:
    return dumps({Label.VERSION: 1, Label.LINKS: links, Label.CONFIRMATION: confirmation})


def test_registrar_refuses_a_link_naming_others(device: Device) -> None:
    responder, run = _responder(device), _run(device)
    done = _done(responder, device, run.finish(_started(responder, device, run)))
    link = chains_claim(device, device.chain().head, [HOME.public_key()])
    with pytest.raises(NotOwnerError):
        run.read_link(_answer([link], done.confirmation), device.chain())
    with pytest.raises(MalformedError):
        run.read_link(dumps(link), device.chain())  # a bare link: no confirmation
    with pytest.raises(MalformedError):
        run.read_link(_answer([link, link], done.confirmation), device.chain())


def test_a_device_without_the_code_cannot_answer_with_a_claim_link(device: Device) -> None:
    """A device under a root its maker made up can sign any claim link; without the code it can't make
    the tag that must come with it (its CPace side keyed by a guess), so the registrar takes nothing."""
    run = _run(device)
    start = loads(run.start, what="t", max_size=8192)
    nonce = bytes(range(32))
    ci = b"AutoAdd claim" + device.device_id + fingerprint(HOME.public_key())
    fake = CPace.start(
        role=CPaceRole.INITIATOR,
        prs=device.device_id[:3] + bytes(8),
        sid=start[Label.REGISTRAR_NONCE] + nonce,
        ci=ci,
    )
    finish = loads(
        run.finish(dumps({Label.VERSION: 1, Label.DEVICE_NONCE: nonce, Label.SHARE: fake.public_share})),
        what="t",
        max_size=8192,
    )
    fake.derive(finish[Label.SHARE], dumps(finish[Label.OWNERS]))
    assert not fake.verify(finish[Label.CONFIRMATION])  # it can tell the code is not its guess, no more
    link = chains_claim(device, device.chain().head, [HOME.public_key(), RECOVERY.public_key()])
    for tag in (fake.tag(), finish[Label.CONFIRMATION], bytes(64)):  # its own, the registrar's echoed
        with pytest.raises(ClaimUnprovenError):
            run.read_link(_answer([link], tag), device.chain())


def test_low_order_share_refused(device: Device) -> None:
    run = _run(device)
    started = dumps({Label.VERSION: 1, Label.DEVICE_NONCE: bytes(32), Label.SHARE: bytes(32)})
    with pytest.raises(MalformedError):
        run.finish(started)
    responder = _responder(device)
    good = _run(device)
    fields = loads(good.finish(_started(responder, device, good)), what="t", max_size=8192)
    fields[Label.SHARE] = bytes(32)
    with pytest.raises(WrongClaimCodeError):
        _finish(responder, device, dumps(fields))


def test_claim_delay_grows_and_stops_at_an_hour() -> None:
    assert [claim_delay(n) for n in range(8)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert claim_delay(40) == MAX_CLAIM_DELAY == 3600


# --- The claim link's rules (CL1-CL4, L10) ---------------------------------------------------------------


def chains_claim(device: Device, head: chains.ChainHead, owners: list[Any], **header: Any) -> bytes:
    payload = {
        Label.VERSION: 1,
        Label.DEVICE_ID: head.device_id,
        Label.PREVIOUS: head.digest,
        Label.SEQUENCE: 1,
        Label.OWNERS: [public_key_to_bytes(owner) for owner in owners],
        Label.REASON: header.pop("reason", "claim"),
        Label.ISSUED_AT: NOW_TS,
    }
    options: dict[str, Any] = {"kid": head.device_id, "x5chain": (certificate_to_der(device.cert),)}
    return cose.sign(payload, ContentType.LINK, header.pop("key", device.key), **(options | header))


def _refused(device: Device, link: bytes, error: type[AutoAddError]) -> None:
    with pytest.raises(error) as err:
        chains.extend(device.chain(), [link])
    assert err.value.index == 1


def test_claim_link_rules(device: Device) -> None:
    head, owners = device.chain().head, [HOME.public_key()]
    assert chains.extend(device.chain(), [chains_claim(device, head, owners)]).head.is_owner(
        HOME.public_key()
    )
    other = Manufacturer.create("Globex").make_device("SN1")
    _refused(device, chains_claim(device, head, owners, x5chain=()), SignerNotOwnerError)
    _refused(
        device,
        chains_claim(device, head, owners, x5chain=(certificate_to_der(other.cert),)),
        SignerNotOwnerError,
    )
    _refused(device, chains_claim(device, head, owners, kid=bytes(32)), SignerNotOwnerError)
    _refused(device, chains_claim(device, head, owners, key=other.key), BadSignatureError)
    _refused(device, chains_claim(device, head, owners, reason="rotate"), MalformedError)
    _refused(device, chains_claim(device, head, []), OwnersError)
    assert certificate_hash(device.cert) == device.chain().idevid_hash


def test_claim_reason_only_on_unassigned_stock() -> None:
    maker = Manufacturer.create()
    device = maker.make_device("SN9004")
    device.links = [maker.invoice(device, [HOME])]
    link = chains.issue_link(
        signer=HOME,
        head=device.chain().head,
        owners=[HOME.public_key()],
        reason=LinkReason.CLAIM,
        issued_at=1,
    )
    _refused(device, link, MalformedError)


def test_a_replayed_claim_gets_nothing(device: Device) -> None:
    """Everything a claim run sent, replayed: the finish to the device (its session is gone, and then it
    has owners), and the device's answer to a new run of the same home (the tag is bound to the old
    nonces), so a recorded claim claims nothing again."""
    responder, run = _responder(device), _run(device)
    finish = run.finish(_started(responder, device, run))
    done = _done(responder, device, finish)
    with pytest.raises(UnknownSessionError):
        _done(responder, device, finish)  # the session it belonged to is used up
    again = _run(device)
    _started(responder, device, again)  # a new session (as if the device was reset to unassigned)
    with pytest.raises(UnknownSessionError):
        _done(responder, device, finish)  # the old finish names the old device nonce
    fresh = _run(device)
    fresh.finish(_started(ClaimResponder(_code(device), device.device_id), device, fresh))
    with pytest.raises(ClaimUnprovenError):
        fresh.read_link(done.answer, device.chain())  # the recorded answer, to a run with new nonces
    claimed = done.chain
    with pytest.raises(AlreadyClaimedError):
        responder.read_start(again.start, claimed)  # and once it holds the link, no run at all

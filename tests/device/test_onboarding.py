"""The reference device over real HTTP: onboarding, re-onboarding, refusals, hand-over and limits."""

from __future__ import annotations

import logging

import pytest

from custom_components.autoadd.protocol.chain import issue_link
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.errors import (
    MalformedError,
    NotOwnerError,
    PreviousHashError,
    RollbackError,
    SignerNotOwnerError,
    TooLargeError,
    UnknownSessionError,
)
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.protocol.transport import PeerError
from tests.factory import NOW, NOW_TS, fixed_key

from .conftest import RunningDevice


async def test_full_onboarding_imprints_the_owner(running: RunningDevice, home: PrivateKey) -> None:
    """A good handshake ends with a verified receipt and the device claimed by this home."""
    session = await running.onboard(home)
    assert session.done
    assert running.device is not None
    assert running.device.claimed
    assert running.device.state.owner == fingerprint(home.public_key())
    assert running.device.state.config == {"room": "hall"}


async def test_state_survives_a_restart(running: RunningDevice, home: PrivateKey) -> None:
    """The imprint and chain are on disk: a restarted device is still claimed."""
    await running.onboard(home)
    device = await running.restart()
    assert device.claimed
    assert device.state.owner == fingerprint(home.public_key())


async def test_factory_reset_lets_the_owner_onboard_again(running: RunningDevice, home: PrivateKey) -> None:
    """Factory reset clears the imprint; the same owner onboards again, nobody else can."""
    await running.onboard(home)
    assert running.device is not None
    running.device.factory_reset()
    assert not running.device.claimed
    with pytest.raises(NotOwnerError):
        await running.onboard(fixed_key("stranger"))
    await running.onboard(home)
    assert running.device.claimed


async def test_stranger_cannot_onboard(running: RunningDevice) -> None:
    """A registrar whose key is not an owner cannot even make a note; a forged one is refused."""
    stranger = fixed_key("stranger")
    session = RegistrarHandshake(stranger, issued_at=NOW_TS)
    session.read_proof(await running.client.hello(session.hello), roots=[running.maker.root], now=NOW)
    with pytest.raises(NotOwnerError):
        session.make_note(signer=stranger, issued_at=NOW_TS)
    assert running.device is not None
    assert not running.device.claimed


async def test_stranger_note_is_refused_by_the_device(running: RunningDevice) -> None:
    """Even a note a stranger signs on its own is refused by the device (403 not_owner), changing nothing."""
    stranger = fixed_key("stranger")
    session = RegistrarHandshake(stranger, issued_at=NOW_TS)
    proven = session.read_proof(
        await running.client.hello(session.hello), roots=[running.maker.root], now=NOW
    )
    # Skip the registrar's own ownership check, as a malicious registrar would.
    forged = _note_without_owner_check(session, stranger, proven.chain.head.digest)
    with pytest.raises(NotOwnerError):
        await running.client.note(forged)
    assert running.device is not None
    assert not running.device.claimed


def _note_without_owner_check(session: RegistrarHandshake, signer: PrivateKey, head: bytes) -> bytes:
    from custom_components.autoadd.protocol import cose
    from custom_components.autoadd.protocol.const import ContentType, Label

    assert session.device is not None
    payload = {
        Label.VERSION: 1,
        Label.DEVICE_ID: session.device.device_id,
        Label.REGISTRAR_NONCE: session.registrar_nonce,
        Label.DEVICE_NONCE: session.device.device_nonce,
        Label.CHAIN_HEAD: head,
        Label.LINKS: [],
        Label.ISSUED_AT: NOW_TS,
    }
    return cose.sign(payload, ContentType.NOTE, signer, kid=fingerprint(signer.public_key()))


async def test_replayed_note_is_refused(running: RunningDevice, home: PrivateKey) -> None:
    """A note already taken is refused (410 unknown_session): the session is used up."""
    session = RegistrarHandshake(home, issued_at=NOW_TS)
    session.read_proof(await running.client.hello(session.hello), roots=[running.maker.root], now=NOW)
    note = session.make_note(signer=home, issued_at=NOW_TS)
    await running.client.note(note)
    assert running.device is not None
    before = running.device.state
    with pytest.raises(UnknownSessionError):
        await running.client.note(note)
    assert running.device.state == before


async def test_expired_session_is_refused(running: RunningDevice, home: PrivateKey) -> None:
    """A note that comes after the session's lifetime is refused."""
    session = RegistrarHandshake(home, issued_at=NOW_TS)
    session.read_proof(await running.client.hello(session.hello), roots=[running.maker.root], now=NOW)
    note = session.make_note(signer=home, issued_at=NOW_TS)
    running.clock.now += 61
    with pytest.raises(UnknownSessionError):
        await running.client.note(note)
    assert running.device is not None
    assert not running.device.claimed


async def test_handover_then_previous_owner_is_refused(running: RunningDevice, home: PrivateKey) -> None:
    """After a hand-over link is pushed, the new owner onboards and the previous owner's note is refused."""
    await running.onboard(home)
    assert running.device is not None
    buyer = fixed_key("buyer")
    link = issue_link(
        signer=home,
        head=running.device.chain.head,
        owners=[buyer.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    await running.client.links([link])
    assert not running.device.claimed  # the imprinted owner is no longer an owner
    with pytest.raises(NotOwnerError):
        await running.onboard(home)
    await running.onboard(buyer)
    assert running.device.state.owner == fingerprint(buyer.public_key())


async def test_links_from_a_non_owner_are_refused(running: RunningDevice) -> None:
    """A link signed by someone who is not an owner is refused (403), the chain unchanged."""
    assert running.device is not None
    stranger = fixed_key("stranger")
    head = running.device.chain.head
    from dataclasses import replace

    fake_head = replace(head, owners=(stranger.public_key(),))
    link = issue_link(
        signer=stranger,
        head=fake_head,
        owners=[stranger.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    with pytest.raises(SignerNotOwnerError):
        await running.client.links([link])
    assert running.device.chain.head == head


async def test_rollback_chain_is_refused(running: RunningDevice, home: PrivateKey) -> None:
    """Once rotated, the device refuses links that extend an older head, and keeps its chain after reset."""
    assert running.device is not None
    rotated = fixed_key("rotated home")
    old_head = running.device.chain.head
    first = issue_link(
        signer=home, head=old_head, owners=[rotated.public_key()], reason=LinkReason.ROTATE, issued_at=NOW_TS
    )
    await running.client.links([first])
    # A second branch from the old head (home still holds its old key) must not replace the first.
    fork = issue_link(
        signer=home, head=old_head, owners=[home.public_key()], reason=LinkReason.ROTATE, issued_at=NOW_TS + 1
    )
    with pytest.raises((PreviousHashError, SignerNotOwnerError)):
        await running.client.links([fork])
    running.device.factory_reset()
    device = await running.restart()
    assert len(device.chain.links) == 2
    # The old owner's note is refused even after the factory reset: no rollback to the invoice.
    with pytest.raises(NotOwnerError):
        await running.onboard(home)
    _ = RollbackError


async def test_malformed_and_oversized_requests(running: RunningDevice) -> None:
    """Garbage is a 400 malformed, a body over the limit a 413 too_large; nothing changes."""
    assert running.device is not None
    before = running.device.state
    with pytest.raises(MalformedError):
        await running.client.hello(b"\x00garbage")
    with pytest.raises(TooLargeError):
        await running.client.hello(b"\x00" * 9000)
    with pytest.raises(TooLargeError):
        await running.client.note(b"\x00" * 300_000)
    assert running.device.state == before


async def test_rate_limit(make_device, home: PrivateKey) -> None:  # type: ignore[no-untyped-def]
    """Past its burst the device answers 429 rate_limited."""
    device = make_device([home])
    device.rate, device.burst = 0.001, 2
    await device.start()
    try:
        await device.client.info()
        await device.client.info()
        with pytest.raises(PeerError) as caught:
            await device.client.hello(b"x")
        assert caught.value.status == 429
    finally:
        await device.stop()


async def test_wrong_content_type_is_415(running: RunningDevice) -> None:
    """A body that is not application/cbor is refused with 415 before it is read."""
    async with running.session.post(
        f"http://127.0.0.1:{running.port}/autoadd/v1/hello",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 415


async def test_rate_limited_answer_says_when_to_retry(make_device, home: PrivateKey) -> None:  # type: ignore[no-untyped-def]
    """A 429 carries Retry-After."""
    device = make_device([home])
    device.rate, device.burst = 0.001, 0
    await device.start()
    try:
        async with device.session.get(f"http://127.0.0.1:{device.port}/autoadd/v1/info") as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "1"
    finally:
        await device.stop()


async def test_accepted_note_is_logged_with_the_owners_full_display_fingerprint(
    running: RunningDevice, home: PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    """The device's log names the owner exactly as HA and the vendor tool show it: 8 groups of 4."""
    caplog.set_level(logging.INFO, logger="autoadd_device")
    await running.onboard(home)
    shown = format_fingerprint(fingerprint(home.public_key()))
    assert len(shown.split(" ")) == 8
    assert f"note accepted: owner {shown}, chain of 1 link(s)" in caplog.text

"""docs/protocol.md §13, the device's half for what it keeps: sessions and its chain. Replayed notes,
rollback, fork, a relay that rewrites a note, session exhaustion and a stale session, each tried on the
reference device's HTTP endpoints.

Every attack must end in the documented HTTP status and error code and leave the device's chain, owner
imprint and configuration as they were (in memory and on disk); where the spec says the owner can simply
try again, the test shows that too. The messages the device reads are test_threats_device.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from custom_components.autoadd.protocol.chain import encode_chain, issue_link, verify_chain
from custom_components.autoadd.protocol.const import Label, LinkReason
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from custom_components.autoadd.protocol.transport import PATH_LINKS, PATH_NOTE
from tests.factory import NOW, NOW_TS, fixed_key
from tests.protocol.helpers import with_payload
from tests.reference_device import RunningDevice, note_without_owner_check

from .test_threats_device import ATTACKER, BUYER, opened, post, rotated, snapshot

# --- Replayed note --------------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["after the device took it", "after the session expired"])
async def test_replayed_note_finds_no_session(
    devices: Callable[..., Any], home: PrivateKey, when: str
) -> None:
    """N4, §8.4: a session is used up by its note and lives 60 s; a recorded note finds none (410)."""
    device: RunningDevice = await devices([home])
    session = await opened(device, home)
    note = session.make_note(signer=home, issued_at=NOW_TS, config={"room": "hall"})
    if when == "after the device took it":
        session.read_receipt(await device.client.note(note))
    else:
        device.clock.now += 61
    before = snapshot(device)

    assert await post(device, PATH_NOTE, note) == (410, "unknown_session")
    assert snapshot(device) == before


# --- Rollback and fork ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        ("the old owner's note after a factory reset", (403, "not_owner")),
        ("the link it already holds, again", (403, "signer_not_owner")),
        ("its invoice alone, as links", (400, "wrong_content_type")),
    ],
)
async def test_rotated_device_is_not_rolled_back(
    devices: Callable[..., Any], home: PrivateKey, attack: str, expected: tuple[int, str]
) -> None:
    """K2, §11.3: the device only ever extends its chain, and a factory reset keeps it, so the key a
    rotation replaced cannot take the device back."""
    device: RunningDevice = await devices([home])
    assert device.device is not None
    new_home = fixed_key("threat rotated home")
    link = rotated(device, home, [new_home])
    assert await post(device, PATH_LINKS, encode_chain([link])) == (204, None)
    if attack == "the old owner's note after a factory reset":
        device.device.factory_reset()
        session = await opened(device, home)
        path, body = PATH_NOTE, note_without_owner_check(session, home)
    elif attack == "the link it already holds, again":
        path, body = PATH_LINKS, encode_chain([link])
    else:
        path, body = PATH_LINKS, encode_chain(device.spec.links[:1])
    before = snapshot(device)

    assert await post(device, path, body) == expected
    assert snapshot(device) == before
    assert len((await device.restart()).chain.links) == 2


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("a second link at the same position", (409, "wrong_sequence")),
        ("the next link of the other branch", (409, "wrong_previous_hash")),
    ],
)
async def test_fork_is_refused_by_the_device(
    devices: Callable[..., Any], home: PrivateKey, branch: str, expected: tuple[int, str]
) -> None:
    """K1, L8, N7: an owner who signs two continuations of one link cannot make the device switch to the
    second one: the device only extends its own head."""
    device: RunningDevice = await devices([home])
    invoice = verify_chain(device.spec.links, roots=[device.maker.root], now=NOW)
    kept = rotated(device, home, [home])
    assert await post(device, PATH_LINKS, encode_chain([kept])) == (204, None)
    other = issue_link(
        signer=home,
        head=invoice.head,
        owners=[home.public_key(), BUYER.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS + 1,
    )
    other_head = verify_chain([*device.spec.links, other], roots=[device.maker.root], now=NOW).head
    onward = issue_link(
        signer=home,
        head=other_head,
        owners=[BUYER.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS + 2,
    )
    before = snapshot(device)

    body = encode_chain([other] if branch == "a second link at the same position" else [onward])
    assert await post(device, PATH_LINKS, body) == expected
    assert snapshot(device) == before


# --- Relay, session exhaustion, stale session -----------------------------------------------------------


async def test_note_altered_in_transit_is_refused(devices: Callable[..., Any], home: PrivateKey) -> None:
    """N11, §13 relay: a relay that rewrites the note's configuration breaks the owner's signature (403);
    the failed note leaves the session open, so the untouched note still goes through."""
    device: RunningDevice = await devices([home])
    session = await opened(device, home)
    note = session.make_note(signer=home, issued_at=NOW_TS, config={"room": "hall"})

    def to_attic(payload: dict[int, Any]) -> None:
        payload[Label.CONFIG] = {"room": "attic"}

    before = snapshot(device)
    assert await post(device, PATH_NOTE, with_payload(note, to_attic)) == (403, "bad_signature")
    assert snapshot(device) == before
    session.read_receipt(await device.client.note(note))
    assert device.device is not None
    assert device.device.state.config == {"room": "hall"}


@pytest.mark.parametrize(("flood", "expected"), [(7, (200, None)), (8, (410, "unknown_session"))])
async def test_hello_flood_evicts_the_oldest_session(
    devices: Callable[..., Any], home: PrivateKey, flood: int, expected: tuple[int, str | None]
) -> None:
    """§8.4: at most 8 open sessions, the oldest dropped: a flood of hellos costs the owner a retry and
    nothing more (denial of service only)."""
    device: RunningDevice = await devices([home])
    session = await opened(device, home)
    note = session.make_note(signer=home, issued_at=NOW_TS)
    for _ in range(flood):
        await device.client.hello(RegistrarHandshake(ATTACKER, issued_at=NOW_TS).hello)
    before = snapshot(device)

    assert await post(device, PATH_NOTE, note) == expected
    assert device.device is not None
    if expected[1] is not None:
        assert snapshot(device) == before
        await device.onboard(home)  # the owner's retry: a new handshake
    assert device.device.state.owner == fingerprint(home.public_key())


async def test_note_for_a_head_that_moved_is_refused(devices: Callable[..., Any], home: PrivateKey) -> None:
    """N7: a note made for the head the device had at the hello is refused once the chain moved (409),
    even one the owner signed; a new handshake on the new head goes through."""
    device: RunningDevice = await devices([home])
    session = await opened(device, home)
    note = session.make_note(signer=home, issued_at=NOW_TS, config={"room": "hall"})
    link = rotated(device, home, [home, BUYER])
    assert await post(device, PATH_LINKS, encode_chain([link])) == (204, None)
    before = snapshot(device)

    assert await post(device, PATH_NOTE, note) == (409, "chain_head_mismatch")
    assert snapshot(device) == before
    assert device.device is not None
    assert device.device.state.owner is None
    await device.onboard(home)
    assert len(device.device.chain.links) == 2

"""The registrar core's refusals and rarer paths, each through the core's own steps on simulated devices:
what is refused says why and changes nothing; what a co-owner or a concurrent block does is followed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from custom_components.autoadd.protocol.chain import encode_chain, issue_link
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import fingerprint
from custom_components.autoadd.registrar import handover, machine, ownership, rotation
from custom_components.autoadd.registrar.core import Candidate
from custom_components.autoadd.registrar.machine import Evidence, TransitionError
from custom_components.autoadd.registrar.ports import StepError
from custom_components.autoadd.registrar.record import ChangeKind, DeviceRecord, Phase
from custom_components.autoadd.registrar.schedule import Urgency
from custom_components.autoadd.registrar.session import Purpose
from tests.factory import NOW_TS, fixed_key
from tests.registrar.sim import SimDevice
from tests.registrar.test_stateful import BUYER, MAKER, SELLER, Home

CO_OWNER = fixed_key("co-owner home")


@pytest.fixture
def home() -> Iterator[Home]:
    """A home with AutoAdd set up, no device yet."""
    machine_ = Home()
    machine_.install()
    yield machine_
    machine_.teardown()


def onboarded(home: Home, *, co_owner: bool = False) -> SimDevice:
    owners = [home.registrar.home.key.public_key(), *([CO_OWNER.public_key()] if co_owner else [])]
    sim = home.place(SimDevice.made(MAKER, f"SN{len(home.sims):04d}", owners, home.clock))
    home.announce(sim)
    assert home.registrar.state.devices[sim.device_id].phase is Phase.ONBOARDED
    return sim


def phase_of(home: Home, sim: SimDevice) -> Phase:
    return home.registrar.state.devices[sim.device_id].phase


def test_the_table_refuses_a_transition_without_its_evidence() -> None:
    record = DeviceRecord(device_id="00" * 32)
    with pytest.raises(TransitionError):
        machine.move(record, Phase.ONBOARDED, Evidence.PROOF)  # only a receipt onboards
    assert record.phase is Phase.SEEN


def test_a_cancel_that_cannot_be_stored_changes_nothing(home: Home) -> None:
    sim = onboarded(home)
    sim.online = False
    home.run(handover.hand_over(home.registrar, sim.device_id, BUYER.public_key()))
    before = home.registrar.state.as_dict()
    home.disk.failing = 1
    with pytest.raises(StepError, match="storage_failed"):
        home.run(handover.cancel_hand_over(home.registrar, sim.device_id))
    assert home.registrar.state.as_dict() == before
    record = home.registrar.state.devices[sim.device_id]
    assert record.change is not None
    assert record.change.kind is ChangeKind.HANDOVER


def test_steps_for_a_device_this_home_cannot_sign_for(home: Home) -> None:
    """A stored chain owned only by a key this home no longer holds: hand-over and cancel say so."""
    sim = onboarded(home)
    record = home.registrar.state.devices[sim.device_id]
    home.registrar.keys.current = type(home.registrar.keys.current).generate(home.registrar.home.key_type)
    with pytest.raises(StepError, match="not_owner"):
        home.run(handover.hand_over(home.registrar, sim.device_id, BUYER.public_key()))
    assert record.change is None
    with pytest.raises(StepError, match="no_handover"):
        home.run(handover.cancel_hand_over(home.registrar, sim.device_id))


def test_a_cancel_needs_a_key_for_the_hand_overs_parent(home: Home) -> None:
    sim = onboarded(home)
    sim.online = False
    home.run(handover.hand_over(home.registrar, sim.device_id, BUYER.public_key()))
    home.registrar.keys.current = type(home.registrar.keys.current).generate(home.registrar.home.key_type)
    with pytest.raises(StepError, match="not_owner"):
        home.run(handover.cancel_hand_over(home.registrar, sim.device_id))
    change = home.registrar.state.devices[sim.device_id].change
    assert change is not None
    assert change.kind is ChangeKind.HANDOVER


def test_a_co_owners_link_drops_a_change_it_makes_impossible(home: Home) -> None:
    """A co-owner moved the chain on while this home's hand-over waited: the hand-over can never extend
    it, so it is dropped (and recorded); the device stays this home's."""
    sim = onboarded(home, co_owner=True)
    sim.online = False
    home.run(handover.hand_over(home.registrar, sim.device_id, BUYER.public_key()))
    sim.take_links(
        [
            issue_link(
                signer=CO_OWNER,
                head=sim.chain.head,
                owners=list(sim.chain.head.owners),
                reason=LinkReason.ROTATE,
                issued_at=NOW_TS + 5,
            )
        ]
    )
    sim.online = True
    home.announce(sim)
    record = home.registrar.state.devices[sim.device_id]
    assert record.change is None
    assert record.chain == list(sim.chain.links)
    assert "change_dropped" in [entry["event"] for entry in record.history]
    assert record.phase is Phase.ONBOARDED
    issue = home.owner.issues[("change_dropped", sim.device_id)]
    assert issue.placeholders["kind"] == "hand-over"
    home.run(handover.hand_over(home.registrar, sim.device_id, BUYER.public_key()))  # started again
    assert not home.owner.told("change_dropped", sim.device_id)


def test_a_co_owners_hand_over_makes_the_device_leave(home: Home) -> None:
    sim = onboarded(home, co_owner=True)
    sim.take_links(
        [
            issue_link(
                signer=CO_OWNER,
                head=sim.chain.head,
                owners=[CO_OWNER.public_key()],
                reason=LinkReason.HANDOVER,
                issued_at=NOW_TS + 5,
            )
        ]
    )
    home.announce(sim)
    assert home.registrar.state.devices[sim.device_id].phase is Phase.HANDED_OVER
    assert sim.device_id in home.owner.left


def test_blocked_while_its_note_was_on_the_way(home: Home) -> None:
    """The owner blocks a device during its attempt: the receipt is kept, the block stays."""
    sim = SimDevice.made(MAKER, "SN0100", [home.registrar.home.key.public_key()], home.clock)
    home.place(sim)
    real = sim.note

    def note_then_block(body: bytes) -> bytes:
        ownership.block(home.registrar, sim.device_id, "blocked by the owner")
        return real(body)

    sim.note = note_then_block  # type: ignore[method-assign]
    home.announce(sim)
    record = home.registrar.state.devices[sim.device_id]
    assert record.phase is Phase.BLOCKED
    assert record.blocked_from is Phase.ONBOARDED
    assert record.chain == list(sim.chain.links)
    ownership.unblock(home.registrar, sim.device_id)
    assert phase_of(home, sim) is Phase.ONBOARDED
    ownership.unblock(home.registrar, sim.device_id)  # not blocked: nothing to do
    assert phase_of(home, sim) is Phase.ONBOARDED


def test_transfer_files_that_are_refused(home: Home) -> None:
    registrar = home.registrar
    ours = registrar.home.key.public_key()
    bought = onboarded(home)
    with pytest.raises(StepError, match="not_a_handover"):
        ownership.read_transfer(registrar, encode_chain(bought.chain.links))
    sim = SimDevice.made(MAKER, "SN0200", [SELLER.public_key()], home.clock)
    link = issue_link(
        signer=SELLER, head=sim.chain.head, owners=[ours], reason=LinkReason.HANDOVER, issued_at=NOW_TS
    )
    data = encode_chain([*sim.chain.links, link])
    ownership.block(registrar, sim.device_id, "blocked by the owner")
    with pytest.raises(StepError, match="already_known"):
        ownership.read_transfer(registrar, data)
    ownership.unblock(registrar, sim.device_id)
    home.run(rotation.rotate_home_key(registrar, destroy_old=True))
    with pytest.raises(StepError, match="key_gone"):
        ownership.read_transfer(registrar, data)


def test_owner_decisions_on_a_device_no_longer_waiting(home: Home) -> None:
    sim = onboarded(home)
    for decide in (ownership.approve, ownership.reject):
        with pytest.raises(StepError, match="no_longer_waiting"):
            decide(home.registrar, sim.device_id)
    assert home.registrar.state.devices[sim.device_id].phase is Phase.ONBOARDED


def test_kept_records_do_not_replace_what_the_store_holds(home: Home) -> None:
    sim = onboarded(home)
    record = home.registrar.state.devices[sim.device_id]
    home.registrar.keys.kept = {sim.device_id: {**record.as_dict(), "phase": "seen", "chain": []}}
    assert ownership.restore_kept(home.registrar)
    assert home.registrar.state.devices[sim.device_id] is record
    assert record.phase is Phase.ONBOARDED


def test_a_device_bought_before_a_rotation_gets_its_link_when_it_shows_up(home: Home) -> None:
    """Its invoice names the old key, which this home kept: the link moving it is signed then, stored
    before the note."""
    first = home.registrar.home.key.public_key()
    home.rotate_home_key(destroy=False)
    sim = home.place(SimDevice.made(MAKER, "SN0300", [first], home.clock))
    home.announce(sim)
    assert sim.head_owners == {home.registrar.home.fingerprint}
    assert home.registrar.state.devices[sim.device_id].phase is Phase.ONBOARDED
    assert fingerprint(first) in {head.signer for head in sim.chain.history[1:]}


def test_a_device_bought_before_a_destroyed_key_is_reported(home: Home) -> None:
    first = home.registrar.home.key.public_key()
    home.rotate_home_key(destroy=True)
    sim = home.place(SimDevice.made(MAKER, "SN0301", [first], home.clock))
    home.announce(sim)
    assert home.owner.told("key_lost", sim.device_id)
    assert home.registrar.state.devices[sim.device_id].phase is Phase.KEY_LOST


def test_a_kept_key_a_stored_chain_still_needs_is_not_destroyed(home: Home) -> None:
    """The registrar store is older than the key store (restored alone): a record still names the kept
    old key with no link moving it. The key outlives its grace period until the device has moved."""
    sim = onboarded(home)
    _, before_rotation = home.disk.image()
    sim.online = False
    home.rotate_home_key(destroy=False)
    home.disk.state = before_rotation
    home.boot(crashed=True)
    home.time_passes(24 * 31)
    assert [old.key is not None for old in home.registrar.keys.retired] == [True]

    sim.online = True
    home.announce(sim)  # the device gets its rotation link now
    assert sim.head_owners == {home.registrar.home.fingerprint}
    home.time_passes(24 * 31)
    assert [old.key is not None for old in home.registrar.keys.retired] == [False]


def test_a_spoofed_unclaimed_announcement_writes_nothing_durably(home: Home) -> None:
    """An announcement makes the registrar ask the device again; the record it proves is on disk already,
    so no durable write happens for it (only a new device's first note costs one)."""
    sim = onboarded(home)
    writes = home.disk.writes
    for _ in range(3):
        home.registrar.announce(Candidate(sim.device_id, home.hosts[sim.device_id], 80, False, {"sv": "9"}))
        home.settle()
    assert home.disk.writes == writes
    assert home.registrar.state.devices[sim.device_id].phase is Phase.ONBOARDED


def test_a_block_outlives_removing_the_integration(home: Home) -> None:
    sim = onboarded(home)
    ownership.block(home.registrar, sim.device_id, "blocked by the owner")
    home.persistence.flush()
    home.remove_and_add_the_integration()
    record = home.registrar.state.devices[sim.device_id]
    assert record.phase is Phase.BLOCKED
    home.announce(sim)
    assert home.registrar.state.devices[sim.device_id].phase is Phase.BLOCKED


def test_blocked_during_the_proof_gets_no_note(home: Home) -> None:
    sim = SimDevice.made(MAKER, "SN0400", [home.registrar.home.key.public_key()], home.clock)
    home.place(sim)
    real = sim.hello

    def hello_then_block(body: bytes) -> bytes:
        ownership.block(home.registrar, sim.device_id, "blocked by the owner")
        return real(body)

    sim.hello = hello_then_block  # type: ignore[method-assign]
    home.announce(sim)
    assert sim.owner is None  # no note reached it
    assert phase_of(home, sim) is Phase.BLOCKED


def test_a_check_never_replaces_a_waiting_delivery(home: Home) -> None:
    """A check asked while a delivery waits for a slot (Check now, or updating Connectivity, as an
    automation may at start) keeps the delivery, and so its retries; a delivery asked after a check wins."""
    sim = onboarded(home)
    queue = home.registrar.queue
    for _ in range(queue.slots):
        queue.occupy(Urgency.KNOWN)  # every slot in use: attempts wait
    for first, then in ((Purpose.DELIVER, Purpose.CHECK), (Purpose.CHECK, Purpose.DELIVER)):
        home.registrar.try_now(sim.device_id, first)
        home.registrar.try_now(sim.device_id, then)
        waiting = queue.waiting(sim.device_id)
        assert waiting is not None
        assert waiting.purpose == Purpose.DELIVER
        queue.discard(sim.device_id)
    for _ in range(queue.slots):
        queue.release(Urgency.KNOWN)


def test_one_talker_per_device_even_as_the_lock_changes_hands(home: Home) -> None:
    """A third party arriving just as the first hands the lock to the second waits for the second: the
    lock is dropped only once nobody holds or waits for it (a claim waits on it like an attempt)."""
    registrar, inside, overlaps = home.registrar, set[str](), list[str]()

    async def talk(name: str, steps: int) -> None:
        async with registrar.talking_to("ab" * 32):
            if inside:
                overlaps.append(name)
            inside.add(name)
            for _ in range(steps):
                await asyncio.sleep(0)
            inside.discard(name)

    async def scene() -> None:
        first = asyncio.create_task(talk("first", 3))
        await asyncio.sleep(0)
        second = asyncio.create_task(talk("second", 3))  # waits for the first
        for _ in range(4):  # the first lets go; the second has not run yet
            await asyncio.sleep(0)
        third = asyncio.create_task(talk("third", 3))
        await asyncio.gather(first, second, third)

    home.loop.run_until_complete(scene())
    assert overlaps == []
    assert registrar._locks == {}

"""Group commits: commits made while a write is under way share the next write, and a failed write undoes
exactly the commits it covered, never a change made after it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Collection
from typing import Any

from hypothesis import given, settings, strategies as st
import orjson
import pytest

from custom_components.autoadd.registrar.commits import Commits
from custom_components.autoadd.registrar.ports import PersistError
from custom_components.autoadd.registrar.record import DeviceRecord
from custom_components.autoadd.registrar.state import RegistrarState
from custom_components.autoadd.registrar.store_image import StoreImage

DEVICES = [f"{index:064x}" for index in range(3)]


class GatedDisk:
    """The Persistence port over a dict: each write takes the state at once (as the real one does),
    then waits for `yields` turns of the loop and, when gated, for `release` of its number (or of all);
    writes listed in `failing` raise."""

    def __init__(self, *, gated: bool = True, failing: set[int] | None = None) -> None:
        self.gated = gated
        self.gates: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
        #: Set once each write (by number) has begun.
        self.begun: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.failing = failing or set()
        self.on_disk: dict[str, Any] = {}
        self.writes = 0
        self.yields: list[int] = []
        self.image = StoreImage()

    async def save_keys(self, keys: Any) -> None:
        raise AssertionError("not used")

    async def save_state(self, state: RegistrarState, devices: Collection[str] | None) -> None:
        self.image.touch(devices)  # as the real one: only the records a commit names are encoded again
        image = orjson.loads(orjson.dumps(self.image.data(state)))
        number = self.writes
        self.writes += 1
        self.begun[number].set()
        for _ in range(self.yields[number] if number < len(self.yields) else 0):
            await asyncio.sleep(0)  # a turn of the loop, not a timing: lets other commits join
        if self.gated:
            await self.gates[number].wait()
        if number in self.failing:
            raise PersistError(f"injected: write {number} failed")
        self.on_disk = image

    def release(self, *numbers: int) -> None:
        """Let these writes end; with no number, every write from now on."""
        if not numbers:
            self.gated = False
        for number in numbers or tuple(self.gates):
            self.gates[number].set()

    def schedule_save(self, devices: Collection[str] = ()) -> None:
        """Not used by commits."""


def _state() -> RegistrarState:
    state = RegistrarState()
    for device_id in DEVICES:
        state.devices[device_id] = DeviceRecord(device_id=device_id)
    return state


def _set(state: RegistrarState, device_id: str, model: str) -> Callable[[], None]:
    def mutate() -> None:
        state.devices[device_id].model = model

    return mutate


async def first_then_rest(
    state: RegistrarState, commits: Commits, first: str, rest: str
) -> tuple[asyncio.Task[None], list[asyncio.Task[None]]]:
    """A commit on device 0 whose write is under way, then one on each other device (they wait to share
    the next write); each sets the device's model."""
    alone = asyncio.ensure_future(commits.commit(_set(state, DEVICES[0], first), [DEVICES[0]]))
    await asyncio.sleep(0)  # the first write is under way
    joined = [
        asyncio.ensure_future(commits.commit(_set(state, device_id, rest), [device_id]))
        for device_id in DEVICES[1:]
    ]
    await asyncio.sleep(0)
    return alone, joined


async def test_commits_during_a_write_share_the_next_one() -> None:
    state, disk = _state(), GatedDisk()
    commits = Commits(state, disk)
    first, rest = await first_then_rest(state, commits, "first", "later")
    disk.release()
    await asyncio.gather(first, *rest)
    assert disk.writes == 2  # one per device would be 3
    assert disk.on_disk == state.as_dict()
    assert [disk.on_disk["devices"][d]["model"] for d in DEVICES] == ["first", "later", "later"]


async def test_a_failed_shared_write_undoes_the_commits_it_covered_only() -> None:
    state, disk = _state(), GatedDisk(failing={1})
    commits = Commits(state, disk)
    first, rest = await first_then_rest(state, commits, "kept", "lost")
    disk.release()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert results[0] is None
    assert all(isinstance(result, PersistError) for result in results[1:])
    assert [state.devices[d].model for d in DEVICES] == ["kept", "", ""]
    assert disk.on_disk == state.as_dict()
    assert commits.durable == set()  # none of them has a chain


async def test_a_commit_on_a_device_being_written_waits_so_a_failure_cannot_erase_it() -> None:
    """The first write (device 0) fails; the second change to device 0 came while it was under way, so
    it waited for it and is written by a write of its own."""
    state, disk = _state(), GatedDisk(failing={0})
    commits = Commits(state, disk)
    first = asyncio.ensure_future(commits.commit(_set(state, DEVICES[0], "first"), [DEVICES[0]]))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(commits.commit(_set(state, DEVICES[0], "second"), [DEVICES[0]]))
    await asyncio.sleep(0)
    assert state.devices[DEVICES[0]].model == "first"  # the second has not changed anything yet
    disk.release()
    with pytest.raises(PersistError):
        await first
    await second
    assert state.devices[DEVICES[0]].model == "second"
    assert disk.on_disk == state.as_dict()


async def test_a_commit_that_may_touch_anything_waits_for_the_write_under_way() -> None:
    state, disk = _state(), GatedDisk(failing={1})
    commits = Commits(state, disk)
    first = asyncio.ensure_future(commits.commit(_set(state, DEVICES[0], "kept"), [DEVICES[0]]))
    await asyncio.sleep(0)

    def everything() -> None:
        for record in state.devices.values():
            record.model = "everything"

    whole = asyncio.ensure_future(commits.commit(everything, None))
    await asyncio.sleep(0)
    assert state.devices[DEVICES[1]].model == ""  # waiting: nothing changed yet
    disk.release()
    await first
    with pytest.raises(PersistError):
        await whole
    assert [state.devices[d].model for d in DEVICES] == ["kept", "", ""]


async def test_a_cancelled_write_undoes_its_commits_and_tells_the_others() -> None:
    """The commit doing a shared write is cancelled (Home Assistant stopping): every commit that write
    covered is undone; the others raise PersistError, the cancelled one CancelledError."""
    state, disk = _state(), GatedDisk()
    commits = Commits(state, disk)
    first, shared = await first_then_rest(state, commits, "first", "shared")
    disk.release(0)
    await first
    await disk.begun[1].wait()  # one of the two has started the shared write
    writer = shared[0]  # the first to wake writes (FIFO): the other waits for that write to end
    writer.cancel()
    results = await asyncio.gather(*shared, return_exceptions=True)
    assert [type(result) for result in results] == [asyncio.CancelledError, PersistError]
    assert [state.devices[d].model for d in DEVICES] == ["first", "", ""]


_COMMIT = st.tuples(st.sampled_from([*DEVICES, None]), st.integers(0, 3))


@settings(max_examples=150, deadline=None)
@given(
    plan=st.lists(_COMMIT, min_size=1, max_size=8),
    failing=st.sets(st.integers(0, 8), max_size=4),
    yields=st.lists(st.integers(0, 3), min_size=9, max_size=9),
)
def test_memory_and_disk_agree_and_each_commit_is_kept_exactly_when_it_returned(
    plan: list[tuple[str | None, int]], failing: set[int], yields: list[int]
) -> None:
    """Commits on random devices (or on everything), started a few turns apart, writes failing at
    random: once all have ended, memory is what is on disk, and the last commit that returned for a
    device is what that device holds."""

    async def scenario() -> None:
        state, disk = _state(), GatedDisk(gated=False, failing=failing)
        disk.yields = yields
        commits = Commits(state, disk)
        kept: dict[str, int] = {}
        order = iter(range(len(plan)))

        async def one(device_id: str | None, delay: int) -> None:
            for _ in range(delay):
                await asyncio.sleep(0)
            number = next(order)
            targets = DEVICES if device_id is None else [device_id]

            def mutate() -> None:
                for target in targets:
                    state.devices[target].model = str(number)

            try:
                await commits.commit(mutate, None if device_id is None else [device_id])
            except PersistError:
                return
            for target in targets:
                kept[target] = max(kept.get(target, -1), number)

        await asyncio.gather(*(one(device_id, delay) for device_id, delay in plan))
        assert disk.on_disk in ({}, state.as_dict())  # {}: no write succeeded
        for device_id in DEVICES:
            assert state.devices[device_id].model == (str(kept[device_id]) if device_id in kept else "")

    loop = asyncio.new_event_loop()  # not asyncio.run: it would leave the other tests no current loop
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()

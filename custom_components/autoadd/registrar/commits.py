"""Commits: changes to the state that return only once a durable write has put them on disk.

A write covers the whole registrar store, so commits made while one write is under way share the next
one (a group commit): in a burst of onboardings each waits for at most two writes, not for one write per
device before it, and the store is written a few times a second instead of once per device.

What a failed write leaves: every commit it covered is undone, the latest first, and raises its error; a
commit it did not cover is untouched. Two rules make that hold:
- a commit waits for the write under way when that write covers one of its devices (or everything), so
  undoing that write never erases a change made after it;
- a commit that may touch anything (`devices=None`) waits for every write under way, and is undone by
  putting back a snapshot of the whole state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
import copy
from dataclasses import dataclass, field

from .ports import Persistence, PersistError
from .state import RegistrarState


@dataclass(slots=True)
class _Write:
    """The commits one write puts on disk."""

    done: asyncio.Future[None]
    undo: list[Callable[[], None]] = field(default_factory=list)
    #: The devices the commits touched; None: any of them.
    devices: set[str] | None = field(default_factory=set)

    def covers(self, devices: Sequence[str] | None) -> bool:
        return self.devices is None or devices is None or not self.devices.isdisjoint(devices)


class Commits:
    """Group commits over the Persistence port, and the devices whose record is on disk with a chain."""

    def __init__(self, state: RegistrarState, persistence: Persistence) -> None:
        """Nothing written yet; loaded records with a chain are on disk already."""
        self.state = state
        self.persistence = persistence
        #: Devices whose record, with a chain, a durable write has put on disk (loaded ones count too).
        self.durable: set[str] = {device_id for device_id, r in state.devices.items() if r.chain}
        self._lock = asyncio.Lock()
        #: Taking commits, not started yet.
        self._open: _Write | None = None
        #: Under way, and the future that is done when it has ended (whatever the outcome).
        self._writing: _Write | None = None
        self._ended: asyncio.Future[None] | None = None

    async def commit[T](self, mutate: Callable[[], T], devices: Sequence[str] | None) -> T:
        """Apply `mutate` and return once it is on disk; if the write fails, undo it and raise."""
        async with self._lock:
            while self._writing is not None and self._writing.covers(devices):
                await self._end_of_write()
            undo = self._undo_for(devices)
            try:
                result = mutate()
            except BaseException:
                undo()
                raise
            write = self._open
            if write is None:
                write = self._open = _Write(asyncio.get_running_loop().create_future())
            write.undo.append(undo)
            if devices is None or write.devices is None:
                write.devices = None
            else:
                write.devices.update(devices)
        await self._until_written(write)
        self._mark_durable(devices)
        return result

    def _undo_for(self, devices: Sequence[str] | None) -> Callable[[], None]:
        """What puts the records `mutate` may touch back as they are now."""
        if devices is None:
            before = self.state.snapshot()
            return lambda: self.state.restore(before)
        records = {d: copy.deepcopy(self.state.devices.get(d)) for d in devices}

        def undo() -> None:
            for device_id, record in records.items():
                if record is None:
                    self.state.devices.pop(device_id, None)
                else:
                    self.state.devices[device_id] = record

        return undo

    async def _end_of_write(self) -> None:
        ended = self._ended
        if ended is not None:
            await asyncio.wait([ended])  # not `await ended`: a cancelled waiter must not cancel it

    async def _until_written(self, write: _Write) -> None:
        """Wait for the write covering this commit, doing it when no other is under way."""
        while not write.done.done():
            if self._writing is None:
                await self._write_open()
            else:
                await self._end_of_write()
        write.done.result()

    async def _write_open(self) -> None:
        write, self._open = self._open, None
        if write is None:
            return
        ended = asyncio.get_running_loop().create_future()
        self._writing, self._ended = write, ended
        try:
            changed = None if write.devices is None else set(write.devices)
            await self.persistence.save_state(self.state, changed)  # the state as it is now, in one step
        except BaseException as err:
            for undo in reversed(write.undo):
                undo()
            if isinstance(err, Exception):
                write.done.set_exception(err)
            else:  # cancelled: the commits that shared this write learn it did not happen
                write.done.set_exception(PersistError("the write was interrupted"))
                write.done.exception()  # retrieved: this commit raises `err` itself
                raise
        else:
            write.done.set_result(None)
        finally:
            self._writing = self._ended = None
            ended.set_result(None)

    def _mark_durable(self, devices: Sequence[str] | None) -> None:
        if devices is None:
            self.durable = {device_id for device_id, r in self.state.devices.items() if r.chain}
            return
        for device_id in devices:
            stored = self.state.devices.get(device_id)
            if stored is not None and stored.chain:
                self.durable.add(device_id)
            else:
                self.durable.discard(device_id)

"""A simulated home network for the registrar core: devices in memory, a disk that can fail or crash,
an owner who remembers what they were told, and a scheduler the test drives by hand.

Devices speak through the real protocol core (DeviceResponder); nothing here decides for the registrar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
import copy
from dataclasses import dataclass, field
import datetime as dt
from typing import Any

import orjson

from custom_components.autoadd.protocol.certificates import certificate_hash
from custom_components.autoadd.protocol.chain import VerifiedChain, extend, issue_invoice, verify_chain
from custom_components.autoadd.protocol.claim import ClaimResponder
from custom_components.autoadd.protocol.claim_code import ClaimCode
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.handshake import DeviceResponder
from custom_components.autoadd.protocol.keys import PublicKey, fingerprint
from custom_components.autoadd.registrar.keys import HomeKeys
from custom_components.autoadd.registrar.ports import (
    DeviceSaidError,
    DeviceUnreachableError,
    Issue,
    PersistError,
)
from custom_components.autoadd.registrar.record import DeviceRecord
from custom_components.autoadd.registrar.state import RegistrarState
from custom_components.autoadd.registrar.store_image import StoreImage
from tests.factory import NOW, NOW_TS, Device, Manufacturer


class Crash(BaseException):
    """Home Assistant stopped dead at a write: nothing in memory survives."""


class Clock:
    """Wall time for the registrar and monotonic time for the devices, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - NOW).total_seconds()


@dataclass
class SimDevice:
    """One device: its IDevID, its chain, its imprint, persisted on its own flash (memory here)."""

    spec: Device
    clock: Clock
    chain: VerifiedChain
    owner: bytes | None = None
    online: bool = True
    #: Unassigned stock (§14.9): the code printed on it; its claim runs (rate limits are the device's
    #: own, tested with the reference device).
    code: ClaimCode | None = None
    responder: DeviceResponder = field(init=False)
    claims: ClaimResponder | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.responder = self.spec.responder()
        if self.code is not None:
            self.claims = ClaimResponder(self.code, self.spec.device_id)

    @classmethod
    def made(
        cls,
        maker: Manufacturer,
        serial: str,
        owners: list[PublicKey],
        clock: Clock,
        code: ClaimCode | None = None,
    ) -> SimDevice:
        """A device as the factory ships it: its invoice names `owners` (none: unassigned, with `code`)."""
        spec = maker.make_device(serial)
        invoice = issue_invoice(
            signer=maker.signer_key,
            signer_chain=[maker.signer],
            device_id=spec.device_id,
            idevid_hash=certificate_hash(spec.cert),
            owners=owners,
            issued_at=NOW_TS,
            model="Lamp 1",
        )
        spec.links = [invoice]
        return cls(spec, clock, verify_chain(spec.links, roots=[maker.root], now=NOW), code=code)

    @property
    def device_id(self) -> str:
        return self.spec.device_id.hex()

    @property
    def head_owners(self) -> set[bytes]:
        return set(self.chain.head.owner_fingerprints)

    def hello(self, body: bytes) -> bytes:
        return self.responder.answer_hello(body, self.chain, now=self.clock.monotonic())

    def note(self, body: bytes) -> bytes:
        accepted = self.responder.accept_note(body, self.chain, now=self.clock.monotonic())
        self.chain, self.owner = accepted.chain, fingerprint(accepted.owner)
        return accepted.receipt

    def take_links(self, links: list[bytes]) -> None:
        self.chain = extend(self.chain, links)
        if self.owner not in self.head_owners:
            self.owner = None

    def factory_reset(self) -> None:
        self.owner = None
        self.responder = self.spec.responder()

    def claims_or_404(self) -> ClaimResponder:
        if self.claims is None:
            raise DeviceSaidError("not_found", "the device has no claim code")
        return self.claims

    def claim_start(self, body: bytes) -> bytes:
        claims = self.claims_or_404()
        return claims.answer_start(claims.read_start(body, self.chain), now=self.clock.monotonic())

    def claim_finish(self, body: bytes) -> bytes:
        done = self.claims_or_404().finish(
            body,
            self.chain,
            idevid_key=self.spec.key,
            idevid_certificate=self.spec.cert,
            now=self.clock.monotonic(),
            issued_at=NOW_TS,
        )
        self.chain = done.chain
        return done.answer


class Network:
    """Who answers at which address. An address is a host; every device listens on port 80."""

    def __init__(self) -> None:
        self.at: dict[str, SimDevice] = {}
        self.requests = 0

    def transport(self, host: str, port: int) -> Connection:
        return Connection(self, host)


@dataclass
class Connection:
    """The DeviceConnection port over the simulated network: a device's error is its own answer."""

    network: Network
    host: str

    def _device(self) -> SimDevice:
        self.network.requests += 1
        device = self.network.at.get(self.host)
        if device is None or not device.online:
            raise DeviceUnreachableError(f"nobody answers at {self.host}")
        return device

    async def hello(self, hello: bytes) -> bytes:
        return self._device().hello(hello)

    async def note(self, note: bytes) -> bytes:
        return self._device().note(note)

    async def links(self, links: list[bytes]) -> None:
        self._device().take_links(links)

    async def root(self) -> bytes:
        self._device()
        raise DeviceSaidError("not_found", "the simulated devices offer no root")

    async def claim_start(self, start: bytes) -> bytes:
        return self._device().claim_start(start)

    async def claim_finish(self, finish: bytes) -> bytes:
        return self._device().claim_finish(finish)


@dataclass
class Disk:
    """The two stores as JSON on disk, with failures and crashes the test injects."""

    keys: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    #: Writes to fail (PersistError) before the next one succeeds.
    failing: int = 0
    #: Writes until a crash: 1 crashes at the next write. `crash_after_write` lands that write first.
    crash_in: int = 0
    crash_after_write: bool = False
    writes: int = 0

    def _write(self, which: str, data: dict[str, Any]) -> None:
        if self.crash_in:
            self.crash_in -= 1
            if not self.crash_in:
                if self.crash_after_write:
                    setattr(self, which, orjson.loads(orjson.dumps(data)))
                raise Crash(which)
        if self.failing:
            self.failing -= 1
            raise PersistError(f"injected: the {which} store could not be written")
        setattr(self, which, orjson.loads(orjson.dumps(data)))
        self.writes += 1

    def image(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """What is on disk now (a backup)."""
        return copy.deepcopy(self.keys), copy.deepcopy(self.state)


class Persistence:
    """The Persistence port over a Disk; `schedule_save` only marks the state dirty until a flush."""

    def __init__(self, disk: Disk) -> None:
        self.disk = disk
        self.state: RegistrarState | None = None
        self.dirty = False
        #: As the Home Assistant adapter writes the store: only records named as changed are encoded.
        self.image = StoreImage()

    async def save_keys(self, keys: HomeKeys) -> None:
        self.disk._write("keys", keys.as_dict())

    async def save_state(self, state: RegistrarState, devices: Collection[str] | None) -> None:
        self.image.touch(devices)
        self.disk._write("state", self.image.data(state))
        self.dirty = False

    def schedule_save(self, devices: Collection[str] = ()) -> None:
        self.image.touch(devices)
        self.dirty = True

    def flush(self) -> bool:
        """The debounced save landing (a failure is reported by the host and leaves the store dirty);
        whether it wrote the store."""
        if not self.dirty or self.state is None:
            return False
        try:
            self.disk._write("state", self.image.data(self.state))
        except PersistError:
            return False
        self.dirty = False
        return True


class Owner:
    """The home owner: the repair issues they see now, and every event they were shown."""

    def __init__(self) -> None:
        self.issues: dict[tuple[str, str], Issue] = {}
        self.events: list[tuple[str, dict[str, str]]] = []
        self.joined: list[str] = []
        self.left: list[str] = []

    def device_joined(self, record: DeviceRecord, *, first: bool) -> None:
        self.joined.append(record.device_id)

    def device_left(self, record: DeviceRecord) -> None:
        self.left.append(record.device_id)

    def device_updated(self, device_id: str) -> None:
        pass

    def history(self, record: DeviceRecord, entry: dict[str, str]) -> None:
        self.events.append((record.device_id, entry))

    def raise_issue(self, issue: Issue) -> None:
        self.issues[(issue.kind, issue.device_id)] = issue

    def clear_issue(self, kind: str, device_id: str) -> None:
        self.issues.pop((kind, device_id), None)

    def told(self, kind: str, device_id: str) -> bool:
        return (kind, device_id) in self.issues


class Scheduler:
    """Background tasks on the test's loop; timers fire only when the test lets time pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.tasks: set[asyncio.Task[None]] = set()
        self.timers: list[tuple[dt.datetime, Callable[[], None], list[bool]]] = []
        self.clock: Clock | None = None
        self.crashed = False

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = self.loop.create_task(coro, name=name)
        self.tasks.add(task)

    def call_later(self, delay: float, action: Callable[[], None]) -> Callable[[], None]:
        assert self.clock is not None
        cancelled = [False]
        self.timers.append((self.clock.now + dt.timedelta(seconds=delay), action, cancelled))

        def cancel() -> None:
            cancelled[0] = True

        return cancel

    async def settle(self) -> None:
        """Run background work until nothing is left; a Crash in any task is remembered."""
        while pending := {task for task in self.tasks if not task.done()}:
            await asyncio.wait(pending)
        for task in self.tasks:
            if not task.cancelled() and isinstance(task.exception(), Crash):
                self.crashed = True
            elif not task.cancelled() and (err := task.exception()) is not None:
                raise err
        self.tasks.clear()

    def fire_due(self) -> None:
        assert self.clock is not None
        due = [timer for timer in self.timers if timer[0] <= self.clock.now]
        self.timers = [timer for timer in self.timers if timer[0] > self.clock.now]
        for _, action, cancelled in due:
            if not cancelled[0]:
                action()

    def cancel_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.timers.clear()


def reachable(device: SimDevice, keys: HomeKeys, state: RegistrarState) -> bool:
    """Whether what is on disk reaches the device: a key for its head, or stored links (already
    signed) that extend its chain to a head this home holds a key for (a hand-over on top of them can
    be cancelled with that key)."""
    held = keys.held()
    if keys.recovery is not None and keys.recovery.key is not None:
        held = held | {keys.recovery.fingerprint}  # a restore holds the recovery key
    if device.head_owners & held:
        return True
    pending: list[list[bytes]] = []
    record = state.devices.get(device.device_id)
    if record is not None and record.change is not None:
        pending.append(record.change.links)
    if record is not None and record.approval is not None and record.approval.transfer:
        pending.append(record.approval.transfer[len(record.chain) :])
    kept = keys.kept.get(device.device_id)
    if kept is not None and (kept_change := DeviceRecord.from_dict(kept).change) is not None:
        pending.append(kept_change.links)
    for links in pending:  # any stretch of them: a pending hand-over on top can still be cancelled
        for start in range(len(links)):
            for end in range(start + 1, len(links) + 1):
                try:
                    head = extend(device.chain, links[start:end]).head
                except AutoAddError:
                    break
                if set(head.owner_fingerprints) & held:
                    return True
    return False

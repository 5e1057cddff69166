"""The registrar core in one process with in-memory devices: what the in-process figures run on.

The host's side is what Home Assistant's adapter does, minus Home Assistant: a durable save serialises
the whole state to JSON (storage.py writes `state.as_dict()`, which HA encodes with orjson), the owner
is told nothing, and the scheduler runs tasks on this loop. Devices answer through the protocol's
DeviceResponder; the CPU time spent on the device side is counted apart (`Devices.cpu`) so that a
figure can leave it out, and every signature check is counted by side (`Counter`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Iterator
from contextlib import contextmanager
import itertools
import time
from typing import Any
from unittest import mock

import orjson

from custom_components.autoadd.protocol import certificates, cose
from custom_components.autoadd.protocol.keys import KeyType
from custom_components.autoadd.registrar.core import Candidate, Registrar
from custom_components.autoadd.registrar.keys import HomeKey, HomeKeys
from custom_components.autoadd.registrar.ports import DeviceUnreachableError, Issue
from custom_components.autoadd.registrar.record import DeviceRecord
from custom_components.autoadd.registrar.state import RegistrarState, TrustedRoot
from custom_components.autoadd.registrar.store_image import StoreImage

from .world import NOW, BenchDevice, Maker


class Counter:
    """Signature verifications made by the registrar (COSE objects and certificates), and its
    signatures (hellos and notes)."""

    def __init__(self) -> None:
        self.registrar = 0
        self.signatures = 0
        self.device_side = False

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count while inside the block (the protocol's verify and sign functions are wrapped)."""
        verify, issued_by, sign = cose.verify, certificates._issued_by, cose.sign

        def counted_sign(*args: Any, **kwargs: Any) -> bytes:
            if not self.device_side:
                self.signatures += 1
            return sign(*args, **kwargs)

        def counted_verify(*args: Any, **kwargs: Any) -> None:
            if not self.device_side:
                self.registrar += 1
            verify(*args, **kwargs)

        def counted_issued_by(*args: Any, **kwargs: Any) -> bool:
            if not self.device_side:
                self.registrar += 1
            return issued_by(*args, **kwargs)

        with (
            mock.patch.object(cose, "verify", counted_verify),
            mock.patch.object(certificates, "_issued_by", counted_issued_by),
            mock.patch.object(cose, "sign", counted_sign),
        ):
            yield


class Devices:
    """Devices by host, answering like the reference device; `cpu` is the CPU time they used."""

    def __init__(self, counter: Counter | None = None) -> None:
        self.at: dict[str, BenchDevice] = {}
        self.cpu = 0.0
        self.counter = counter
        #: Hosts that never answer, each attempt there costing `silent_delay` seconds (a flood).
        self.silent_delay = 0.0

    @contextmanager
    def _device_side(self) -> Iterator[None]:
        started = time.process_time()
        if self.counter is not None:
            self.counter.device_side = True
        try:
            yield
        finally:
            if self.counter is not None:
                self.counter.device_side = False
            self.cpu += time.process_time() - started

    def transport(self, host: str, port: int) -> _Connection:
        return _Connection(self, host)


class _Connection:
    def __init__(self, devices: Devices, host: str) -> None:
        self.devices, self.host = devices, host

    async def _device(self) -> BenchDevice:
        device = self.devices.at.get(self.host)
        if device is None:
            await asyncio.sleep(self.devices.silent_delay)
            raise DeviceUnreachableError(f"nobody answers at {self.host}")
        await asyncio.sleep(0)  # a network round trip yields to the loop
        return device

    async def hello(self, hello: bytes) -> bytes:
        device = await self._device()
        with self.devices._device_side():
            return device.responder.answer_hello(hello, device.chain, now=time.monotonic())

    async def note(self, note: bytes) -> bytes:
        device = await self._device()
        with self.devices._device_side():
            accepted = device.responder.accept_note(note, device.chain, now=time.monotonic())
            device.chain = accepted.chain
            device.links = list(accepted.chain.links)
            return accepted.receipt

    async def links(self, links: list[bytes]) -> None:
        raise DeviceUnreachableError("the bench never hands devices over")

    async def root(self) -> bytes:
        raise DeviceUnreachableError("the bench's manufacturer is trusted")

    async def claim_start(self, start: bytes) -> bytes:
        raise DeviceUnreachableError("the bench's devices are sold to the home")

    async def claim_finish(self, finish: bytes) -> bytes:
        raise DeviceUnreachableError("the bench's devices are sold to the home")


class JsonPersistence:
    """Durable saves as the HA adapter makes them: the whole state as JSON (orjson, as Home Assistant's
    store writes it), every time."""

    def __init__(self) -> None:
        self.state: RegistrarState | None = None
        self.writes = 0
        self.bytes = 0
        self.image = StoreImage()

    async def save_keys(self, keys: HomeKeys) -> None:
        orjson.dumps(keys.as_dict())

    async def save_state(self, state: RegistrarState, devices: Collection[str] | None) -> None:
        self.image.touch(devices)
        self.bytes = len(orjson.dumps(self.image.data(state)))
        self.writes += 1
        await asyncio.sleep(0)

    def schedule_save(self, devices: Collection[str] = ()) -> None:
        self.image.touch(devices)


class _Owner:
    def __init__(self) -> None:
        #: Told the id of every device whose record changed.
        self.updated: Callable[[str], object] = lambda device_id: None

    def device_joined(self, record: DeviceRecord, *, first: bool) -> None: ...
    def device_left(self, record: DeviceRecord) -> None: ...
    def device_updated(self, device_id: str) -> None:
        self.updated(device_id)

    def history(self, record: DeviceRecord, entry: dict[str, str]) -> None: ...
    def raise_issue(self, issue: Issue) -> None: ...
    def clear_issue(self, kind: str, device_id: str) -> None: ...


class _Scheduler:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def call_later(self, delay: float, action: Callable[[], None]) -> Callable[[], None]:
        handle = asyncio.get_running_loop().call_later(delay, action)
        return handle.cancel

    async def settle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks))


class Rig:
    """One registrar (home key of `kind`), one manufacturer it trusts, and devices at numbered hosts."""

    def __init__(self, kind: KeyType = KeyType.ED25519, *, counter: Counter | None = None) -> None:
        self.maker = Maker.create(kind)
        self.home = HomeKey.generate(kind, NOW)
        state = RegistrarState(roots=[TrustedRoot.from_certificate(self.maker.root, "Bench")])
        self.persistence = JsonPersistence()
        self.devices = Devices(counter)
        self.scheduler = _Scheduler()
        self.owner = _Owner()
        self.registrar = Registrar(
            HomeKeys(self.home),
            state,
            persistence=self.persistence,
            transport=self.devices.transport,
            owner=self.owner,
            scheduler=self.scheduler,
        )
        self._hosts = itertools.count(1)

    def add(self, device: BenchDevice) -> str:
        """Put a device on the network; returns its host."""
        n = next(self._hosts)
        host = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        self.devices.at[host] = device
        return host

    def announce(self, device_id: str, host: str) -> None:
        """What discovery does on an mDNS announcement."""
        self.registrar.announce(Candidate(device_id, host, 80, claimed=False, txt={}))

    async def onboard(self, device: BenchDevice) -> None:
        """Announce a new device and wait until the registrar is done with it."""
        self.announce(device.device_id, self.add(device))
        await self.scheduler.settle()

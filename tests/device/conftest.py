"""A reference device on loopback, and the registrar side built from the protocol core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
import pytest

from autoadd_device.device import ReferenceDevice
from autoadd_device.files import write_identity, write_invoice
from autoadd_device.server import make_app
from custom_components.autoadd.device_client import DeviceClient
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RunningDevice:
    """A device directory served on 127.0.0.1."""

    folder: Path
    maker: Manufacturer
    spec: Device
    clock: FakeClock
    session: aiohttp.ClientSession
    runner: web.AppRunner | None = None
    device: ReferenceDevice | None = None
    port: int = 0
    rate: float = 1000.0
    burst: int = 1000
    started: list[ReferenceDevice] = field(default_factory=list)

    async def start(self) -> ReferenceDevice:
        self.device = ReferenceDevice(self.folder, clock=self.clock)
        self.runner = web.AppRunner(make_app(self.device, rate=self.rate, burst=self.burst))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self.device

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> ReferenceDevice:
        await self.stop()
        return await self.start()

    @property
    def client(self) -> DeviceClient:
        return DeviceClient(self.session, "127.0.0.1", self.port, timeout=5)

    async def onboard(self, home: PrivateKey, links: list[bytes] | None = None) -> RegistrarHandshake:
        """A full handshake as the registrar does it; returns the finished session."""
        session = RegistrarHandshake(home, issued_at=NOW_TS)
        bundle = await self.client.hello(session.hello)
        session.read_proof(bundle, roots=[self.maker.root], now=NOW)
        note = session.make_note(signer=home, issued_at=NOW_TS, links=links or [], config={"room": "hall"})
        session.read_receipt(await self.client.note(note))
        return session


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """The device is a real HTTP server on 127.0.0.1 (connections stay limited to loopback)."""


@pytest.fixture
def home() -> PrivateKey:
    return fixed_key("device tests home")


@pytest.fixture
def maker() -> Manufacturer:
    return Manufacturer.create("Acme")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def make_device(
    tmp_path: Path, maker: Manufacturer, http: aiohttp.ClientSession
) -> Callable[..., RunningDevice]:
    def make(owners: list[PrivateKey], serial: str = "SN0001") -> RunningDevice:
        spec = maker.make_device(serial)
        folder = tmp_path / serial
        write_identity(folder, spec.key, [spec.cert])
        spec.links = [maker.invoice(spec, owners)]
        write_invoice(folder, spec.links)
        return RunningDevice(folder, maker, spec, FakeClock(), http)

    return make


@pytest.fixture
async def running(
    make_device: Callable[..., RunningDevice], home: PrivateKey
) -> AsyncIterator[RunningDevice]:
    device = make_device([home])
    await device.start()
    yield device
    await device.stop()

"""A reference device served on 127.0.0.1, and the registrar-side steps built from the protocol core.

Shared by the device tests and the integration tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from aiohttp import web

from autoadd_device.device import ReferenceDevice
from autoadd_device.files import write_identity, write_invoice
from autoadd_device.limits import ServingLimits
from autoadd_device.server import make_app
from autoadd_device.serving import DeviceServer
from custom_components.autoadd.device_client import DeviceClient
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from tests.factory import NOW, NOW_TS, Device, Manufacturer


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
    #: The device's other limits (timeouts, connection caps); `rate` and `burst` override its own.
    limits: ServingLimits | None = None
    server: DeviceServer | None = None

    async def start(self, port: int = 0) -> ReferenceDevice:
        self.device = ReferenceDevice(self.folder, clock=self.clock)
        limits = replace(self.limits or ServingLimits(), rate=self.rate, burst=self.burst)
        self.server = DeviceServer(make_app(self.device, limits=limits))
        self.runner = self.server.runner
        self.port = await self.server.start(["127.0.0.1"], port)
        return self.device

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
            self.runner = None

    async def restart(self) -> ReferenceDevice:
        await self.stop()
        return await self.start(self.port)

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


def make_running_device(
    folder: Path, maker: Manufacturer, owners: list[PrivateKey], serial: str, session: aiohttp.ClientSession
) -> RunningDevice:
    """Write a device directory with an invoice to `owners`; the device is started by `start()`."""
    spec = maker.make_device(serial)
    write_identity(folder, spec.key, [spec.cert])
    spec.links = [maker.invoice(spec, owners)]
    write_invoice(folder, spec.links)
    return RunningDevice(folder, maker, spec, FakeClock(), session)


def note_without_owner_check(session: RegistrarHandshake, signer: PrivateKey) -> bytes:
    """A note signed by any key, as a malicious or outdated registrar would send it."""
    assert session.device is not None
    payload = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: session.device.device_id,
        Label.REGISTRAR_NONCE: session.registrar_nonce,
        Label.DEVICE_NONCE: session.device.device_nonce,
        Label.CHAIN_HEAD: session.device.chain.head.digest,
        Label.LINKS: [],
        Label.ISSUED_AT: NOW_TS,
    }
    return cose.sign(payload, ContentType.NOTE, signer, kid=fingerprint(signer.public_key()))


async def device_refuses(device: RunningDevice, home: PrivateKey) -> str:
    """The error code the device answers a note signed by `home` with (after a good hello)."""
    session = RegistrarHandshake(home, issued_at=NOW_TS)
    session.read_proof(await device.client.hello(session.hello), roots=[device.maker.root], now=NOW)
    try:
        await device.client.note(note_without_owner_check(session, home))
    except AutoAddError as err:
        return err.code
    return "accepted"

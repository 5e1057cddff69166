"""The device's mDNS announcements against a zeroconf stand-in that behaves as python-zeroconf does while
it probes for a name (docs/protocol.md §10): what is announced, in which order, and that a change of state
during the probe cannot stop the device."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from zeroconf import NonUniqueNameException
from zeroconf.asyncio import AsyncServiceInfo

from autoadd_device import advertise
from autoadd_device.advertise import Advertiser
from autoadd_device.cli import build_parser, run
from autoadd_device.device import ReferenceDevice
from custom_components.autoadd.protocol.keys import PrivateKey

from .conftest import RunningDevice
from .raw_http import PATIENCE


def _sent() -> Awaitable[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class FakeZeroconf:
    """Stands in for AsyncZeroconf and records (call, TXT state) in order.

    A registration probes until `probe_done` is set. Like python-zeroconf, it hears its own announcements:
    a record announced under the name it is probing for looks like another host's, and the registration
    fails with NonUniqueNameException."""

    def __init__(self, **_: Any) -> None:
        self.calls: list[tuple[str, str]] = []
        self.probing, self.probe_done, self.updated = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.fail_updates = False
        self._heard: set[str] = set()

    async def async_register_service(self, info: AsyncServiceInfo, **_: Any) -> Awaitable[None]:
        self.calls.append(("probe", _state(info)))
        self.probing.set()
        await self.probe_done.wait()
        if info.name in self._heard:
            raise NonUniqueNameException
        self.calls.append(("registered", _state(info)))
        return _sent()

    async def async_update_service(self, info: AsyncServiceInfo) -> Awaitable[None]:
        if self.fail_updates:
            raise RuntimeError("the network is gone")
        self._heard.add(info.name)
        self.calls.append(("update", _state(info)))
        self.updated.set()
        return _sent()

    async def async_unregister_all_services(self) -> None:
        self.calls.append(("goodbye", ""))

    async def async_close(self) -> None:
        """Nothing to close."""


def _state(info: AsyncServiceInfo) -> str:
    return (info.properties.get(b"st") or b"").decode()


@pytest.fixture
def zeroconf(monkeypatch: pytest.MonkeyPatch) -> FakeZeroconf:
    fake = FakeZeroconf()
    monkeypatch.setattr(advertise, "AsyncZeroconf", lambda **_: fake)
    return fake


async def test_a_note_taken_while_the_name_is_probed_is_announced_after(
    make_device: Callable[..., RunningDevice], home: PrivateKey, zeroconf: FakeZeroconf, unused_tcp_port: int
) -> None:
    """autoadd-device serves HTTP while its name is probed. A registrar that onboards it then gets its
    receipt, the device keeps running, and the claimed state is announced once the registration is done
    (0.2.0 announced it during the probe and exited with NonUniqueNameException)."""
    device = make_device([home])
    args = build_parser().parse_args([str(device.folder), "--port", str(unused_tcp_port)])
    stop = asyncio.Event()
    running = asyncio.create_task(run(args, [device.folder], stop))
    try:
        await asyncio.wait_for(zeroconf.probing.wait(), PATIENCE)
        device.port = unused_tcp_port
        await device.onboard(home)
        zeroconf.probe_done.set()
        await asyncio.wait_for(zeroconf.updated.wait(), PATIENCE)
    finally:
        zeroconf.probe_done.set()
        stop.set()
        await asyncio.wait_for(running, PATIENCE)
    assert zeroconf.calls == [
        ("probe", "unclaimed"),
        ("registered", "unclaimed"),
        ("update", "claimed"),
        ("goodbye", ""),
    ]


async def test_a_failed_update_is_logged_not_raised(
    make_device: Callable[..., RunningDevice],
    home: PrivateKey,
    zeroconf: FakeZeroconf,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An announcement that fails leaves the device running: the update task ends with a warning."""
    folder = make_device([home]).folder
    device = ReferenceDevice(folder, clock=lambda: 0.0)
    advertiser = Advertiser(["127.0.0.1"])
    zeroconf.probe_done.set()
    await advertiser.register(device, 8080)
    zeroconf.fail_updates = True

    await advertiser.update(device)

    assert "the mDNS announcement was not updated (RuntimeError)" in caplog.text
    assert "the network is gone" not in caplog.text
    await advertiser.close()
    assert zeroconf.calls == [("probe", "unclaimed"), ("registered", "unclaimed"), ("goodbye", "")]

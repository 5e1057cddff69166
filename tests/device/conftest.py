"""Fixtures: a reference device on loopback (see tests/reference_device.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from custom_components.autoadd.protocol.keys import PrivateKey
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import FakeClock, RunningDevice, make_running_device

__all__ = ["FakeClock", "RunningDevice"]


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
        return make_running_device(tmp_path / serial, maker, owners, serial, http)

    return make


@pytest.fixture
async def running(
    make_device: Callable[..., RunningDevice], home: PrivateKey
) -> AsyncIterator[RunningDevice]:
    device = make_device([home])
    await device.start()
    yield device
    await device.stop()

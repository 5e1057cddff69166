"""Real processes on a network namespace the test makes; skipped with the reason where that is forbidden."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import os
from pathlib import Path
import socket

import aiohttp
import pytest

from autoadd_demo.hass import HomeAssistantClient, HomeAssistantProcess, write_config
from autoadd_demo.network import VirtualNetwork


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here is an end-to-end test."""
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def network(socket_enabled: None) -> Iterator[VirtualNetwork]:
    """A namespace for the devices, joined to the host by a veth pair."""
    try:
        net = VirtualNetwork.create(os.getpid() % 10000)
    except OSError as err:
        pytest.skip(f"no network namespace here: {err}")
    yield net
    net.remove()


type StartHass = Callable[[str], Awaitable[HomeAssistantClient]]


@pytest.fixture
async def start_hass(network: VirtualNetwork, tmp_path: Path) -> AsyncIterator[StartHass]:
    """Start a real Home Assistant that listens to the virtual network; returns an onboarded client."""
    processes: list[HomeAssistantProcess] = []
    session = aiohttp.ClientSession()

    async def start(name: str) -> HomeAssistantClient:
        config = tmp_path / name
        port = free_port()
        write_config(config, port=port, adapters=[network.host_if])
        process = HomeAssistantProcess(config, port, allow_loopback=False)  # devices are on the namespace
        processes.append(process)
        await process.start()
        return await HomeAssistantClient.onboard(session, process.url, "owner", "e2e-password-1")

    yield start
    for process in processes:
        await process.stop()
    await session.close()
    # As tests/conftest.py does in process: Home Assistant logs this integration's use of a deprecated API.
    for process in processes:
        reports = [
            line
            for line in (process.config / "hass.out").read_text(errors="replace").splitlines()
            if "Detected that custom integration 'autoadd'" in line
        ]
        assert not reports, reports

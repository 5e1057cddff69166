"""Floods from the network: bogus announcements, tar pits, refusals that pile up, TXT records that
change to skip a back-off. A flood may cost a little memory and time, never a known device's turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import json
from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import SIGNAL_DEVICE_UPDATED
from custom_components.autoadd.discovery import MAX_RESOLVING
from custom_components.autoadd.registrar.candidates import MAX_STORED_REFUSALS, MAX_TRACKED
from custom_components.autoadd.registrar.core import TXT_NEWS_MIN
from custom_components.autoadd.registrar.record import Address
from custom_components.autoadd.registrar.schedule import (
    MAX_CONCURRENT,
    MAX_WAITING_CANDIDATES,
    RESERVED_FOR_KNOWN,
)
from custom_components.autoadd.storage import REGISTRAR_STORE
from tests.integration.mdns import patched_mdns
from tests.reference_device import RunningDevice

from .conftest import announce, onboard, registrar_of, rotate, service_info, settle

#: Generous: CI is a loaded 2-core machine.
LIMIT = 60.0


class TarPit:
    """A host that accepts connections and never answers, until released."""

    def __init__(self) -> None:
        self.connections: list[asyncio.StreamWriter] = []
        self.released = asyncio.Event()
        self.full = asyncio.Event()
        self.expect = MAX_CONCURRENT - RESERVED_FOR_KNOWN
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        if len(self.connections) >= self.expect:
            self.full.set()
        await self.released.wait()
        writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.released.set()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def tar_pit(socket_enabled: None) -> AsyncIterator[TarPit]:
    pit = TarPit()
    await pit.start()
    yield pit
    await pit.stop()


def bogus(index: int) -> str:
    return f"{index:064x}"


async def test_a_known_device_is_served_before_a_thousand_bogus_announcements(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: Any,
    tar_pit: TarPit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,000 fake ids pointing at a tar pit: the known device that moved is followed before the flood
    drains (it waits at most for one attempt at the tar pit to time out: it announced a new address, which
    anyone can do with its id, so it does not take the slots kept for devices at their proven address);
    attempts run in slots, never as 1,000 tasks."""
    monkeypatch.setattr("custom_components.autoadd.runtime.REQUEST_TIMEOUT", 1.0)  # the tar pit's turn
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)
    for index in range(1000):
        announce(loaded, bogus(index), tar_pit.port, claimed=False)
    async with asyncio.timeout(LIMIT):
        await tar_pit.full.wait()  # the flood runs in the slots candidates may use
    assert len(registrar.queue) == MAX_WAITING_CANDIDATES  # the rest were dropped, not queued
    assert len(registrar.tracked) <= MAX_TRACKED

    await device.stop()
    await device.start()  # the device restarts on another port and announces it
    record = registrar.state.devices[device_id]
    followed = asyncio.Event()

    @callback
    def updated() -> None:
        if record.address == Address("127.0.0.1", device.port):
            followed.set()

    unsubscribe = async_dispatcher_connect(hass, f"{SIGNAL_DEVICE_UPDATED}_{device_id}", updated)
    announce(loaded, device_id, device.port, claimed=True)
    async with asyncio.timeout(LIMIT):
        await followed.wait()  # the known device is followed
    unsubscribe()
    assert len(registrar.queue) > 0  # ordering, not timing: the flood has not drained
    assert registrar.peak_handshakes <= MAX_CONCURRENT
    tar_pit.released.set()
    await settle(hass)


async def test_refusals_of_unknown_ids_are_capped_and_small(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    fake_device: Callable[..., Any],
    hass_storage: dict[str, Any],
) -> None:
    """300 fake ids with long TXT records, each refused: the store keeps at most MAX_STORED_REFUSALS
    refusals, each with a digest of the TXT record, not the record."""
    port = await fake_device(lambda hello: b"\xff not cbor")
    for index in range(300):
        info = service_info(bogus(index), port, claimed=False)
        info.properties[b"pad"] = b"x" * 200
        loaded.runtime_data.browser.async_service_info(info)
        if index % 50 == 49:
            await settle(hass)
    await settle(hass)
    refused = [r for r in registrar_of(loaded).state.devices.values() if r.refusal is not None]
    assert len(refused) == MAX_STORED_REFUSALS
    assert {r.refusal.code for r in refused if r.refusal} == {"malformed"}
    await hass.config_entries.async_unload(loaded.entry_id)  # writes the store now
    stored = json.dumps(hass_storage[REGISTRAR_STORE])
    assert "x" * 200 not in stored
    assert len(stored) < 1200 * MAX_STORED_REFUSALS
    assert not ir.async_get(hass).issues


async def test_a_new_state_serial_does_not_skip_the_back_off(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    fake_device: Callable[..., Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """`sv` changes with every announcement, so counting it up is not news: the refused id waits out its
    back-off. A real change of the record (here `st`) is news, a minute after the refusal at the earliest."""
    hellos: list[bytes] = []

    def answer(hello: bytes) -> bytes:
        hellos.append(hello)
        return b"\xff not cbor"

    port = await fake_device(answer)
    device_id = bogus(7)

    def announce_with(serial: int, state: str) -> None:
        info = service_info(device_id, port, claimed=False)
        info.properties[b"sv"] = str(serial).encode()
        info.properties[b"st"] = state.encode()
        loaded.runtime_data.browser.async_service_info(info)

    announce_with(1, "unclaimed")
    await settle(hass)
    assert len(hellos) == 1
    freezer.tick(TXT_NEWS_MIN)
    for serial in range(2, 40):
        announce_with(serial, "unclaimed")
    await settle(hass)
    assert len(hellos) == 1
    refusal = registrar_of(loaded).state.devices[device_id].refusal
    assert refusal is not None
    assert refusal.attempts == 1
    announce_with(40, "claimed")
    await settle(hass)
    assert len(hellos) == 2


async def test_an_announcement_elsewhere_never_displaces_a_delivery_at_the_proven_address(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: Any,
    unused_tcp_port_factory: Callable[[], int],
) -> None:
    """A rotation waits for an offline member at its proven address; the member's id announced at
    another address (anyone can) is tried there, and its failure leaves the retry at the proven one."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    await device.stop()
    assert (await rotate(hass))["devices_pending"] == 1
    await settle(hass)
    registrar = registrar_of(loaded)
    proven = Address("127.0.0.1", device.port)
    assert registrar.retry_at[device_id] == proven
    elsewhere = unused_tcp_port_factory()
    announce(loaded, device_id, elsewhere, claimed=True)
    await settle(hass)
    assert registrar.retry_at[device_id] == proven
    assert registrar.state.devices[device_id].address == proven


async def test_a_flood_of_mdns_names_is_queried_a_few_at_a_time_and_none_dropped(
    hass: HomeAssistant, loaded: MockConfigEntry, auto_mock_zeroconf: MagicMock
) -> None:
    """Each name without cached records costs an mDNS query and a task: a flood of names gets
    MAX_RESOLVING queries at once, the others wait their turn (none is dropped), and a name announced
    again while it waits or is queried costs nothing more."""
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    names = [mdns.name_of(bogus(index)) for index in range(200)]
    with in_place:
        for name in names:
            for _ in range(2):
                mdns.announce(name)
        await asyncio.sleep(0)  # let the started resolutions reach their query
        assert len(mdns.queried) == MAX_RESOLVING
        assert len(set(mdns.queried)) == MAX_RESOLVING
        mdns.answering.set()  # none of them answers
        await settle(hass)
    assert sorted(mdns.queried) == sorted(names)  # each once, all of them
    assert mdns.peak_in_flight == MAX_RESOLVING


async def test_a_known_device_is_not_held_behind_a_flood_of_names(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: Any,
    tar_pit: TarPit,
    auto_mock_zeroconf: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,000 fake names with cached records pointing at a tar pit: most wait in discovery for room, and
    the known device's name, heard after them, goes on at once and is followed before they drain."""
    monkeypatch.setattr("custom_components.autoadd.runtime.REQUEST_TIMEOUT", 1.0)
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    with in_place:
        for index in range(1000):
            mdns.announce(mdns.cache(bogus(index), tar_pit.port))
        async with asyncio.timeout(LIMIT):
            await tar_pit.full.wait()
        assert len(registrar.queue) == MAX_WAITING_CANDIDATES  # the rest wait in discovery
        await device.stop()
        await device.start()
        followed = asyncio.Event()
        record = registrar.state.devices[device_id]

        @callback
        def updated() -> None:
            if record.address == Address("127.0.0.1", device.port):
                followed.set()

        unsubscribe = async_dispatcher_connect(hass, f"{SIGNAL_DEVICE_UPDATED}_{device_id}", updated)
        mdns.announce(mdns.cache(device_id, device.port, claimed=True))
        async with asyncio.timeout(LIMIT):
            await followed.wait()
        unsubscribe()
        assert len(registrar.queue) > 0  # ordering, not timing: the flood has not drained
        tar_pit.released.set()
        await settle(hass)

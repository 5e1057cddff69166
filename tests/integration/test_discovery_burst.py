"""A burst: many devices switched on at once, each announcing its name once. Discovery holds back what
the registrar has no room for and hands it on as attempts end, so every device is added, however few
fit at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from typing import Any
from unittest.mock import MagicMock

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from zeroconf import ServiceStateChange

from .conftest import registrar_of, settle
from .mdns import patched_mdns

#: Generous: CI is a loaded 2-core machine.
LIMIT = 60.0


async def test_a_burst_of_new_devices_is_added_in_full_though_few_fit_at_once(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: Any,
    auto_mock_zeroconf: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 devices announced once each, 2 attempts at once, 2 candidates waiting, 2 queries at once, half
    of the names without cached records: all 10 are added, each name queried at most once."""
    monkeypatch.setattr("custom_components.autoadd.discovery.MAX_RESOLVING", 2)
    registrar = registrar_of(loaded)
    registrar.queue.slots, registrar.queue.reserved, registrar.queue.max_waiting = 2, 0, 2
    burst = [await devices([home], serial=f"SN{index:04}") for index in range(10)]
    ids = [device.spec.device_id.hex() for device in burst]
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    with in_place:
        names = [
            (mdns.cache if index % 2 else mdns.answer)(device_id, device.port)
            for index, (device_id, device) in enumerate(zip(ids, burst, strict=True))
        ]
        for name in names:
            mdns.announce(name)
        mdns.answering.set()
        async with asyncio.timeout(LIMIT):
            await settle(hass)  # each ended attempt hands on the next: settled, all have had their turn
    assert all(registrar.state.devices[device_id].is_member for device_id in ids)
    assert len(mdns.queried) == len(set(mdns.queried)) == 5
    assert mdns.peak_in_flight <= 2
    assert registrar.peak_handshakes <= 2


async def test_names_beyond_the_bound_wait_for_their_next_announcement(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    auto_mock_zeroconf: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no room anywhere, at most MAX_PENDING names wait (the oldest are let go, logged once); a name
    removed from the network stops waiting; what waits is queried once there is room."""
    monkeypatch.setattr("custom_components.autoadd.discovery.MAX_PENDING", 5)
    monkeypatch.setattr("custom_components.autoadd.discovery.MAX_RESOLVING", 0)  # no query has room
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    names = [mdns.name_of(f"{index:064x}") for index in range(8)]
    with in_place, caplog.at_level(logging.DEBUG, "custom_components.autoadd.discovery"):
        for name in names:
            mdns.announce(name)
        mdns.announce(names[4], ServiceStateChange.Removed)
        assert [r.message for r in caplog.records].count(
            "Over 5 devices announced at once: the oldest wait to announce again"
        ) == 1
        monkeypatch.setattr("custom_components.autoadd.discovery.MAX_RESOLVING", 8)
        mdns.answering.set()
        on_room = registrar_of(loaded).on_room
        assert on_room is not None
        on_room()  # an attempt ended
        await settle(hass)
    assert mdns.queried == [names[3], names[5], names[6], names[7]]
    assert not registrar_of(loaded).state.devices  # none of the queries found records

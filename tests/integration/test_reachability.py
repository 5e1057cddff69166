"""Whether a device answers (registrar/reachability.py): its connectivity entity goes off when it stops
answering at its proven address and on when it proves itself again, logged once each way. A goodbye
only makes the registrar look; what the home knows of the device stays shown while it is offline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
import logging
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from zeroconf import ServiceStateChange

from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar import session
from tests.reference_device import RunningDevice

from .conftest import registrar_of, settle
from .mdns import Mdns, patched_mdns


def state_of(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(domain, "autoadd", unique_id)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


@dataclass
class Discovered:
    """A device onboarded through discovery: its id, its service name, and the mDNS stand-in."""

    device: RunningDevice
    device_id: str
    name: str
    mdns: Mdns


@pytest.fixture
async def discovered(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    auto_mock_zeroconf: MagicMock,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Discovered]:
    """The device announced (its records cached) and onboarded, its reachability logged at info."""
    caplog.set_level(logging.INFO)
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    with in_place:
        name = mdns.cache(device_id, device.port)
        mdns.announce(name)
        await settle(hass)
        assert registrar_of(loaded).state.devices[device_id].is_member
        yield Discovered(device, device_id, name, mdns)


def logged(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(1 for r in caplog.records if r.name.endswith("reachability") and words in r.getMessage())


async def test_a_device_that_goes_away_is_shown_offline_until_it_proves_itself(
    hass: HomeAssistant, discovered: Discovered, caplog: pytest.LogCaptureFixture
) -> None:
    """Switched off, its goodbye heard twice: one check, no answer, its connectivity off and one log
    line, its onboarding state still shown. Back on, heard again: checked, connectivity on, one line."""
    device, device_id, name, mdns = discovered.device, discovered.device_id, discovered.name, discovered.mdns
    assert state_of(hass, "binary_sensor", f"{device_id}_connectivity") == "on"

    await device.stop()
    mdns.announce(name, ServiceStateChange.Removed)
    await settle(hass)
    mdns.announce(name)  # still cached: heard again while it is off
    mdns.announce(name, ServiceStateChange.Removed)
    await settle(hass)
    assert state_of(hass, "binary_sensor", f"{device_id}_connectivity") == "off"
    assert state_of(hass, "sensor", f"{device_id}_onboarding_state") == "onboarded"
    assert logged(caplog, "does not answer") == 1

    await device.start(device.port)
    mdns.cache(device_id, device.port, claimed=True)
    mdns.announce(name, ServiceStateChange.Updated)
    await settle(hass)
    assert state_of(hass, "binary_sensor", f"{device_id}_connectivity") == "on"
    assert logged(caplog, "answers again") == 1
    assert logged(caplog, "does not answer") == 1


async def test_a_goodbye_for_a_device_that_answers_changes_nothing(
    hass: HomeAssistant, loaded: MockConfigEntry, discovered: Discovered, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can send a goodbye: the registrar looks (one check), the device answers, it stays online,
    nothing is logged."""
    with patch.object(session, "prove", wraps=session.prove) as proofs:
        discovered.mdns.announce(discovered.name, ServiceStateChange.Removed)
        await settle(hass)
    assert proofs.call_count == 1
    assert state_of(hass, "binary_sensor", f"{discovered.device_id}_connectivity") == "on"
    assert logged(caplog, "does not answer") == logged(caplog, "answers again") == 0
    assert registrar_of(loaded).state.devices[discovered.device_id].is_member

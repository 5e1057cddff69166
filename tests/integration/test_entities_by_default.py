"""Which of a device's entities are on by default: Connectivity only (Home Assistant adds at most 10,000
enabled entities per config entry: one per device lets a home of 10,000 devices have them all). Not the
onboarding state either, whose rows would repeat the Activity's words (raw, once the device left)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.protocol.keys import PrivateKey
from tests.reference_device import RunningDevice

from .conftest import onboard, registered


@pytest.fixture
def onboarding_state_enabled() -> None:
    """Here the integration's own defaults hold (the other tests enable the onboarding state)."""


async def test_entities_on_by_default(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """On: Connectivity. Off until enabled: Address, Check now, onboarding state, last seen, owners, chain
    length."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    entry = registered(hass, device.spec.device_id.hex())
    assert entry is not None
    found = er.async_entries_for_device(er.async_get(hass), entry.id, include_disabled_entities=True)
    by_key = {e.unique_id.split("_", 1)[1]: e.disabled_by for e in found}  # unique ids: <device id>_<key>
    assert {key for key, disabled in by_key.items() if disabled is None} == {"connectivity"}
    assert {key for key, disabled in by_key.items() if disabled is er.RegistryEntryDisabler.INTEGRATION} == {
        "address",
        "check",
        "onboarding_state",
        "last_seen",
        "owners",
        "chain_length",
    }

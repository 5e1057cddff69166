"""Which of a device's entities are on by default: what the owner looks at (Connectivity, Address, Check
now), not the onboarding state, whose rows would repeat the Activity's words (raw, once the device left)."""

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
    """On: Connectivity, Address, Check now. Off until enabled: onboarding state, last seen, owners, chain
    length."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    entry = registered(hass, device.spec.device_id.hex())
    assert entry is not None
    found = er.async_entries_for_device(er.async_get(hass), entry.id, include_disabled_entities=True)
    by_key = {e.unique_id.split("_", 1)[1]: e.disabled_by for e in found}  # unique ids: <device id>_<key>
    assert {key for key, disabled in by_key.items() if disabled is None} == {
        "connectivity",
        "address",
        "check",
    }
    assert {key for key, disabled in by_key.items() if disabled is er.RegistryEntryDisabler.INTEGRATION} == {
        "onboarding_state",
        "last_seen",
        "owners",
        "chain_length",
    }

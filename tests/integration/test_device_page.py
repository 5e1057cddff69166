"""What a device's page shows and offers: where it proved itself (Address), a Check now button that asks
it for a proof (nothing else moves anything; updating Connectivity does the same), and its own
diagnostics with its history. Address and Check now are off by default (test_entities_by_default.py):
here they are on, as for an owner who turned them on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

from homeassistant.components.button.const import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.diagnostics import async_get_device_diagnostics
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar import session
from custom_components.autoadd.registrar.ownership import block
from tests.reference_device import RunningDevice

from .conftest import onboard, registered, registrar_of, settle

pytestmark = pytest.mark.usefixtures("entity_registry_enabled_by_default")


def entity_id(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    found = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    assert found is not None
    return found


async def test_address_is_where_the_device_proved_itself(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The Address sensor reads the proven address."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    state = hass.states.get(entity_id(hass, "sensor", f"{device_id}_address"))
    assert state is not None
    assert state.state == f"127.0.0.1 port {device.port}"
    assert state.name == "Lamp 1 SN0001 Address"


@pytest.mark.parametrize("way", ["check_now", "update_connectivity"])
async def test_check_now_asks_for_a_proof(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey, way: str
) -> None:
    """Pressing Check now, or updating Connectivity (homeassistant.update_entity), proves the device once
    more (Connectivity on again after it answers); it tries only where the device proved itself, and
    contacts nothing for a blocked device."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    connectivity = entity_id(hass, "binary_sensor", f"{device_id}_connectivity")
    assert await async_setup_component(hass, "homeassistant", {})

    async def check() -> None:
        if way == "check_now":
            button = entity_id(hass, "button", f"{device_id}_check")
            await hass.services.async_call(
                BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: button}, blocking=True
            )
        else:
            await hass.services.async_call(
                "homeassistant", "update_entity", {ATTR_ENTITY_ID: connectivity}, blocking=True
            )
        await settle(hass)

    await device.stop()
    with patch.object(session, "prove", wraps=session.prove) as proofs:
        await check()
    assert proofs.call_count == 1
    assert hass.states.get(connectivity).state == "off"  # type: ignore[union-attr]

    await device.start(device.port)
    await check()
    assert hass.states.get(connectivity).state == "on"  # type: ignore[union-attr]

    record = registrar_of(loaded).state.devices[device_id]
    proven, record.address, record.hint = record.address, None, record.address  # only announced there
    with patch.object(session, "prove", wraps=session.prove) as proofs:
        await check()
    assert proofs.call_count == 0  # an announced address is no proven one
    record.address = proven

    block(registrar_of(loaded), device_id, "blocked by the owner")
    with patch.object(session, "prove", wraps=session.prove) as proofs:
        await check()
    assert proofs.call_count == 0


async def test_device_diagnostics_give_its_record_and_history(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The device page's diagnostics: that device only, its history, the address redacted."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    entry = registered(hass, device_id)
    assert entry is not None

    data = await async_get_device_diagnostics(hass, loaded, entry)

    assert data["device"]["device_id"] == device_id
    assert data["device"]["address"] == "**REDACTED**"
    assert [event["event"] for event in data["history"]] == ["onboarded"]
    assert "127.0.0.1" not in str(data)

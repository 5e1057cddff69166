"""Zero-touch onboarding in Home Assistant: reference devices on loopback, real HTTP, end to end."""

from __future__ import annotations

from collections.abc import Callable
import logging
import socket
from typing import Any

from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from zeroconf.asyncio import AsyncServiceInfo

from custom_components.autoadd import async_remove_config_entry_device
from custom_components.autoadd.const import DOMAIN, EVENT_DEVICE_ONBOARDED, EVENT_OWNERSHIP, SERVICE_TYPE
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar.ownership import block
from tests.factory import fixed_key
from tests.reference_device import RunningDevice

from .conftest import candidate_for, registered, registrar_of


def announcement(device: RunningDevice, *, claimed: bool = False, **txt: str) -> AsyncServiceInfo:
    """The resolved mDNS record a device on 127.0.0.1 would announce."""
    properties = {
        "v": "1",
        "id": device.spec.device_id.hex(),
        "mf": "Acme",
        "md": "Lamp 1",
        "st": "claimed" if claimed else "unclaimed",
        "path": "/autoadd/v1",
        **txt,
    }
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"Lamp-{device.spec.device_id.hex()[:8]}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=device.port,
        properties=properties,
    )


async def test_device_is_onboarded_end_to_end(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An announced device whose invoice names this home is added with no click."""
    events = async_capture_events(hass, EVENT_DEVICE_ONBOARDED)
    device = await devices([home])
    loaded.runtime_data.browser.async_service_info(announcement(device))
    await hass.async_block_till_done(wait_background_tasks=True)

    device_id = device.spec.device_id.hex()
    entry = registered(hass, device_id)
    assert entry is not None
    assert entry.manufacturer == "Acme"
    assert entry.model == "Lamp 1"
    assert entry.serial_number == "SN0001"
    assert len(events) == 1
    assert events[0].data["autoadd_id"] == device_id
    assert events[0].data["device_id"] == entry.id

    assert device.device is not None
    assert device.device.claimed  # the device took our note and imprinted this home

    registry = er.async_get(hass)
    found = er.async_entries_for_device(registry, entry.id, include_disabled_entities=True)
    entities = {e.translation_key: e for e in found}
    state = hass.states.get(entities["onboarding_state"].entity_id)
    assert state is not None
    assert state.state == "onboarded"
    # The other diagnostic sensors exist but are off until the owner turns them on: in a home of many
    # devices they would be a state machine entry and an update each, for detail few ever look at.
    for key in ("last_seen", "owners", "chain_length"):
        assert entities[key].disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(entities[key].entity_id) is None


async def test_an_onboarding_is_one_logbook_entry_naming_the_device(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """One entry per onboarding (the onboarding event is for automations, not described twice), named
    as the registry names the device and linked to it."""
    from custom_components.autoadd.logbook import async_describe_events

    described: dict[str, Callable[[Event], dict[str, str]]] = {}
    async_describe_events(hass, lambda domain, event, describe: described.__setitem__(event, describe))
    ownership = async_capture_events(hass, EVENT_OWNERSHIP)
    device: RunningDevice = await devices([home], serial="SN0001")
    registrar_of(loaded).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert set(described) == {EVENT_OWNERSHIP}
    entry = registered(hass, device.spec.device_id.hex())
    assert entry is not None
    (onboarded,) = ownership
    assert onboarded.data["device_id"] == entry.id
    assert described[EVENT_OWNERSHIP](onboarded) == {
        "name": "Lamp 1 SN0001",
        "message": "was added securely by AutoAdd",
    }


async def test_invoice_for_another_home_adds_nothing(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any]
) -> None:
    """A neighbour's device is refused quietly: nothing added, no repair issue, remembered."""
    device = await devices([fixed_key("neighbour")])
    registrar_of(loaded).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    device_id = device.spec.device_id.hex()
    assert registered(hass, device_id) is None
    refusal = registrar_of(loaded).state.devices[device_id].refusal
    assert refusal is not None
    assert refusal.code == "not_owner"
    assert not ir.async_get(hass).issues
    assert device.device is not None
    assert not device.device.claimed


async def test_unknown_manufacturer_adds_nothing(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A device from a manufacturer the owner does not trust is refused."""
    registrar_of(loaded).state.roots.clear()
    device = await devices([home])
    registrar_of(loaded).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    refusal = registrar_of(loaded).state.devices[device.spec.device_id.hex()].refusal
    assert refusal is not None
    assert refusal.code == "untrusted_manufacturer"
    assert not dr.async_entries_for_config_entry(dr.async_get(hass), loaded.entry_id)


async def test_refused_device_is_not_retried_in_a_storm(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any]
) -> None:
    """Announcements of a refused device do not start new attempts until its back-off passes."""
    device = await devices([fixed_key("neighbour")])
    registrar = registrar_of(loaded)
    registrar.announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    for _ in range(5):
        registrar.announce(candidate_for(device))
        await hass.async_block_till_done(wait_background_tasks=True)
    refusal = registrar.state.devices[device.spec.device_id.hex()].refusal
    assert refusal is not None
    assert refusal.attempts == 1


async def test_a_home_of_many_devices_gets_every_sensor_back_at_set_up(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    monkeypatch: Any,
) -> None:
    """Stored devices' sensors are added a few devices at a time (here 2), so a large home does not hold
    the event loop at set-up: after a restart every device has its sensor again."""
    burst = [await devices([home], serial=f"SN{index:04}") for index in range(5)]
    for device in burst:
        registrar_of(loaded).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await hass.config_entries.async_unload(loaded.entry_id)
    monkeypatch.setattr("custom_components.autoadd.entity.ADD_AT_ONCE", 2)
    assert await hass.config_entries.async_setup(loaded.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    registry = er.async_get(hass)
    for device in burst:
        entity_id = registry.async_get_entity_id(
            "sensor", "autoadd", f"{device.spec.device_id.hex()}_onboarding_state"
        )
        assert entity_id is not None
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == "onboarded"


async def test_a_stored_device_missing_from_the_registry_gets_its_name_back_at_set_up(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
) -> None:
    """A member stored here but gone from Home Assistant's device registry (a restored backup) is
    registered again under its name at set-up, and its entity ids come from that name, not from a
    nameless device (`sensor.onboarding_state_2`, `_3`...)."""
    device = await devices([home], serial="SN0042")
    registrar_of(loaded).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await hass.config_entries.async_unload(loaded.entry_id)
    device_id = device.spec.device_id.hex()
    entities, devices_registry = er.async_get(hass), dr.async_get(hass)
    entry = registered(hass, device_id)
    assert entry is not None
    devices_registry.async_remove_device(entry.id)  # its entities go with it
    assert entities.async_get_entity_id("sensor", "autoadd", f"{device_id}_onboarding_state") is None

    assert await hass.config_entries.async_setup(loaded.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    again = registered(hass, device_id)
    assert again is not None
    assert again.name == "Lamp 1 SN0042"
    assert again.serial_number == "SN0042"
    entity_id = entities.async_get_entity_id("sensor", "autoadd", f"{device_id}_onboarding_state")
    assert entity_id == "sensor.lamp_1_sn0042_onboarding_state"


async def test_registry_devices_that_are_not_members_are_removed_at_set_up(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A registry device whose record is stored as no member (removed, then blocked: its removal from the
    registry lost, an older registry restored) goes at set-up, with its entities. Members stay, a blocked
    member too, and so does a registry device with no record at all (a missing store must not empty the
    registry); nothing stored changes."""
    caplog.set_level(logging.INFO, logger="custom_components.autoadd")
    removed, kept, blocked = [await devices([home], serial=f"SN00{n}") for n in (41, 42, 43)]
    registrar = registrar_of(loaded)
    for device in (removed, kept, blocked):
        registrar.announce(candidate_for(device))
        await hass.async_block_till_done(wait_background_tasks=True)
    removed_id, blocked_id = removed.spec.device_id.hex(), blocked.spec.device_id.hex()
    gone = registered(hass, removed_id)
    assert gone is not None
    assert await async_remove_config_entry_device(hass, loaded, gone)
    dr.async_get(hass).async_remove_device(gone.id)
    block(registrar, removed_id, "blocked by the owner")  # removed, then blocked: no member
    block(registrar, blocked_id, "blocked by the owner")  # a blocked member stays in the registry
    await hass.async_block_till_done(wait_background_tasks=True)
    stored = {device_id: record.phase for device_id, record in registrar.state.devices.items()}
    assert await hass.config_entries.async_unload(loaded.entry_id)
    devices_registry = dr.async_get(hass)
    restored = devices_registry.async_get_or_create(  # as an older registry restored has it
        config_entry_id=loaded.entry_id, identifiers={(DOMAIN, removed_id)}, name="Lamp 1 SN0041"
    )
    er.async_get(hass).async_get_or_create(
        "binary_sensor", DOMAIN, f"{removed_id}_connectivity", config_entry=loaded, device_id=restored.id
    )
    unknown = devices_registry.async_get_or_create(
        config_entry_id=loaded.entry_id, identifiers={(DOMAIN, "ab" * 32)}, name="Lamp 9 SN0099"
    )

    assert await hass.config_entries.async_setup(loaded.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert devices_registry.async_get(restored.id) is None
    assert registered(hass, removed_id) is None  # nor added again by its entities
    entities = er.async_get(hass)
    assert entities.async_get_entity_id("binary_sensor", DOMAIN, f"{removed_id}_connectivity") is None
    assert devices_registry.async_get(unknown.id) is not None
    assert registered(hass, kept.spec.device_id.hex()) is not None
    assert registered(hass, blocked_id) is not None
    assert {d: r.phase for d, r in registrar_of(loaded).state.devices.items()} == stored
    assert "Removed from the device registry what is no longer this home's: 1 device(s)" in caplog.text

"""Per-device status sensors: onboarding state, last seen, chain length."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import AutoAddConfigEntry
from .const import SIGNAL_DEVICE_ADDED, SIGNAL_DEVICE_UPDATED
from .protocol.keys import format_fingerprint
from .registrar.core import Registrar
from .registrar.record import ChangeKind, DeviceRecord, Phase
from .runtime import device_info

PARALLEL_UPDATES = 0

ONBOARDING_STATES = [
    "onboarded",
    "refused",
    "rotation_pending",
    "rotation_sent",
    "handover_pending",
    "handover_sent",
    "cancel_pending",
    "cancel_sent",
    "key_lost",
    "revoked",
    "blocked",
]


@dataclass(frozen=True, kw_only=True)
class AutoAddSensorDescription(SensorEntityDescription):
    """How a sensor reads its value from the device record."""

    value: Callable[[Registrar, DeviceRecord], str | int | datetime | None]
    attributes: Callable[[Registrar, DeviceRecord], dict[str, Any]] | None = None


def _state(registrar: Registrar, record: DeviceRecord) -> str:
    """The most pressing thing about a device, for its owner: a change is "sent" once it went out, but
    only a proof from the device confirms it."""
    if record.phase is Phase.BLOCKED:
        return "blocked"
    if record.phase is Phase.KEY_LOST:
        return "key_lost"
    if "revoked_manufacturer" in record.flags:
        return "revoked"
    if record.change is not None:
        kind = {ChangeKind.ROTATE: "rotation", ChangeKind.HANDOVER: "handover", ChangeKind.CANCEL: "cancel"}
        return f"{kind[record.change.kind]}_{'sent' if record.change.sent else 'pending'}"
    return "refused" if record.refusal is not None else "onboarded"


SENSORS: tuple[AutoAddSensorDescription, ...] = (
    AutoAddSensorDescription(
        key="onboarding_state",
        translation_key="onboarding_state",
        device_class=SensorDeviceClass.ENUM,
        options=ONBOARDING_STATES,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=_state,
    ),
    AutoAddSensorDescription(
        key="last_seen",
        translation_key="last_seen",
        entity_registry_enabled_default=False,  # diagnostic detail: noise in a home of many devices
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: datetime.fromisoformat(record.last_seen) if record.last_seen else None,
    ),
    AutoAddSensorDescription(
        key="owners",
        translation_key="owners",
        entity_registry_enabled_default=False,  # diagnostic detail: noise in a home of many devices
        # No state class: a count of owners is no measurement to keep long-term statistics of.
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: len(record.owners),
        attributes=lambda _, record: {"fingerprints": [format_fingerprint(o) for o in record.owners_bytes()]},
    ),
    AutoAddSensorDescription(
        key="chain_length",
        translation_key="chain_length",
        entity_registry_enabled_default=False,  # diagnostic detail: noise in a home of many devices
        # No state class: the number of links is no measurement either.
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: len(record.chain),
    ),
)


#: Stored devices whose sensors are added in one turn of the event loop at set-up.
ADD_AT_ONCE = 25


async def async_setup_entry(
    hass: HomeAssistant, entry: AutoAddConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add sensors for every onboarded device, now and as devices are onboarded."""
    registrar = entry.runtime_data.registrar
    added: set[str] = set()

    def sensors(device_id: str) -> list[AutoAddSensor]:
        record = registrar.state.devices.get(device_id)
        if device_id in added or record is None or not record.is_member:
            return []
        added.add(device_id)
        info = device_info(record)
        return [AutoAddSensor(registrar, device_id, description, info) for description in SENSORS]

    @callback
    def add(device_id: str) -> None:
        if new := sensors(device_id):
            async_add_entities(new)

    async def add_stored() -> None:
        """The stored devices' sensors, a few devices at a time: adding an entity runs in the event
        loop, and a home with thousands of devices would otherwise hold it for a second or more."""
        stored = list(registrar.state.devices)
        for start in range(0, len(stored), ADD_AT_ONCE):
            if new := [
                sensor for device_id in stored[start : start + ADD_AT_ONCE] for sensor in sensors(device_id)
            ]:
                async_add_entities(new)
            await asyncio.sleep(0)  # a turn of the event loop for everything else

    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_DEVICE_ADDED, add))
    if len(registrar.state.devices) <= ADD_AT_ONCE:
        await add_stored()  # a small home: at once, as before
    else:
        entry.async_create_background_task(hass, add_stored(), "autoadd stored sensors")


class AutoAddSensor(SensorEntity):
    """One status value of one onboarded device."""

    entity_description: AutoAddSensorDescription
    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self, registrar: Registrar, device_id: str, description: AutoAddSensorDescription, info: DeviceInfo
    ) -> None:
        """Bind to a device record."""
        self.entity_description = description
        self._registrar = registrar
        self._device_id = device_id
        self._attr_unique_id = f"{device_id}_{description.key}"
        self._attr_device_info = info

    @property
    def _record(self) -> DeviceRecord | None:
        record = self._registrar.state.devices.get(self._device_id)
        return record if record is not None and record.is_member else None

    @property
    def available(self) -> bool:
        """Available while the device is a member of this home."""
        return self._record is not None

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Co-owners' fingerprints, for the owners sensor."""
        record = self._record
        if record is None or self.entity_description.attributes is None:
            return None
        return self.entity_description.attributes(self._registrar, record)

    @property
    def native_value(self) -> str | int | datetime | None:
        """The value, from the device record."""
        record = self._record
        return None if record is None else self.entity_description.value(self._registrar, record)

    async def async_added_to_hass(self) -> None:
        """Follow this device's updates (a signal per device)."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, f"{SIGNAL_DEVICE_UPDATED}_{self._device_id}", self.async_write_ha_state
            )
        )

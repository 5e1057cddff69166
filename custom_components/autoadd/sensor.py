"""Per-device status sensors: onboarding state, last seen, chain length."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import AutoAddConfigEntry
from .const import DOMAIN, SIGNAL_DEVICE_UPDATED
from .registrar import Registrar
from .storage import DeviceRecord

PARALLEL_UPDATES = 0

ONBOARDING_STATES = ["onboarded", "refused", "rotation_pending", "handover_pending", "revoked", "blocked"]


@dataclass(frozen=True, kw_only=True)
class AutoAddSensorDescription(SensorEntityDescription):
    """How a sensor reads its value from the device record."""

    value: Callable[[Registrar, DeviceRecord], str | int | datetime | None]
    attributes: Callable[[Registrar, DeviceRecord], dict[str, Any]] | None = None


def _state(registrar: Registrar, record: DeviceRecord) -> str:
    """The most pressing thing about a device, for its owner."""
    if "blocked" in record.flags:
        return "blocked"
    if "revoked_manufacturer" in record.flags:
        return "revoked"
    if record.handover is not None:
        return "handover_pending"
    if record.pending_links:
        return "rotation_pending"
    return "refused" if record.device_id in registrar.store.data.refused else "onboarded"


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
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: datetime.fromisoformat(record.last_seen),
    ),
    AutoAddSensorDescription(
        key="owners",
        translation_key="owners",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: len(record.owners),
        attributes=lambda _, record: {"fingerprints": [owner[:16] for owner in record.owners]},
    ),
    AutoAddSensorDescription(
        key="chain_length",
        translation_key="chain_length",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: len(record.chain),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant, entry: AutoAddConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add sensors for every onboarded device, now and as devices are onboarded."""
    registrar = entry.runtime_data.registrar
    added: set[str] = set()

    @callback
    def add(device_id: str) -> None:
        if device_id in added or device_id not in registrar.store.data.devices:
            return
        added.add(device_id)
        async_add_entities(AutoAddSensor(registrar, device_id, description) for description in SENSORS)

    for device_id in list(registrar.store.data.devices):
        add(device_id)
    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_DEVICE_UPDATED, add))


class AutoAddSensor(SensorEntity):
    """One status value of one onboarded device."""

    entity_description: AutoAddSensorDescription
    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, registrar: Registrar, device_id: str, description: AutoAddSensorDescription) -> None:
        """Bind to a device record."""
        self.entity_description = description
        self._registrar = registrar
        self._device_id = device_id
        self._attr_unique_id = f"{device_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, device_id)})

    @property
    def available(self) -> bool:
        """Available while the device is known to the registrar."""
        return self._device_id in self._registrar.store.data.devices

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Co-owners' fingerprints, for the owners sensor."""
        record = self._registrar.store.data.devices.get(self._device_id)
        if record is None or self.entity_description.attributes is None:
            return None
        return self.entity_description.attributes(self._registrar, record)

    @property
    def native_value(self) -> str | int | datetime | None:
        """The value, from the device record."""
        record = self._registrar.store.data.devices.get(self._device_id)
        return None if record is None else self.entity_description.value(self._registrar, record)

    async def async_added_to_hass(self) -> None:
        """Follow the device's updates."""
        self.async_on_remove(async_dispatcher_connect(self.hass, SIGNAL_DEVICE_UPDATED, self._updated))

    @callback
    def _updated(self, device_id: str) -> None:
        if device_id == self._device_id:
            self.async_write_ha_state()

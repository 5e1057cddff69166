"""Per-device status sensors: onboarding state, address, last seen, owners, chain length."""

from __future__ import annotations

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
from homeassistant.helpers.device_registry import DeviceInfo

from .entity import AutoAddEntity, member_platform
from .protocol.keys import format_fingerprint
from .registrar.core import Registrar
from .registrar.record import ChangeKind, DeviceRecord, Phase

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
        # Off until enabled: the device's Activity tells each step in words (ownership events), and the
        # state's own rows would repeat them, raw once the device has left (its entity gone).
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.ENUM,
        options=ONBOARDING_STATES,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=_state,
    ),
    AutoAddSensorDescription(
        key="address",
        translation_key="address",
        # Where the device last proved itself (an announcement alone never changes it): rarely changes.
        # Off until enabled, as every entity but Connectivity (why: entity.py).
        entity_registry_enabled_default=False,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, record: (
            f"{record.address.host} port {record.address.port}" if record.address else None
        ),
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


def _entities(registrar: Registrar, device_id: str, info: DeviceInfo) -> list[AutoAddSensor]:
    return [AutoAddSensor(registrar, device_id, description, info) for description in SENSORS]


class AutoAddSensor(AutoAddEntity, SensorEntity):
    """One status value of one onboarded device."""

    entity_description: AutoAddSensorDescription

    def __init__(
        self, registrar: Registrar, device_id: str, description: AutoAddSensorDescription, info: DeviceInfo
    ) -> None:
        """Bind to a device record."""
        super().__init__(registrar, device_id, description.key, info)
        self.entity_description = description

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


#: The sensors of every onboarded device, now and as devices are onboarded.
async_setup_entry = member_platform(_entities)

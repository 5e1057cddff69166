"""Per-device action: ask the device to prove itself now (its connectivity and address follow the proof)."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.helpers.device_registry import DeviceInfo

from .entity import AutoAddEntity, member_platform
from .registrar.core import Registrar
from .registrar.session import Purpose

PARALLEL_UPDATES = 0


def _entities(registrar: Registrar, device_id: str, info: DeviceInfo) -> list[AutoAddCheckButton]:
    return [AutoAddCheckButton(registrar, device_id, info)]


class AutoAddCheckButton(AutoAddEntity, ButtonEntity):
    """Check now: an attempt at the device's proven address, whatever its back-off. Only its proof moves
    anything (it delivers what is owed, and Connectivity follows); a blocked device is never contacted."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "check"
    # Off until enabled (why: entity.py); Connectivity's update_entity does the same.
    _attr_entity_registry_enabled_default = False

    def __init__(self, registrar: Registrar, device_id: str, info: DeviceInfo) -> None:
        """Bind to a device record."""
        super().__init__(registrar, device_id, "check", info)

    async def async_press(self) -> None:
        """Try the device now."""
        self._registrar.try_now(self._device_id, Purpose.CHECK, proven=True)


#: A check button for every onboarded device, now and as devices are onboarded.
async_setup_entry = member_platform(_entities)

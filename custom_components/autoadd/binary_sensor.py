"""Per-device connectivity: whether the device answers at its proven address (registrar/reachability.py).
The one entity of a device that is on by default; updating it (`homeassistant.update_entity`) checks the
device now."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.const import EntityCategory
from homeassistant.helpers.device_registry import DeviceInfo

from .entity import AutoAddEntity, member_platform
from .registrar import reachability
from .registrar.core import Registrar
from .registrar.session import Purpose

PARALLEL_UPDATES = 0


def _entities(registrar: Registrar, device_id: str, info: DeviceInfo) -> list[AutoAddConnectivity]:
    return [AutoAddConnectivity(registrar, device_id, info)]


class AutoAddConnectivity(AutoAddEntity, BinarySensorEntity):
    """On while the device answers; off once an attempt at its proven address got no answer, until it
    proves itself again. Its name is the device class's ("Connectivity")."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, registrar: Registrar, device_id: str, info: DeviceInfo) -> None:
        """Bind to a device record."""
        super().__init__(registrar, device_id, "connectivity", info)

    @property
    def is_on(self) -> bool:
        """Whether the device answers."""
        return reachability.reachable(self._registrar, self._device_id)

    async def async_update(self) -> None:
        """`homeassistant.update_entity`: an attempt at the device's proven address now, as Check now
        does (the state follows the attempt, not this call)."""
        self._registrar.try_now(self._device_id, Purpose.CHECK, proven=True)


#: A connectivity entity for every onboarded device, now and as devices are onboarded.
async_setup_entry = member_platform(_entities)

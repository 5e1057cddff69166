"""What every AutoAdd entity shares: one device of this home, its registry entry, its update signal; and
how a platform adds its entities for every member, now and as devices join.

One entity per device is on by default, Connectivity; the others are off until the owner turns them on.
Home Assistant (2026.7 on) adds at most 10,000 enabled entities per config entry and refuses the rest, so
one per device is what lets a home of 10,000 devices have them all; each enabled entity also costs a
state, its recorder rows and its memory per device."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import AutoAddConfigEntry
from .const import SIGNAL_DEVICE_ADDED, SIGNAL_DEVICE_UPDATED
from .registrar.core import Registrar
from .registrar.record import DeviceRecord
from .runtime import device_info

#: Stored devices whose entities are added in one turn of the event loop at set-up.
ADD_AT_ONCE = 25


class AutoAddEntity(Entity):
    """One value of one device this home owns, from its record; available while it is a member."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, registrar: Registrar, device_id: str, key: str, info: DeviceInfo) -> None:
        """Bind to a device record."""
        self._registrar = registrar
        self._device_id = device_id
        self._attr_unique_id = f"{device_id}_{key}"
        self._attr_device_info = info

    @property
    def _record(self) -> DeviceRecord | None:
        record = self._registrar.state.devices.get(self._device_id)
        return record if record is not None and record.is_member else None

    @property
    def available(self) -> bool:
        """Available while the device is a member of this home (what this home knows of it holds
        while it is offline: its connectivity entity says whether it answers)."""
        return self._record is not None

    async def async_added_to_hass(self) -> None:
        """Follow this device's updates (a signal per device)."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, f"{SIGNAL_DEVICE_UPDATED}_{self._device_id}", self.async_write_ha_state
            )
        )


type MakeEntities = Callable[[Registrar, str, DeviceInfo], Sequence[AutoAddEntity]]
type SetUpEntry = Callable[
    [HomeAssistant, AutoAddConfigEntry, AddConfigEntryEntitiesCallback], Awaitable[None]
]


def member_platform(make: MakeEntities) -> SetUpEntry:
    """A platform's `async_setup_entry`: `make`'s entities for every member (async_add_member_entities)."""

    async def async_setup_entry(
        hass: HomeAssistant, entry: AutoAddConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
    ) -> None:
        await async_add_member_entities(hass, entry, async_add_entities, make)

    return async_setup_entry


async def async_add_member_entities(
    hass: HomeAssistant,
    entry: AutoAddConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: MakeEntities,
) -> None:
    """Add `make`'s entities for every member: the stored ones a few devices at a time (adding an
    entity runs in the event loop, and a home with thousands of devices would otherwise hold it for a
    second or more), then each device as it joins."""
    registrar = entry.runtime_data.registrar
    added: set[str] = set()

    def entities(device_id: str) -> Sequence[AutoAddEntity]:
        record = registrar.state.devices.get(device_id)
        if device_id in added or record is None or not record.is_member:
            return []
        added.add(device_id)
        return make(registrar, device_id, device_info(record))

    @callback
    def add(device_id: str) -> None:
        if new := entities(device_id):
            async_add_entities(new)

    async def add_stored() -> None:
        stored = list(registrar.state.devices)
        for start in range(0, len(stored), ADD_AT_ONCE):
            if new := [
                entity for device_id in stored[start : start + ADD_AT_ONCE] for entity in entities(device_id)
            ]:
                async_add_entities(new)
            await asyncio.sleep(0)  # a turn of the event loop for everything else

    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_DEVICE_ADDED, add))
    if len(registrar.state.devices) <= ADD_AT_ONCE:
        await add_stored()  # a small home: at once
    else:
        entry.async_create_background_task(hass, add_stored(), "autoadd stored devices' entities")

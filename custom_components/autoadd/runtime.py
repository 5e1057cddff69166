"""Home Assistant's side of the registrar core's ports: the device registry, events, repair issues,
background tasks and timers, and the HTTP client on the shared session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import contextlib
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN, EVENT_DEVICE_ONBOARDED, EVENT_OWNERSHIP, SIGNAL_DEVICE_ADDED, SIGNAL_DEVICE_UPDATED
from .device_client import CONNECT_TIMEOUT, DeviceClient
from .discovery import address_policy
from .registrar.ports import DeviceConnection, Issue
from .registrar.record import DeviceRecord
from .registrar.text import CAPS, Place, placeholders, shown, shown_all

#: Seconds for a device's answer once connected; connecting may take CONNECT_TIMEOUT more (§10).
REQUEST_TIMEOUT = 10.0

#: Repair issue translation keys per kind of issue the core raises.
ISSUE_KEYS = {
    "approve": "approve_device",
    "suspicious": "suspicious_device",
    "key_lost": "key_lost",
    "transfer_outdated": "transfer_outdated",
    "change_dropped": "change_dropped",
    "clone": "cloned_device",
    "counterfeit": "counterfeit_device",
    "manufacturer": "approve_manufacturer",
    "manufacturers_full": "manufacturers_full",
    "claim": "claim_device",
}


#: Placeholders that name several devices (the security issue's list): a longer cap.
LONG_PLACEHOLDERS = frozenset({"devices"})
#: How much of a device's registry name its serial number (or identifier) may take.
NAME_SERIAL_CAP = 24


def device_name(record: DeviceRecord) -> str:
    """The registry name of a device: its model and serial, both the device's words (made safe, and the
    model shortened first so that the serial still tells two devices apart)."""
    serial = shown(record.serial_number or record.device_id[:8], Place.NAME, cap=NAME_SERIAL_CAP)
    # A device never seen proving itself (a pasted id, blocked) has no model: named as AutoAdd's.
    model = shown(record.model or "AutoAdd device", Place.NAME, cap=CAPS[Place.NAME] - 1 - len(serial))
    return f"{model} {serial}"


def device_info(record: DeviceRecord) -> DeviceInfo:
    """The device registry entry a member's entities belong to, with everything it is shown by: a device
    stored here but missing from the registry (a restored backup) gets its name, not a nameless entry
    whose entity ids would all be `sensor.onboarding_state_N`."""
    return DeviceInfo(
        identifiers={(DOMAIN, record.device_id)},
        manufacturer=shown(record.manufacturer, Place.NAME),
        model=shown(record.model, Place.NAME),
        name=device_name(record),
        serial_number=shown(record.serial_number, Place.NAME) if record.serial_number else None,
    )


def registry_device(registry: dr.DeviceRegistry, entry_id: str, device_id: str) -> dr.DeviceEntry | None:
    """The entry's registry device for an AutoAdd device id.

    The device registry's API differs here: from Home Assistant 2026.10 on a device belongs to one config
    entry and is looked up per entry (`async_get_device` and `DeviceEntry.config_entries` are deprecated);
    2026.3, the minimum, has only those."""
    identifier = (DOMAIN, device_id)
    if hasattr(registry, "async_get_device_by_identifier"):
        return registry.async_get_device_by_identifier(identifier, entry_id)
    device = registry.async_get_device(identifiers={identifier})
    return device if device is not None and entry_id in device.config_entries else None


class HassRuntime:
    """The core's Owner and Scheduler, on one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind to the entry."""
        self.hass = hass
        self.entry_id = entry_id
        self._tasks: set[asyncio.Task[None]] = set()

    # --- transport ------------------------------------------------------------------------------------

    def transport(self, host: str, port: int) -> DeviceConnection:
        """A client for one device, on Home Assistant's shared session. It refuses (AddressRefusedError)
        an address this host's policy does not allow, wherever the address came from."""
        return DeviceClient(
            async_get_clientsession(self.hass),
            host,
            port,
            timeout=REQUEST_TIMEOUT,
            connect_timeout=CONNECT_TIMEOUT,
            policy=address_policy(self.hass),
        )

    # --- scheduler ------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run in the background, from the next turn of the event loop; cancelled at unload.

        Not started eagerly: an attempt that ends at once (a refused connection) starts the next one
        as it ends, and eager starts would run a whole queue of them in one turn of the loop."""
        task = self.hass.async_create_background_task(coro, name, eager_start=False)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def call_later(self, delay: float, action: Callable[[], None]) -> Callable[[], None]:
        """A timer."""
        return async_call_later(self.hass, delay, callback(lambda _now: action()))

    async def async_cancel_tasks(self) -> None:
        """Cancel and wait for every background task."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- owner ----------------------------------------------------------------------------------------

    def device_joined(self, record: DeviceRecord, *, first: bool) -> None:
        """Add the device to the registry; fire the onboarded event the first time."""
        device = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry_id, **device_info(record)
        )
        async_dispatcher_send(self.hass, SIGNAL_DEVICE_ADDED, record.device_id)
        if first:
            self.hass.bus.async_fire(
                EVENT_DEVICE_ONBOARDED,
                {
                    "device_id": device.id,
                    "autoadd_id": record.device_id,
                    "manufacturer": shown(record.manufacturer, Place.NAME),
                    "model": shown(record.model, Place.NAME),
                    "name": device.name,
                },
            )

    def device_left(self, record: DeviceRecord) -> None:
        """The device is not this home's any more: it leaves the registry (its history stays stored)."""
        registry = dr.async_get(self.hass)
        device = registry_device(registry, self.entry_id, record.device_id)
        if device is not None:
            registry.async_remove_device(device.id)

    def remove_stale_devices(self, left: set[str]) -> int:
        """At set-up: remove the entry's registry devices of records stored as no members (a device whose
        leaving was stored but whose registry removal was not, an older registry restored). Their entities
        go with them; the records, and what this home knows of the devices, stay. A registry device with
        no record at all stays: a store that is missing or unreadable must not empty the registry. How
        many went."""
        registry = dr.async_get(self.hass)
        stale = [
            device.id
            for device in dr.async_entries_for_config_entry(registry, self.entry_id)
            if any(domain == DOMAIN and key in left for domain, key in device.identifiers)
        ]
        for device_id in stale:
            registry.async_remove_device(device_id)
        return len(stale)

    def device_updated(self, device_id: str) -> None:
        """Entities of the device refresh."""
        async_dispatcher_send(self.hass, f"{SIGNAL_DEVICE_UPDATED}_{device_id}")

    def history(self, record: DeviceRecord, entry: dict[str, str]) -> None:
        """An ownership event, for automations and the logbook (what it carries made safe as plain text;
        the identifier is the validated hex). It names the device as the registry does, and carries the
        registry's device id while there is one, so that the logbook links the entry to the device."""
        data = {**shown_all(entry), "autoadd_id": record.device_id, "name": device_name(record)}
        device = registry_device(dr.async_get(self.hass), self.entry_id, record.device_id)
        if device is not None:
            data["device_id"] = device.id
            data["name"] = device.name_by_user or device.name or data["name"]
        self.hass.bus.async_fire(EVENT_OWNERSHIP, data)

    def raise_issue(self, issue: Issue) -> None:
        """A repair issue."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{issue.kind}_{issue.device_id}",
            is_fixable=issue.fixable,
            is_persistent=issue.fixable,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_KEYS[issue.kind],
            # Device text or fingerprints, made safe for markdown here (the core passes them as they are).
            translation_placeholders=placeholders(issue.placeholders, long=LONG_PLACEHOLDERS),
            data={"device_id": issue.device_id} if issue.fixable else None,
        )

    def clear_issue(self, kind: str, device_id: str) -> None:
        """The issue no longer holds."""
        ir.async_delete_issue(self.hass, DOMAIN, f"{kind}_{device_id}")

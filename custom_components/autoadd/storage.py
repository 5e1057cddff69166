"""Where the registrar keeps things, in Home Assistant's storage, durably where it matters.

Two stores:
- `autoadd.home_key` (private: file mode 0600): the home's keys, and, after the integration was removed,
  what is needed to reach devices with undelivered links. Never in the config entry, logs or diagnostics;
  kept when the integration is removed, so that setting AutoAdd up again gets the same home back.
- `autoadd.registrar`: trusted manufacturer roots and one record per device.

`Store.async_save` logs a failed write and returns; that is fine for a cache and wrong for keys and signed
links. `DurableStore.async_save_durable` writes the same file (atomically: write, fsync, rename) and
raises PersistError when it cannot. Delayed saves that fail tell the owner with a repair issue.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util.file import WriteError
from homeassistant.util.json import SerializationError

from .const import DOMAIN
from .registrar.keys import HomeKeys
from .registrar.migration import migrate
from .registrar.ports import PersistError
from .registrar.state import STATE_VERSION, RegistrarState
from .registrar.store_image import StoreImage

_LOGGER = logging.getLogger(__name__)

HOME_KEY_STORE = "autoadd.home_key"
REGISTRAR_STORE = "autoadd.registrar"
KEY_STORE_VERSION = 1
SAVE_DELAY = 1.0
ISSUE_STORAGE = "storage_failed"


class DurableStore(Store[dict[str, Any]]):
    """A Store whose writes can be awaited and fail loudly."""

    def __init__(self, hass: HomeAssistant, version: int, key: str, **kwargs: Any) -> None:
        """Open the store; `on_result(ok)` hears how each write went."""
        super().__init__(hass, version, key, atomic_writes=True, **kwargs)
        self.on_result: Callable[[bool], None] = lambda ok: None

    async def async_save_durable(self, data: dict[str, Any]) -> None:
        """Write `data` now, superseding any delayed save; raise PersistError if it is not on disk."""
        envelope = {
            "version": self.version,
            "minor_version": self.minor_version,
            "key": self.key,
            "data": data,
        }
        async with self._write_lock:
            self._manager.async_invalidate(self.key)
            self._async_cleanup_delay_listener()
            self._async_cleanup_final_write_listener()
            self._data = None
            try:
                await self._async_write_data(envelope)
            except (SerializationError, WriteError, OSError) as err:
                self.on_result(False)
                raise PersistError(f"{self.key} could not be written: {err}") from err
        self.on_result(True)

    async def _async_handle_write_data(self, *_args: Any) -> None:
        """A delayed write, as Store does it, but telling `on_result` how it went."""
        async with self._write_lock:
            self._manager.async_invalidate(self.key)
            self._async_cleanup_delay_listener()
            self._async_cleanup_final_write_listener()
            if self._data is None:
                return
            data, self._data = self._data, None
            if "data_func" in data:  # taken here, in the event loop; encoded in the executor
                data["data"] = data.pop("data_func")()
            try:
                await self._async_write_data(data)
            except (SerializationError, WriteError, OSError) as err:
                _LOGGER.error("Could not write %s: %s", self.key, err)
                self.on_result(False)
                return
        self.on_result(True)


class RegistrarStore(DurableStore):
    """The registrar store, migrated from what older releases wrote."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Open the store."""
        # Serialised in the executor: the data is made in the event loop (RegistrarState.as_dict, which
        # shares nothing with the live state), and a large store's JSON would otherwise stall the loop.
        super().__init__(hass, STATE_VERSION, REGISTRAR_STORE, serialize_in_event_loop=False)

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        return migrate(old_major_version, old_data)


class Stores:
    """Both stores, as the registrar core's Persistence port."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Open the stores (nothing is read yet)."""
        self.hass = hass
        self.keys_store = DurableStore(hass, KEY_STORE_VERSION, HOME_KEY_STORE, private=True)
        self.state_store = RegistrarStore(hass)
        self.state = RegistrarState()
        #: Each record's JSON, made again only when it changed (a write would otherwise encode them all).
        self.image = StoreImage()
        self.keys_store.on_result = self.state_store.on_result = self._write_result

    async def async_load_keys(self) -> HomeKeys | None:
        """The stored home keys, if there are any."""
        data = await self.keys_store.async_load()
        return HomeKeys.from_dict(data) if data else None

    async def async_load_state(self) -> RegistrarState:
        """The stored registrar state (empty if none)."""
        data = await self.state_store.async_load() or {}
        # Built in the executor: thousands of records are a second of Python the event loop would wait
        # for, while a worker thread gives it its turn every few milliseconds.
        self.state, self.image = await self.hass.async_add_executor_job(_read_state, data)
        return self.state

    async def save_keys(self, keys: HomeKeys) -> None:
        """Write the key store durably."""
        await self.keys_store.async_save_durable(keys.as_dict())

    async def save_state(self, state: RegistrarState, devices: Collection[str] | None) -> None:
        """Write the registrar store durably (`devices`: the records changed for it, None: any)."""
        if state is not self.state:
            self.state, devices = state, None
        self.image.touch(devices)
        try:
            await self.state_store.async_save_durable(self.image.data(state))
        except PersistError:
            self.schedule_save()  # what was pending before is still to be written
            raise

    def schedule_save(self, devices: Collection[str] = ()) -> None:
        """Write the registrar store soon (`devices`: the records changed)."""
        self.image.touch(devices)
        self.state_store.async_delay_save(lambda: self.image.data(self.state), SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write a pending delayed save now (at unload)."""
        await self.state_store._async_handle_write_data()

    async def async_remove_state(self) -> None:
        """Delete the registrar store (when the integration is removed)."""
        await self.state_store.async_remove()

    def _write_result(self, ok: bool) -> None:
        if ok:
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_STORAGE)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            ISSUE_STORAGE,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_STORAGE,
        )


def _read_state(data: dict[str, Any]) -> tuple[RegistrarState, StoreImage]:
    state = RegistrarState.from_dict(data)
    return state, StoreImage.of_loaded(state, data.get("devices", {}))


async def async_create_home_keys(hass: HomeAssistant, keys: HomeKeys) -> None:
    """Write a new home key before anything uses it (set-up); PersistError if it is not on disk."""
    await DurableStore(hass, KEY_STORE_VERSION, HOME_KEY_STORE, private=True).async_save_durable(
        keys.as_dict()
    )


async def async_load_home_keys(hass: HomeAssistant) -> HomeKeys | None:
    """The stored home keys, if any."""
    data = await DurableStore(hass, KEY_STORE_VERSION, HOME_KEY_STORE, private=True).async_load()
    return HomeKeys.from_dict(data) if data else None

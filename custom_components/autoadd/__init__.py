"""AutoAdd: Home Assistant as the registrar that onboards AutoAdd devices securely and automatically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from .const import CONF_ASK_ABOUT_MANUFACTURERS, CONF_MAX_KEY_AGE_DAYS, DOMAIN
from .discovery import AutoAddBrowser
from .recovery_steps import RESTORING_ISSUE, async_raise_restoring
from .registrar.core import Registrar
from .registrar.migration import NewerStoreError
from .registrar.ownership import reachability, remove, restore_kept
from .registrar.ports import PersistError
from .registrar.rotation import after_confirmation, resume_rotation
from .runtime import HassRuntime
from .services import async_setup_services
from .storage import Stores
from .views import async_register_views

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
KEY_AGE_CHECK_INTERVAL = timedelta(hours=12)


@dataclass
class AutoAddData:
    """What a loaded registrar entry holds."""

    registrar: Registrar
    browser: AutoAddBrowser
    runtime: HassRuntime
    stores: Stores


type AutoAddConfigEntry = ConfigEntry[AutoAddData]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the two views (the home key's QR code, a hand-over's transfer file) once,
    when the integration loads: routes added later fail on a started web server."""
    async_setup_services(hass)
    async_register_views(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> bool:
    """Load the home keys and the registrar's state, then start discovering devices."""
    stores = Stores(hass)
    keys = await stores.async_load_keys()
    if keys is None:
        raise ConfigEntryError(translation_domain=DOMAIN, translation_key="home_key_missing")
    try:
        state = await stores.async_load_state()
    except NewerStoreError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="store_newer",
            translation_placeholders={"version": str(err.version)},
        ) from err
    runtime = HassRuntime(hass, entry.entry_id)
    registrar = Registrar(
        keys,
        state,
        persistence=stores,
        transport=runtime.transport,
        owner=runtime,
        scheduler=runtime,
        clock=dt_util.utcnow,
    )
    registrar.ask_about_manufacturers = entry.options.get(CONF_ASK_ABOUT_MANUFACTURERS, True)
    async_raise_restoring(hass, keys)  # the owner is reminded while the recovery key is held
    try:
        if restore_kept(registrar):
            await registrar.commit(lambda: None)  # the kept records are in the registrar store first
            keys.kept = {}
            await stores.save_keys(keys)
        await resume_rotation(registrar)
    except PersistError as err:
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="storage_failed") from err
    if stale := runtime.remove_stale_devices(
        {device_id for device_id, record in state.devices.items() if not record.is_member}
    ):
        _LOGGER.info("Removed from the device registry what is no longer this home's: %s device(s)", stale)
    browser = AutoAddBrowser(hass, registrar)
    entry.runtime_data = AutoAddData(registrar, browser, runtime, stores)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    registrar.start()
    await browser.async_start()

    @callback
    def check_key_age(*_: object) -> None:
        async_check_home_key_age(hass, entry)
        after_confirmation(registrar)  # a kept old key goes once its grace period is over

    check_key_age()
    entry.async_on_unload(async_track_time_interval(hass, check_key_age, KEY_AGE_CHECK_INTERVAL))
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def _async_options_updated(hass: HomeAssistant, entry: AutoAddConfigEntry) -> None:
    entry.runtime_data.registrar.ask_about_manufacturers = entry.options.get(
        CONF_ASK_ABOUT_MANUFACTURERS, True
    )
    async_check_home_key_age(hass, entry)


@callback
def async_check_home_key_age(hass: HomeAssistant, entry: AutoAddConfigEntry) -> None:
    """Remind the owner to rotate the home key once it is older than the age they set (if they set one)."""
    max_days = entry.options.get(CONF_MAX_KEY_AGE_DAYS, 0)
    age = dt_util.utcnow() - entry.runtime_data.registrar.home.created_at
    if max_days and age > timedelta(days=max_days):
        ir.async_create_issue(
            hass,
            DOMAIN,
            "home_key_old",
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="home_key_old",
            translation_placeholders={"age": str(age.days), "max": str(max_days)},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, "home_key_old")


async def async_unload_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> bool:
    """Stop discovery and running attempts, write what is pending, unload the entities."""
    data = entry.runtime_data
    await data.browser.async_stop()
    data.registrar.stop()
    await data.runtime.async_cancel_tasks()
    await data.stores.async_flush()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> None:
    """Forget devices and trusted roots. The home keys stay, and so does, with them, whatever is needed
    to reach a device that has links this home signed and not seen confirmed."""
    stores = Stores(hass)
    keys = await stores.async_load_keys()
    try:
        state = await stores.async_load_state()
    except NewerStoreError:
        _LOGGER.error("The registrar store is from a later release of AutoAdd; it is kept as it is")
        return
    if keys is not None:
        keys.kept = {**keys.kept, **reachability(state)}
        if keys.recovery is not None and keys.recovery.key is not None:  # a restore ends with the entry
            keys.recovery.key = None
            keys.recovery = keys.confirmed_recovery()
            ir.async_delete_issue(hass, DOMAIN, RESTORING_ISSUE)
        try:
            await stores.save_keys(keys)
        except PersistError:
            _LOGGER.error("Could not keep undelivered links with the home key; the registrar store is kept")
            return
    await stores.async_remove_state()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: AutoAddConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the owner remove a device: it leaves this home; its chain and pending links stay stored."""
    for domain, identifier in device.identifiers:
        if domain == DOMAIN:
            remove(entry.runtime_data.registrar, identifier, by_registry=True)
    return True

"""AutoAdd: Home Assistant as the registrar that onboards AutoAdd devices securely and automatically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv, device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from .const import CONF_MAX_KEY_AGE_DAYS, DOMAIN
from .discovery import AutoAddBrowser
from .lifecycle import async_resume_rotation
from .registrar import Registrar
from .services import async_setup_services
from .storage import HomeKeyStore, RegistrarStore

PLATFORMS: list[Platform] = [Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
KEY_AGE_CHECK_INTERVAL = timedelta(hours=12)


@dataclass
class AutoAddData:
    """What a loaded registrar entry holds."""

    registrar: Registrar
    browser: AutoAddBrowser


type AutoAddConfigEntry = ConfigEntry[AutoAddData]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> bool:
    """Load the home key and the registrar's state, then start discovering devices."""
    key_store = HomeKeyStore(hass)
    keys = await key_store.async_load()
    if keys is None:
        raise ConfigEntryError(translation_domain=DOMAIN, translation_key="home_key_missing")
    store = RegistrarStore(hass)
    await store.async_load()
    registrar = Registrar(hass, entry.entry_id, keys, key_store, store)
    await async_resume_rotation(registrar)
    browser = AutoAddBrowser(hass, registrar)
    entry.runtime_data = AutoAddData(registrar, browser)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    registrar.async_start()
    await browser.async_start()

    @callback
    def check_key_age(*_: object) -> None:
        async_check_home_key_age(hass, entry)

    check_key_age()
    entry.async_on_unload(async_track_time_interval(hass, check_key_age, KEY_AGE_CHECK_INTERVAL))
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def _async_options_updated(hass: HomeAssistant, entry: AutoAddConfigEntry) -> None:
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
    """Stop discovery and running attempts; unload the entities."""
    await entry.runtime_data.browser.async_stop()
    await entry.runtime_data.registrar.async_stop()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> None:
    """Forget devices and trusted roots; the home key stays, so setting up again gets the same home."""
    await RegistrarStore(hass).async_remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: AutoAddConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the owner remove a device: the registrar forgets it."""
    for domain, identifier in device.identifiers:
        if domain == DOMAIN:
            entry.runtime_data.registrar.async_forget(identifier)
    return True

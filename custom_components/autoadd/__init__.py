"""AutoAdd: Home Assistant as the registrar that onboards AutoAdd devices securely and automatically."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN
from .discovery import AutoAddBrowser
from .lifecycle import async_resume_rotation
from .registrar import Registrar
from .storage import HomeKeyStore, RegistrarStore

PLATFORMS: list[Platform] = [Platform.SENSOR]


@dataclass
class AutoAddData:
    """What a loaded registrar entry holds."""

    registrar: Registrar
    browser: AutoAddBrowser


type AutoAddConfigEntry = ConfigEntry[AutoAddData]


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
    return True


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

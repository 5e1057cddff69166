"""The registrar entry sets up, unloads and is removed cleanly."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.storage import HOME_KEY_STORE, REGISTRAR_STORE

from .conftest import registrar_of


async def test_setup_and_unload(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A registrar entry with its home key sets up and unloads cleanly."""
    assert registrar_of(loaded).state.roots
    assert await hass.config_entries.async_unload(loaded.entry_id)
    await hass.async_block_till_done()
    assert loaded.state is ConfigEntryState.NOT_LOADED


async def test_missing_home_key_is_a_setup_error(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Without the home key in storage the entry does not load, and says why."""
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None


async def test_remove_keeps_the_home_key(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_storage_with_home: dict[str, Any]
) -> None:
    """Removing AutoAdd forgets devices and roots but keeps the home key, so no device is locked out."""
    await hass.config_entries.async_remove(loaded.entry_id)
    await hass.async_block_till_done()
    assert REGISTRAR_STORE not in hass_storage_with_home
    assert HOME_KEY_STORE in hass_storage_with_home

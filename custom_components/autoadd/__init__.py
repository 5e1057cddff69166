"""AutoAdd: Home Assistant as the registrar that onboards AutoAdd devices securely and automatically."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

type AutoAddConfigEntry = ConfigEntry[None]


async def async_setup_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> bool:
    """Set up the AutoAdd registrar from a config entry."""
    return True


async def async_unload_entry(hass: HomeAssistant, entry: AutoAddConfigEntry) -> bool:
    """Unload the AutoAdd registrar."""
    return True

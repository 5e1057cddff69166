"""Logbook entries for AutoAdd events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_DEVICE_ONBOARDED


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe AutoAdd's events for the logbook."""

    @callback
    def describe_onboarded(event: Event) -> dict[str, Any]:
        data = event.data
        return {
            LOGBOOK_ENTRY_NAME: data.get("name", "AutoAdd device"),
            LOGBOOK_ENTRY_MESSAGE: (
                f"was added securely by AutoAdd ({data.get('manufacturer')} {data.get('model')})"
            ),
        }

    async_describe_event(DOMAIN, EVENT_DEVICE_ONBOARDED, describe_onboarded)

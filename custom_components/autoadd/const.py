"""Constants for the AutoAdd integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "autoadd"
SERVICE_TYPE: Final = "_autoadd._tcp.local."
CONF_HOME_NAME: Final = "home_name"
CONF_KEY_TYPE: Final = "key_type"
EVENT_DEVICE_ONBOARDED: Final = "autoadd_device_onboarded"
EVENT_OWNERSHIP: Final = "autoadd_ownership_event"
SIGNAL_DEVICE_UPDATED: Final = "autoadd_device_updated"
CONF_MAX_KEY_AGE_DAYS: Final = "home_key_max_age_days"
SIGNAL_DEVICE_ADDED: Final = "autoadd_device_added"
CONF_ASK_ABOUT_MANUFACTURERS: Final = "ask_about_manufacturers"

"""Constants for the AutoAdd integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "autoadd"
SERVICE_TYPE: Final = "_autoadd._tcp.local."
CONF_HOME_NAME: Final = "home_name"

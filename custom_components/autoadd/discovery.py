"""Discovery: browse `_autoadd._tcp.local.` on Home Assistant's shared zeroconf instance.

The TXT record is untrusted: it only says which device identifier to expect and whether the device is
claimed, which decides whether a handshake is worth trying. The handshake proves everything else.
"""

from __future__ import annotations

import logging
import re

from homeassistant.components import zeroconf
from homeassistant.core import HomeAssistant, callback
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo

from .const import SERVICE_TYPE
from .protocol.const import PROTOCOL_VERSION
from .registrar.core import Candidate, Registrar

_LOGGER = logging.getLogger(__name__)
_DEVICE_ID = re.compile(r"^[0-9a-f]{64}$")
RESOLVE_TIMEOUT_MS = 3000


def candidate_from_txt(host: str, port: int | None, properties: dict[str, str | None]) -> Candidate | None:
    """A candidate from an announcement, or None when the TXT record is not one we can act on."""
    device_id = properties.get("id") or ""
    if port is None or not _DEVICE_ID.match(device_id) or properties.get("v") != str(PROTOCOL_VERSION):
        return None
    txt = {key: value or "" for key, value in properties.items()}
    return Candidate(device_id, host, port, claimed=properties.get("st") == "claimed", txt=txt)


class AutoAddBrowser:
    """Feeds announced devices to the registrar."""

    def __init__(self, hass: HomeAssistant, registrar: Registrar) -> None:
        """Not browsing until started."""
        self.hass = hass
        self.registrar = registrar
        self._browser: AsyncServiceBrowser | None = None

    async def async_start(self) -> None:
        """Browse on HA's shared zeroconf instance."""
        aiozc = await zeroconf.async_get_async_instance(self.hass)
        self._browser = AsyncServiceBrowser(aiozc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])

    async def async_stop(self) -> None:
        """Stop browsing."""
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None

    @callback
    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            return
        self.hass.async_create_background_task(
            self._resolve(zeroconf, service_type, name), f"autoadd resolve {name}"
        )

    async def _resolve(self, zc: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zc, RESOLVE_TIMEOUT_MS):
            _LOGGER.debug("Could not resolve %s", name)
            return
        self.async_service_info(info)

    @callback
    def async_service_info(self, info: AsyncServiceInfo) -> None:
        """Hand a resolved announcement to the registrar."""
        addresses = info.parsed_scoped_addresses()
        if not addresses:
            return
        properties = {
            key.decode("utf-8", "replace"): value.decode("utf-8", "replace") if value is not None else None
            for key, value in info.properties.items()
        }
        candidate = candidate_from_txt(addresses[0], info.port, properties)
        if candidate is not None:
            self.registrar.announce(candidate)

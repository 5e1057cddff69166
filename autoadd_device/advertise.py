"""mDNS: the device announces `_autoadd._tcp.local.` with the TXT keys of docs/protocol.md ("Discovery").

The TXT record is a hint for the registrar, never trusted: it says whether to try, the handshake proves
the rest. It is updated when the device's state changes and withdrawn on shutdown.
"""

from __future__ import annotations

from collections.abc import Sequence
import secrets
import socket

from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from custom_components.autoadd.protocol.const import PROTOCOL_VERSION
from custom_components.autoadd.protocol.transport import BASE_PATH

from .device import ReferenceDevice

SERVICE_TYPE = "_autoadd._tcp.local."


def txt_record(device: ReferenceDevice, serial: int = 0) -> dict[str, str]:
    """The TXT keys: protocol version, device id, manufacturer, model, state, path, state serial.

    `sv` changes with every announcement of a new state. mDNS caches treat a TXT record they have seen
    before as old news, so a device whose state returns to an earlier value (claimed, unclaimed, claimed)
    would otherwise not be reported as updated by browsers."""
    return {
        "sv": str(serial),
        "v": str(PROTOCOL_VERSION),
        "id": device.device_id.hex(),
        "mf": device.manufacturer,
        "md": device.model,
        "st": "claimed" if device.claimed else "unclaimed",
        "path": BASE_PATH,
    }


def _instance_name(device: ReferenceDevice) -> str:
    label = "".join(c if c.isalnum() else "-" for c in device.model).strip("-")[:40] or "device"
    return f"{label}-{device.device_id.hex()[:8]}"


class Advertiser:
    """Registers one or more devices on one zeroconf instance, and keeps their TXT records current."""

    def __init__(self, addresses: Sequence[str], interfaces: Sequence[str] | None = None) -> None:
        """`addresses` are the IPs put in the records; `interfaces` the ones zeroconf binds (default all)."""
        self._addresses = [
            socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a) for a in addresses
        ]
        ip_version = IPVersion.All if any(":" in a for a in addresses) else IPVersion.V4Only
        self.zeroconf = AsyncZeroconf(
            interfaces=list(interfaces) if interfaces else InterfaceChoice.All, ip_version=ip_version
        )
        self._infos: dict[bytes, AsyncServiceInfo] = {}
        self._serial = secrets.randbelow(2**31)

    def _info(self, device: ReferenceDevice, port: int) -> AsyncServiceInfo:
        name = _instance_name(device)
        self._serial += 1
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{name}.{SERVICE_TYPE}",
            addresses=self._addresses,
            port=port,
            properties=txt_record(device, self._serial),
            server=f"{name}.local.",
        )

    async def register(self, device: ReferenceDevice, port: int) -> None:
        """Announce a device."""
        info = self._info(device, port)
        self._infos[device.device_id] = info
        await self.zeroconf.async_register_service(info)

    async def update(self, device: ReferenceDevice) -> None:
        """Announce a device's new TXT record."""
        old = self._infos.get(device.device_id)
        if old is None or old.port is None:
            return
        info = self._info(device, old.port)
        self._infos[device.device_id] = info
        await self.zeroconf.async_update_service(info)

    async def close(self) -> None:
        """Withdraw every record and close the zeroconf instance."""
        await self.zeroconf.async_unregister_all_services()
        await self.zeroconf.async_close()

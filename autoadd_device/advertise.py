"""mDNS: the device announces `_autoadd._tcp.local.` with the TXT keys of docs/protocol.md ("Discovery").

The TXT record is a hint for the registrar, never trusted: it says whether to try, the handshake proves
the rest. It is updated when the device's state changes and withdrawn on shutdown.

A registration first probes the network for the instance name (about a second) and only then enters
zeroconf's registry. An update sent meanwhile would be announced under a name zeroconf is still probing
for: zeroconf hears its own announcement, takes it for another host's, and fails the registration. So
each device's registration and updates run one at a time, an update waits for the registration before
it, and an update that fails is logged, never raised: the device keeps serving either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
import logging
import secrets
import socket

from cryptography.x509.oid import NameOID
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from custom_components.autoadd.protocol.const import PROTOCOL_VERSION
from custom_components.autoadd.protocol.transport import BASE_PATH

from .device import ReferenceDevice

_LOGGER = logging.getLogger(__name__)
SERVICE_TYPE = "_autoadd._tcp.local."


#: `sv` is a decimal of at most 10 digits (§10): the serial wraps below this.
SV_LIMIT = 10**10
#: `hd` is this many bytes of the head link's digest, in lowercase hex (§10).
HEAD_BYTES = 8


def manufacturer_name(device: ReferenceDevice) -> str:
    """TXT `mf`: the O of the IDevID's issuer, the name the device maker chose for itself (§10). The
    device does not hold its root; the registrar shows the proven root's name, never this one."""
    issuer = device.identity.certificates[0].issuer
    values = issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else "unknown"


def txt_record(device: ReferenceDevice, serial: int = 0) -> dict[str, str]:
    """The TXT keys: protocol version, device id, manufacturer, model, state, head, path, state serial.

    `hd` changes with the chain, so a hand-over that leaves `st` as it was (unclaimed, now for a new
    owner) is still a change of the record to a registrar that refused the device before.

    `sv` changes with every announcement, so also with every change of the other values. mDNS caches
    treat a TXT record they have seen before as old news, so a device whose state returns to an earlier
    value (claimed, unclaimed, claimed) would otherwise not be reported as updated by browsers. It need
    not increase nor survive a restart (a registrar never orders it), so it starts anywhere.

    `path` is fixed and registrars ignore it; it is still announced for registrars of protocol 1.0."""
    return {
        "sv": str(serial % SV_LIMIT),
        "v": str(PROTOCOL_VERSION),
        "id": device.device_id.hex(),
        "mf": manufacturer_name(device),
        "md": device.model,
        "st": "claimed" if device.claimed else "unclaimed",
        "hd": device.chain.digests[-1][:HEAD_BYTES].hex(),
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
        #: Per device: its registration and updates run one at a time, in the order they were asked for.
        self._turns: dict[bytes, asyncio.Lock] = {}
        #: Per device: the announcement zeroconf is still sending (the next one waits for it).
        self._sending: dict[bytes, Awaitable[object]] = {}
        self._updates: set[asyncio.Task[None]] = set()
        self._serial = secrets.randbelow(SV_LIMIT)

    def _info(self, device: ReferenceDevice, port: int, name: str) -> AsyncServiceInfo:
        self._serial = (self._serial + 1) % SV_LIMIT
        return AsyncServiceInfo(
            SERVICE_TYPE,
            name,
            addresses=self._addresses,
            port=port,
            properties=txt_record(device, self._serial),
            server=f"{_instance_name(device)}.local.",
        )

    def _turn(self, device: ReferenceDevice) -> asyncio.Lock:
        return self._turns.setdefault(device.device_id, asyncio.Lock())

    async def register(self, device: ReferenceDevice, port: int) -> None:
        """Announce a device, once zeroconf has probed for its name.

        If another host holds the name, zeroconf picks a free one (`-2`, `-3`...): registrars know a
        device by the `id` in its TXT record, so a hostile responder squatting the name cannot keep the
        device from being announced."""
        async with self._turn(device):
            info = self._info(device, port, f"{_instance_name(device)}.{SERVICE_TYPE}")
            sending = await self.zeroconf.async_register_service(info, allow_name_change=True)
            self._infos[device.device_id] = info
            self._sending[device.device_id] = sending

    async def update(self, device: ReferenceDevice) -> None:
        """Announce a device's new TXT record, after its registration and any earlier update."""
        async with self._turn(device):
            old = self._infos.get(device.device_id)
            if old is None or old.port is None:
                return  # not registered (yet): the registration announces the current state
            try:
                earlier = self._sending.pop(device.device_id, None)
                if earlier is not None:
                    await earlier  # so that the newest record is the one announced last
                info = self._info(device, old.port, old.name)
                self._sending[device.device_id] = await self.zeroconf.async_update_service(info)
                self._infos[device.device_id] = info
            except Exception as err:  # a failed announcement must not stop the device
                _LOGGER.warning(
                    "%s: the mDNS announcement was not updated (%s)", device.name, type(err).__name__
                )

    def changed(self, device: ReferenceDevice) -> None:
        """Schedule an update (the device's `on_change`); the task is kept until it is done."""
        task = asyncio.get_running_loop().create_task(self.update(device))
        self._updates.add(task)
        task.add_done_callback(self._updates.discard)

    async def close(self) -> None:
        """Let scheduled updates finish, then withdraw every record and close the zeroconf instance."""
        if self._updates:
            await asyncio.gather(*self._updates, return_exceptions=True)
        await self.zeroconf.async_unregister_all_services()
        await self.zeroconf.async_close()

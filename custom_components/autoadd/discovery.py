"""Discovery: browse `_autoadd._tcp.local.` on Home Assistant's shared zeroconf instance.

The TXT record is untrusted: it only says which device identifier to expect and whether the device is
claimed, which decides whether a handshake is worth trying. The handshake proves everything else.
The addresses are untrusted too: only one the address policy allows is handed on (§10, "Addresses a
registrar contacts"), so an announcement can't make Home Assistant call its own API or every host at once.

A burst of devices switched on together announces each name once, and a flood of fake names looks the
same: so every name is kept (up to MAX_PENDING names, oldest dropped) and handed on as the registrar has
room for it, a known device's at once (Registrar.accepts). Records the announcement carried are read from
zeroconf's cache; only a name without them costs a query, MAX_RESOLVING at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
import contextlib
import dataclasses
import ipaddress
import logging
import os
import re

from homeassistant.components import network, zeroconf
from homeassistant.components.network.models import Adapter
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo

from .const import SERVICE_TYPE
from .protocol.const import PROTOCOL_VERSION
from .registrar import reachability
from .registrar.addresses import AddressPolicy, IPInterface
from .registrar.core import Candidate, Registrar
from .registrar.text import Place, shown

_LOGGER = logging.getLogger(__name__)
#: A device id as TXT `id` carries it: exactly 64 lowercase hex digits (fullmatch: `$` alone would let a
#: trailing newline through).
_DEVICE_ID = re.compile(r"[0-9a-f]{64}")
RESOLVE_TIMEOUT_MS = 3000
#: Announcements resolved at once (each is an mDNS query and a task for up to RESOLVE_TIMEOUT_MS).
MAX_RESOLVING = 32
#: Announced names waiting for the registrar to have room; past this many the oldest is dropped (it is
#: tried when it announces again). A name is at most 255 bytes: this bounds them to about 1 MiB.
MAX_PENDING = 4096
#: "1" lets the registrar contact devices on loopback: for tests and the demo, never a real home.
ALLOW_LOOPBACK_ENV = "AUTOADD_ALLOW_LOOPBACK"
_POLICY: HassKey[tuple[tuple[list[Adapter], int | None, bool], AddressPolicy]] = HassKey(
    "autoadd_address_policy"
)
#: Device identifiers whose refused addresses were logged; past this many, no more are (no log flood).
MAX_LOGGED_REFUSALS = 256


@callback
def address_policy(hass: HomeAssistant) -> AddressPolicy:
    """The address policy for this host: its own addresses (every network adapter Home Assistant knows,
    enabled or not) and its HTTP server's port; loopback only when ALLOW_LOOPBACK_ENV says so.

    Every announcement and attempt asks for it (a burst, thousands of times), so the policy is kept, and
    made again whenever what it rests on is another: the adapters Home Assistant loaded (a new list
    each time it loads them), the HTTP port, the loopback setting."""
    adapters = network.async_get_loaded_adapters(hass) if "network" in hass.config.components else []
    api = hass.config.api
    inputs = (adapters, api.port if api is not None else None, os.environ.get(ALLOW_LOOPBACK_ENV) == "1")
    kept = hass.data.get(_POLICY)
    if kept is not None and kept[0][0] is inputs[0] and kept[0][1:] == inputs[1:]:
        return kept[1]
    policy = _make_policy(*inputs)
    hass.data[_POLICY] = (inputs, policy)
    return policy


def _make_policy(adapters: list[Adapter], own_port: int | None, allow_loopback: bool) -> AddressPolicy:
    interfaces: list[IPInterface] = []
    for adapter in adapters:
        for configured in (*adapter["ipv4"], *adapter["ipv6"]):
            with contextlib.suppress(ValueError):  # an address the OS reports oddly is not one of ours
                interfaces.append(
                    ipaddress.ip_interface(f"{configured['address']}/{configured['network_prefix']}")
                )
    return AddressPolicy.for_host(interfaces, own_port=own_port, allow_loopback=allow_loopback)


def candidate_from_txt(host: str, port: int | None, properties: Mapping[str, str | None]) -> Candidate | None:
    """A candidate from an announcement, or None when the record is one §10 says to ignore: no port, a `v`
    other than this version, an `id` that is not exactly 64 lowercase hex digits.

    Nothing else in the record decides anything. `path` is not looked at: the base path is fixed
    (`/autoadd/v1`), so a record without it, or with another, is contacted there all the same; `mf` and
    `md` are the device's words and decide nothing; `sv` is never compared (the record's digest leaves
    it out)."""
    device_id = properties.get("id") or ""
    if port is None or not _DEVICE_ID.fullmatch(device_id) or properties.get("v") != str(PROTOCOL_VERSION):
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
        self._logged_refusals: set[str] = set()
        #: Service names being resolved: one query per name at a time, and at most MAX_RESOLVING.
        self._resolving: set[str] = set()
        #: Announced names not handed on yet, oldest first, with their service type.
        self._pending: OrderedDict[str, str] = OrderedDict()
        self._zeroconf: Zeroconf | None = None
        self._dropped = 0
        #: The device id each name handed on announced last, oldest first (MAX_PENDING at most).
        self._named: OrderedDict[str, str] = OrderedDict()

    async def async_start(self) -> None:
        """Browse on HA's shared zeroconf instance."""
        aiozc = await zeroconf.async_get_async_instance(self.hass)
        self._zeroconf = aiozc.zeroconf
        self.registrar.on_room = self._pump
        self._browser = AsyncServiceBrowser(aiozc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])

    async def async_stop(self) -> None:
        """Stop browsing."""
        self.registrar.on_room = None
        self._pending.clear()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None

    @callback
    def async_replay(self) -> None:
        """Hand on again what the names known to be AutoAdd devices announce (from the cache, or by a
        query): after the owner changed what this home can accept (a restore), they need not wait for
        their next announcement."""
        if self._zeroconf is None:
            return
        for name in list(self._named):
            self._on_change(self._zeroconf, SERVICE_TYPE, name, ServiceStateChange.Added)

    @callback
    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self._pending.pop(name, None)
            device_id = self._named.pop(name, None)
            if device_id is not None:  # a goodbye is no evidence: it only makes the registrar look
                reachability.out_of_sight(self.registrar, device_id)
            return
        if name in self._resolving:
            return  # the query under way answers it
        info = AsyncServiceInfo(service_type, name)
        if info.load_from_cache(zeroconf) and self._offer(info):
            self._pending.pop(name, None)
            return  # a known device's, or one with room: on at once, never behind the names that wait
        self._pending[name] = service_type  # an announcement again keeps its place
        if len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
            self._dropped += 1
            if self._dropped == 1:  # once per flood, not once per name
                _LOGGER.debug(
                    "Over %d devices announced at once: the oldest wait to announce again", MAX_PENDING
                )
        self._pump()

    @callback
    def _pump(self) -> None:
        """Hand on waiting names, oldest first, while the registrar takes them: from the cache, else
        by a query (at most MAX_RESOLVING at once)."""
        zc = self._zeroconf
        while zc is not None and self._pending:
            name, service_type = self._pending.popitem(last=False)
            info = AsyncServiceInfo(service_type, name)
            if info.load_from_cache(zc):
                if not self._offer(info):
                    self._wait_first(info)
                    return  # no room: on_room calls again when an attempt ends
            elif len(self._resolving) < MAX_RESOLVING:
                self._resolving.add(name)
                self.hass.async_create_background_task(self._resolve(zc, info), "autoadd resolve")
            else:
                self._wait_first(info)
                return  # each ended query calls again
        self._dropped = 0

    def _wait_first(self, info: AsyncServiceInfo) -> None:
        """Put a name back at the head of the waiting ones."""
        self._pending[info.name] = info.type
        self._pending.move_to_end(info.name, last=False)

    async def _resolve(self, zc: Zeroconf, info: AsyncServiceInfo) -> None:
        try:
            resolved = await info.async_request(zc, RESOLVE_TIMEOUT_MS)
        finally:
            self._resolving.discard(info.name)
        if not resolved:
            _LOGGER.debug("Could not resolve %s", shown(info.name, Place.LOG))
        elif not self._offer(info):
            self._wait_first(info)  # its records are cached now: handed on when there is room
        self._pump()

    def _offer(self, info: AsyncServiceInfo) -> bool:
        """Hand a resolved announcement on if the registrar takes it now; False: it is to wait."""
        return self.async_service_info(info, wait_for_room=True)

    @callback
    def async_service_info(self, info: AsyncServiceInfo, *, wait_for_room: bool = False) -> bool:
        """Hand a resolved announcement to the registrar, room or not unless `wait_for_room`; False
        when it waits (the registrar has no room for it yet). An announcement to ignore is done with."""
        candidate = self._candidate(info)
        if candidate is None:
            return True
        if wait_for_room and not self.registrar.accepts(candidate.device_id):
            return False
        self._named.pop(info.name, None)
        self._named[info.name] = candidate.device_id
        if len(self._named) > MAX_PENDING:
            self._named.popitem(last=False)
        self.registrar.announce(candidate)
        return True

    def _candidate(self, info: AsyncServiceInfo) -> Candidate | None:
        """The candidate a resolved announcement names, at the first of its addresses the policy allows;
        None for an announcement to ignore or with no such address."""
        addresses = info.parsed_scoped_addresses()
        if not addresses:
            return None
        properties = {
            key.decode("utf-8", "replace"): value.decode("utf-8", "replace") if value is not None else None
            for key, value in info.properties.items()
        }
        candidate = candidate_from_txt(addresses[0], info.port, properties)
        if candidate is None:
            return None
        policy = address_policy(self.hass)
        host = policy.first_allowed(addresses, candidate.port)
        if host is None:
            self._refused(candidate.device_id, {str(policy.refusal(a, candidate.port)) for a in addresses})
            return None
        return dataclasses.replace(candidate, host=host)

    def _refused(self, device_id: str, reasons: set[str]) -> None:
        """Log, once per device identifier, that its announcement named no address to contact."""
        if device_id in self._logged_refusals or len(self._logged_refusals) >= MAX_LOGGED_REFUSALS:
            return
        self._logged_refusals.add(device_id)
        _LOGGER.debug(
            "Ignoring the announcement of %s: no address it names may be contacted (%s)",
            device_id[:12],
            ", ".join(sorted(reasons)),
        )

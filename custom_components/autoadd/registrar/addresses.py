"""Which addresses a registrar may contact.

An address comes from an mDNS announcement (anyone on the network can send one) or from a record that an
announcement once filled in, so it is the sender's word. Contacting it makes Home Assistant send a request
wherever the sender points: to this host's own services (its HTTP API trusts requests from the host
itself), to every host at once, or to nothing in particular. The policy refuses such addresses before any
connection is made; the handshake proves everything else about what answers at an allowed one.

Pure: the host gives the policy its own addresses and HTTP port; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
import ipaddress

from custom_components.autoadd.protocol.errors import AutoAddError

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

MAX_PORT = 65535
#: 0.0.0.0/8 is "this network" (RFC 791, 1122): a connection to it reaches this host, not a device.
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class Refused(StrEnum):
    """Why an address is not contacted (a stable code, for logs and refusals)."""

    NOT_AN_ADDRESS = "not_an_address"  # a name, not an IP literal: its resolution is anyone's to answer
    BAD_PORT = "bad_port"  # outside 1-65535
    UNSPECIFIED = "unspecified"  # 0.0.0.0/8 or ::, which reach this host's own services
    MULTICAST = "multicast"
    BROADCAST = "broadcast"  # 255.255.255.255 or the broadcast address of one of this host's networks
    LOOPBACK = "loopback"  # 127.0.0.0/8 or ::1, unless the host allows it (tests, the demo)
    LINK_LOCAL_WITHOUT_SCOPE = "link_local_without_scope"  # fe80::/10 names no interface without one
    OWN_HTTP_PORT = "own_http_port"  # Home Assistant's own HTTP server, on loopback or its own address


class AddressRefusedError(AutoAddError):
    """An address the policy does not contact: nothing was sent. It is this registrar's decision, not
    something a device said or proved."""

    code = "address_refused"

    def __init__(self, reason: Refused) -> None:
        """Keep the reason code."""
        self.reason = reason
        super().__init__(f"the registrar does not contact this address ({reason.value})")


def _unscoped(ip: IPAddress) -> IPAddress:
    """The address without its IPv6 scope: an interface index does not make it another host."""
    return ipaddress.IPv6Address(int(ip)) if isinstance(ip, ipaddress.IPv6Address) else ip


def _parse(host: object) -> IPAddress | None:
    """An IP literal (an IPv6 one may carry a scope, `fe80::1%eth0`), or None; never a name to resolve."""
    if not isinstance(host, str):  # ip_address would also take an integer or packed bytes
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Decides whether (host, port) may be contacted.

    `own_port` is this host's own HTTP server port (Home Assistant's), refused on loopback and on every
    address in `own_addresses`; `broadcasts` are the directed broadcast addresses of this host's networks.
    """

    allow_loopback: bool = False
    own_port: int | None = None
    own_addresses: frozenset[IPAddress] = frozenset()
    broadcasts: frozenset[IPAddress] = frozenset()

    @classmethod
    def for_host(
        cls, interfaces: Iterable[IPInterface], *, own_port: int | None, allow_loopback: bool = False
    ) -> AddressPolicy:
        """The policy for a host with these interface addresses (address and prefix) and HTTP port."""
        own: set[IPAddress] = set()
        broadcasts: set[IPAddress] = set()
        for interface in interfaces:
            own.add(_unscoped(interface.ip))
            network = interface.network
            if isinstance(network, ipaddress.IPv4Network) and network.prefixlen < 31:
                broadcasts.add(network.broadcast_address)  # /31 and /32 have no broadcast address
        return cls(allow_loopback, own_port, frozenset(own), frozenset(broadcasts))

    def refusal(self, host: str, port: int) -> Refused | None:  # noqa: PLR0911 - one reason per rule
        """Why (host, port) is not contacted, or None when it may be."""
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= MAX_PORT:
            return Refused.BAD_PORT
        ip = _parse(host)
        if ip is None:
            return Refused.NOT_AN_ADDRESS
        scoped = isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if ip.is_unspecified or ip in _THIS_NETWORK:
            return Refused.UNSPECIFIED
        if ip.is_multicast:
            return Refused.MULTICAST
        if ip == _LIMITED_BROADCAST or ip in self.broadcasts:
            return Refused.BROADCAST
        if ip.is_loopback and not self.allow_loopback:
            return Refused.LOOPBACK
        if isinstance(ip, ipaddress.IPv6Address) and ip.is_link_local and not scoped:
            return Refused.LINK_LOCAL_WITHOUT_SCOPE
        if port == self.own_port and (ip.is_loopback or _unscoped(ip) in self.own_addresses):
            return Refused.OWN_HTTP_PORT
        return None

    def allows(self, host: str, port: int) -> bool:
        """Whether (host, port) may be contacted."""
        return self.refusal(host, port) is None

    def check(self, host: str, port: int) -> None:
        """Raise AddressRefusedError unless (host, port) may be contacted."""
        reason = self.refusal(host, port)
        if reason is not None:
            raise AddressRefusedError(reason)

    def first_allowed(self, hosts: Iterable[str], port: int) -> str | None:
        """The first of `hosts` (in the announcement's order) that may be contacted on `port`, if any."""
        return next((host for host in hosts if self.allows(host, port)), None)

"""What the device grants one client, and how long it waits for one: the numbers of docs/protocol.md §9.

A device on a hostile home network must keep answering its genuine registrar while another host floods it.
So every budget is per client, every wait has a deadline, and the tables that remember clients are bounded:
a flood of source addresses evicts the oldest entries instead of growing memory.

Who is "one client" differs per budget. The rate limiter keys by the remote address: a flooder's requests
spend only its own bucket, and many addresses only give it many buckets, which takes nothing from anybody.
The connection share keys IPv6 by /64 (`client_key`): one host holds a whole /64 and could otherwise open
a share of connections from each of its addresses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
import ipaddress
import time
from typing import Final

#: Requests per second one client may make once its burst is spent, and the burst.
RATE: Final = 10.0
BURST: Final = 20
#: Clients the rate limiter remembers; the one not heard from longest is forgotten first.
RATE_CLIENTS: Final = 256
#: Seconds a new connection has to send a complete request head.
HEADER_TIMEOUT: Final = 10.0
#: Seconds a connection may stay open after a response without a complete next request head.
IDLE_TIMEOUT: Final = 30.0
#: Seconds a request has to send its whole body once its head is in.
BODY_TIMEOUT: Final = 10.0
#: Connections open at once, in all and from one client (an IPv4 address, an IPv6 /64). A new connection
#: beyond either evicts the one that has waited longest without a request in progress (in all, or of that
#: client); it is closed at once only when every one it could evict is answering a request.
MAX_CONNECTIONS: Final = 32
MAX_CONNECTIONS_PER_CLIENT: Final = 8
#: The prefix length that makes one IPv6 client for the connection share (one SLAAC network, one host's).
IPV6_CLIENT_PREFIX: Final = 64


def client_key(address: str) -> str:
    """The client an address belongs to for the connection share: an IPv4 address (also when written
    IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address's /64 (with its scope: the same link-local /64 on two
    interfaces is two links), or the text itself when it is no IP address (no peer name at all: "")."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    network = ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False)
    return f"{network}%{ip.scope_id}" if ip.scope_id else str(network)


@dataclass(frozen=True, slots=True)
class ServingLimits:
    """The device's budgets; tests make them small, the command line takes the defaults."""

    rate: float = RATE
    burst: int = BURST
    rate_clients: int = RATE_CLIENTS
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT


class _Bucket:
    """A token bucket: `burst` requests at once, refilled at `rate` per second."""

    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens, self.last = tokens, now


class RateLimiter:
    """One token bucket per client, so that a flooder spends only its own budget.

    A client seen for the first time (or again after being forgotten) starts with a full bucket. At most
    `clients` buckets are kept; adding one more forgets the client that has been quiet the longest, which
    can only ever give that client a fresh budget, never take one from anybody.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clients: int = RATE_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """No client is known yet."""
        self._rate, self._burst, self._clients, self._clock = rate, burst, max(1, clients), clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """How many clients are remembered."""
        return len(self._buckets)

    def allow(self, client: str) -> bool:
        """Take a token from `client`'s bucket if there is one."""
        now = self._clock()
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = _Bucket(float(self._burst), now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.last) * self._rate)
        bucket.last = now
        self._buckets[client] = bucket
        while len(self._buckets) > self._clients:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

"""The device's TCP connections: how many may be open, and how long each may keep the device waiting.

aiohttp closes a connection that idles between requests, but it waits forever for the first request head
and for the rest of a head that trickles in: a few hundred half-sent requests would hold the device's
sockets and memory. The gate stands in front of aiohttp's protocol and gives each connection a deadline:

    opened            --(complete request head within header_timeout)-->  in a request
    in a request      --(response handed to aiohttp)------------------->  idle
    idle              --(complete next request head within idle_timeout)->  in a request

A connection that misses its deadline is aborted. The table is bounded: at most `max_connections` in all
and `max_connections_per_client` per client (an IPv4 address, an IPv6 /64: limits.client_key). Refusing
connections beyond the caps would let a few hosts hold every slot for ever, reconnecting each time a
deadline closes theirs, and lock the genuine registrar out. So a new connection beyond a cap evicts the
connection that has waited longest without a request in progress (opened or idle, never "in a request"):
of its own client when that client's share is full, of anybody when the whole table is. A holder of idle
slots loses them to each newcomer, while a connection the device is answering is never cut short. Only
when every connection it could evict is in a request is the new one closed as soon as it is accepted. The
request body has its own deadline, kept by the endpoint that reads it (see server.py), so a request
cannot hold its slot longer than that either.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
import logging
from typing import cast

from .limits import ServingLimits, client_key

_LOGGER = logging.getLogger(__name__)


def client_of(transport: asyncio.BaseTransport) -> str:
    """The client a connection comes from (the key of its connection share): see limits.client_key."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple | list) and peer:
        return client_key(str(peer[0]))
    return ""


class _Connection:
    """One open connection and its single deadline."""

    __slots__ = ("client", "deadline", "transport")

    def __init__(self, transport: asyncio.Transport, client: str) -> None:
        self.transport, self.client = transport, client
        self.deadline: asyncio.TimerHandle | None = None

    def arm(self, seconds: float, phase: str) -> None:
        self.disarm()
        self.deadline = asyncio.get_running_loop().call_later(seconds, self._expire, phase)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expire(self, phase: str) -> None:
        self.deadline = None
        _LOGGER.debug("closing a connection from %s: no complete request head %s", self.client, phase)
        self.transport.abort()


class ConnectionGate:
    """Counts the open connections, keeps each one's deadline, and chooses which one a newcomer evicts."""

    def __init__(self, limits: ServingLimits) -> None:
        """No connection is open yet."""
        self._limits = limits
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        # The connections without a request in progress, the one waiting longest first (a dict keeps
        # insertion order, and a connection is inserted again each time it starts waiting).
        self._waiting: dict[asyncio.BaseTransport, _Connection] = {}
        self._per_client: Counter[str] = Counter()
        #: The request loops of admitted connections that have not ended yet.
        self.tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """How many connections are open."""
        return len(self._open)

    def protocol_factory(
        self, make_protocol: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server`: `make_protocol`'s protocol, behind this gate."""
        return lambda: _GatedProtocol(self, make_protocol)

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection and start its head deadline, evicting another if a cap is reached;
        False if every connection it could evict is in a request."""
        client = client_of(transport)
        limits = self._limits
        if self._per_client[client] >= limits.max_connections_per_client and not self._evict(client):
            _LOGGER.debug("refusing a connection from %s: all of its share are in a request", client)
            return False
        if len(self._open) >= limits.max_connections and not self._evict(None):
            _LOGGER.debug("refusing a connection from %s: all %d are in a request", client, len(self._open))
            return False
        connection = _Connection(cast(asyncio.Transport, transport), client)
        self._open[transport] = connection
        self._waiting[transport] = connection
        self._per_client[client] += 1
        connection.arm(limits.header_timeout, "after connecting")
        return True

    def _evict(self, client: str | None) -> bool:
        """Abort the connection that has waited longest without a request in progress, of `client` (or of
        anybody when None), and forget it at once so that its slot is free; False if there is none."""
        victim = next(
            (waiting for waiting in self._waiting.values() if client is None or waiting.client == client),
            None,
        )
        if victim is None:
            return False
        _LOGGER.debug("evicting a waiting connection from %s for a new one", victim.client)
        self.release(victim.transport)
        victim.transport.abort()
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        """Forget a closed (or evicted) connection; a second call for it does nothing."""
        connection = self._open.pop(transport, None)
        if connection is None:
            return
        self._waiting.pop(transport, None)
        connection.disarm()
        self._per_client[connection.client] -= 1
        if self._per_client[connection.client] <= 0:
            del self._per_client[connection.client]

    def head_received(self, transport: asyncio.BaseTransport | None) -> None:
        """A complete request head came in: the connection's deadline is now the request body's. It still
        waits (a body that trickles in holds nothing a newcomer can't take) until request_started."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None:
            connection.disarm()

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        """The whole request is in (head and body): no newcomer may evict the connection until its
        response is handed over."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None:
            connection.disarm()
            self._waiting.pop(connection.transport, None)

    def request_finished(self, transport: asyncio.BaseTransport | None) -> None:
        """The response is handed to aiohttp: the next request head must come within the idle timeout,
        and the connection waits again (the newest waiting one, evicted last)."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None:
            connection.arm(self._limits.idle_timeout, "after the last response")
            self._waiting.pop(connection.transport, None)
            self._waiting[connection.transport] = connection

    def abort_all(self) -> None:
        """Abort every connection still open (at shutdown, after the graceful part)."""
        for connection in list(self._open.values()):
            connection.disarm()  # no deadline outlives the server
            connection.transport.abort()


class _GatedProtocol(asyncio.Protocol):
    """Passes a connection's events to aiohttp's protocol once the gate admits it; counts it out at the end.

    A refused connection never gets aiohttp's protocol: it is aborted before anything is read from it. An
    evicted one is aborted by the gate; its connection_lost still reaches aiohttp's protocol.
    """

    def __init__(self, gate: ConnectionGate, make_protocol: Callable[[], asyncio.Protocol]) -> None:
        self._gate, self._make_protocol = gate, make_protocol
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if not self._gate.admit(transport):
            cast(asyncio.Transport, transport).abort()
            return
        self._inner = self._make_protocol()
        self._inner.connection_made(transport)
        # aiohttp's request loop for the connection: the server waits for it when it stops.
        task = getattr(self._inner, "_task_handler", None)
        if isinstance(task, asyncio.Task):
            self._gate.tasks.add(task)
            task.add_done_callback(self._gate.tasks.discard)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._gate.release(self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

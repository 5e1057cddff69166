"""The device's budgets over real HTTP (docs/protocol.md §9): body limits, deadlines, connection caps and
eviction, per-client rate limits, and the last-resort answer to a fault; and, on the connection gate
itself, the choices that sockets on 127.0.0.0/8 cannot show (IPv6 /64s, every connection busy). The
attacks themselves, one per finding, are in tests/security/test_device_attacks.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import logging
from typing import Any

import pytest

from autoadd_device.connections import ConnectionGate
from autoadd_device.device import ReferenceDevice
from autoadd_device.limits import ServingLimits, client_key
from autoadd_device.server import GATE_KEY, LIMITER_KEY
from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE, MAX_MESSAGE_SIZE
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import PATH_HELLO, PATH_INFO, PATH_LINKS, PATH_NOTE

from .conftest import RunningDevice
from .raw_http import PATIENCE, RawConnection, answered, chunk, refusal, request_head, session_from

SECRET = "attacker-value-0123456789"
type StartDevice = Callable[..., Awaitable[RunningDevice]]


@pytest.fixture
async def start_device(
    make_device: Callable[..., RunningDevice], home: PrivateKey
) -> AsyncIterator[StartDevice]:
    """Start a device with the given limits: `await start_device(header_timeout=0.2, ...)`."""
    started: list[RunningDevice] = []

    async def start(**limits: Any) -> RunningDevice:
        device = make_device([home], serial=f"SN{len(started):04d}")
        device.rate = limits.pop("rate", device.rate)
        device.burst = limits.pop("burst", device.burst)
        device.limits = ServingLimits(**limits)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


@pytest.mark.parametrize(
    ("path", "limit"), [(PATH_HELLO, MAX_MESSAGE_SIZE), (PATH_NOTE, MAX_BUNDLE_SIZE), (PATH_LINKS, 132_096)]
)
async def test_each_endpoint_takes_a_body_up_to_its_limit(
    running: RunningDevice, path: str, limit: int
) -> None:
    """§9's table: a body of exactly the limit is parsed (garbage: malformed); one byte more is too_large."""
    assert running.device is not None
    before = running.device.state
    assert await refusal(running.port, path, b"\xff" * limit) == (400, "malformed")
    assert await refusal(running.port, path, b"\xff" * (limit + 1)) == (413, "too_large")
    assert running.device.state == before


async def test_a_chunked_body_over_the_limit_is_too_large(running: RunningDevice) -> None:
    """A body without Content-Length is counted as it comes, over as many reads as it takes: over the limit
    it is 413 too_large (not a 400 for the part that had arrived when the device started reading)."""
    connection = await RawConnection.open(running.port)
    try:
        await connection.send(
            request_head("POST", PATH_HELLO, extra="Transfer-Encoding: chunked\r\n") + chunk(b"\x00" * 3000)
        )
        await answered(running.port)
        await connection.send(chunk(b"\x00" * 3000) * 2 + chunk(b""))
        answer = await connection.answer()
        assert (answer.status, answer.error[0]) == (413, "too_large")
    finally:
        await connection.close()


async def test_an_idle_connection_is_closed_after_its_response(start_device: StartDevice) -> None:
    """After an answer, the next request head must come within the idle timeout."""
    device: RunningDevice = await start_device(idle_timeout=0.2)
    connection = await RawConnection.open(device.port)
    await connection.send(request_head("GET", PATH_INFO))
    assert (await connection.answer()).status == 200
    assert await connection.until_closed() == b""


async def test_a_body_that_stops_coming_is_a_request_timeout(start_device: StartDevice) -> None:
    """A head that promises more body than comes gets 408 request_timeout, and the connection is closed."""
    device: RunningDevice = await start_device(body_timeout=0.2)
    assert device.device is not None
    before = device.device.state
    connection = await RawConnection.open(device.port)
    await connection.send(request_head("POST", PATH_NOTE, length=1000) + b"\x00" * 10)
    answer = await connection.answer()
    assert (answer.status, answer.error[0]) == (408, "request_timeout")
    await connection.until_closed()
    assert device.device.state == before


async def test_a_new_connection_evicts_the_one_waiting_longest(start_device: StartDevice) -> None:
    """Beyond a client's share, a new connection evicts that client's longest-waiting connection; beyond
    the total, the longest-waiting of anybody's. Every newcomer is answered; the table stays at its cap."""
    device: RunningDevice = await start_device(
        header_timeout=60, idle_timeout=60, max_connections=3, max_connections_per_client=2
    )
    assert device.server is not None
    held: dict[str, RawConnection] = {}
    try:
        for name, source in (("a1", "127.0.0.1"), ("a2", "127.0.0.1"), ("b", "127.0.0.2")):
            held[name] = await RawConnection.open(device.port, source)
            await held[name].send(request_head("GET", PATH_INFO))
            assert (await held[name].answer()).status == 200  # admitted, and idle since this answer
        for name, source, evicted in (("a3", "127.0.0.1", "a1"), ("c", "127.0.0.3", "a2")):
            held[name] = await RawConnection.open(device.port, source)
            await held[name].send(request_head("GET", PATH_INFO))
            assert (await held[name].answer()).status == 200
            assert await held[evicted].until_closed() == b""
        for name in ("b", "a3"):  # the connections that waited less are still open
            await held[name].send(request_head("GET", PATH_INFO))
            assert (await held[name].answer()).status == 200
        assert len(device.server.app[GATE_KEY]) == 3
    finally:
        for connection in held.values():
            await connection.close()


async def test_a_body_that_trickles_in_holds_nothing_a_newcomer_cannot_take(
    start_device: StartDevice,
) -> None:
    """A request counts as in progress (never evicted) only once its body is in: a connection sending
    its body slowly waits like an idle one, so slow bodies from a few hosts cannot fill the table.
    (test_the_gate_refuses_only_when_every_connection_is_in_a_request: one in progress is never evicted.)"""
    device: RunningDevice = await start_device(
        header_timeout=60, idle_timeout=60, body_timeout=60, max_connections=2
    )
    assert device.device is not None
    before = device.device.state
    body = b"\xff" * 1000
    slow = await RawConnection.open(device.port)
    held = [slow]
    try:
        await slow.send(request_head("POST", PATH_LINKS, length=len(body)) + body[:10])
        first = await RawConnection.open(device.port, "127.0.0.2")
        held.append(first)
        await first.send(request_head("GET", PATH_INFO))
        assert (await first.answer()).status == 200  # a barrier: the device has read the slow head too
        newcomer = await RawConnection.open(device.port, "127.0.0.3")
        held.append(newcomer)
        await newcomer.send(request_head("GET", PATH_INFO))
        assert (await newcomer.answer()).status == 200
        assert await slow.until_closed() == b""  # it waited longest: it went
        assert device.device.state == before
    finally:
        for connection in held:
            await connection.close()


class _Seen(logging.Handler):
    """Collects the log records whose message holds `text`, and says when the first one came."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text, self.records, self.event = text, list[logging.LogRecord](), asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.records.append(record)
            self.event.set()


async def test_a_client_gone_during_its_request_is_no_error_in_the_log(start_device: StartDevice) -> None:
    """A connection lost while its request is read (the client left, or a newcomer evicted it) is logged
    at debug level only: every client can cause it, so an error line would let a flooder fill the log."""
    device: RunningDevice = await start_device(body_timeout=60)
    assert device.device is not None
    before = device.device.state
    seen = _Seen("request refused by the HTTP layer")
    logger = logging.getLogger("autoadd_device.serving")
    logger.addHandler(seen)
    level = logger.level
    logger.setLevel(logging.DEBUG)  # setLevel, not .level: it clears the logger's cached answers
    try:
        connection = await RawConnection.open(device.port)
        await connection.send(request_head("POST", PATH_NOTE, length=1000) + b"\x00" * 10)
        await answered(device.port)  # the device is reading the body
        await connection.close()
        async with asyncio.timeout(PATIENCE):
            await seen.event.wait()
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
    assert [record.levelno for record in seen.records] == [logging.DEBUG]
    assert device.device.state == before


async def test_the_rate_table_forgets_the_quietest_client(start_device: StartDevice) -> None:
    """The table of clients is bounded: a new client evicts the one heard from longest ago, which then
    starts again with a full budget (a flood of source addresses cannot grow the device's memory)."""
    device: RunningDevice = await start_device(rate=0.001, burst=1, rate_clients=2)
    assert device.server is not None
    url = f"http://127.0.0.1:{device.port}{PATH_INFO}"
    statuses = []
    for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"):
        async with session_from(source) as session, session.get(url) as response:
            statuses.append(response.status)
    assert statuses == [200, 429, 200, 200, 200]
    assert len(device.server.app[LIMITER_KEY]) == 2


async def test_an_unexpected_fault_is_malformed_and_logged_without_values(
    running: RunningDevice, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever goes wrong inside the device, the answer is 400 malformed with a fixed detail, and the log
    names the exception's type and place, never its message (which may hold the attacker's values)."""

    def fault(self: ReferenceDevice, body: bytes) -> bytes:
        raise ValueError(SECRET)

    monkeypatch.setattr(ReferenceDevice, "answer_hello", fault)
    await running.restart()
    caplog.set_level(logging.DEBUG)
    status, code = await refusal(running.port, PATH_HELLO, b"\xa0")
    assert (status, code) == (400, "malformed")
    assert SECRET not in caplog.text
    assert "unexpected ValueError" in caplog.text


class _Peer(asyncio.Transport):
    """A connection as the gate sees it: a peer address, and whether the gate aborted it."""

    def __init__(self, address: str) -> None:
        super().__init__({"peername": (address, 40000, 0, 0) if ":" in address else (address, 40000)})
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


async def test_the_gate_refuses_only_when_every_connection_is_in_a_request() -> None:
    """Connections answering a request are never evicted: with all of them busy a newcomer is refused,
    and once one has been answered, the next newcomer evicts that one (and only that one)."""
    gate = ConnectionGate(ServingLimits(max_connections=2))
    first, second, late, later = (_Peer(f"127.0.0.{n}") for n in (1, 2, 3, 4))
    assert gate.admit(first)
    assert gate.admit(second)
    gate.request_started(first)
    gate.request_started(second)

    assert not gate.admit(late)
    assert (first.aborted, second.aborted, len(gate)) == (False, False, 2)

    gate.request_finished(second)
    assert gate.admit(later)
    assert (first.aborted, second.aborted, len(gate)) == (False, True, 2)
    gate.release(second)  # its connection_lost, after the eviction: nothing more happens
    assert len(gate) == 2
    gate.abort_all()


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64%eth0"),
        ("", ""),
    ],
)
def test_one_client_is_an_ipv4_address_or_an_ipv6_64(address: str, key: str) -> None:
    """The connection share's key: IPv4 per address (also IPv4-mapped), IPv6 per /64 and link."""
    assert client_key(address) == key


async def test_one_ipv6_host_gets_one_share_for_its_whole_64() -> None:
    """Addresses of one /64 share one client's connections: beyond the share, a newcomer from the /64
    evicts the /64's longest-waiting connection, never another client's; another /64 has its own share."""
    gate = ConnectionGate(ServingLimits(max_connections=4, max_connections_per_client=2))
    other = _Peer("2001:db8:0:2::1")
    same = [_Peer(f"2001:db8:0:1::{n}") for n in (1, 2, 3)]
    assert gate.admit(other)
    for peer in same:
        assert gate.admit(peer)
    assert [peer.aborted for peer in (other, *same)] == [False, True, False, False]
    assert len(gate) == 3
    gate.abort_all()

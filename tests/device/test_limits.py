"""The device's budgets over real HTTP (docs/protocol.md §9): body limits, deadlines, connection caps,
per-client rate limits, and the last-resort answer to a fault. The attacks themselves, one per finding,
are in tests/security/test_device_attacks.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import logging
from typing import Any

import pytest

from autoadd_device.device import ReferenceDevice
from autoadd_device.limits import ServingLimits
from autoadd_device.server import GATE_KEY, LIMITER_KEY
from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE, MAX_MESSAGE_SIZE
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import PATH_HELLO, PATH_INFO, PATH_LINKS, PATH_NOTE

from .conftest import RunningDevice
from .raw_http import RawConnection, answered, chunk, refusal, request_head, session_from

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


async def test_connections_beyond_the_caps_are_closed_at_once(
    start_device: StartDevice, home: PrivateKey
) -> None:
    """One client gets at most its share of connections; another client still gets in; the total is capped."""
    device: RunningDevice = await start_device(
        header_timeout=60, idle_timeout=60, max_connections=3, max_connections_per_client=2
    )
    held: list[RawConnection] = []
    try:
        for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):  # each proves it was admitted with an answer
            connection = await RawConnection.open(device.port, source)
            held.append(connection)
            await connection.send(request_head("GET", PATH_INFO))
            assert (await connection.answer()).status == 200
        for source in ("127.0.0.1", "127.0.0.3"):  # over the first client's share; over the total
            refused = await RawConnection.open(device.port, source)
            held.append(refused)
            await refused.send(request_head("GET", PATH_INFO))
            assert await refused.until_closed() == b""
        await held[0].close()
        await held[2].send(request_head("GET", PATH_INFO))  # barrier: the device has seen the close
        assert (await held[2].answer()).status == 200
        assert device.server is not None
        assert len(device.server.app[GATE_KEY]) == 2
        async with session_from("127.0.0.3") as other:
            device.session = other
            await device.onboard(home)  # a slot came free
        assert device.device is not None
        assert device.device.claimed
    finally:
        for connection in held:
            await connection.close()


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

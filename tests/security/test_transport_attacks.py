"""What answers at a device's address can't steer Home Assistant's HTTP client (docs/protocol.md §10, "The
registrar's HTTP client").

Each attack is an answer to the registrar's requests, after an announcement handed to discovery: a redirect
(blind SSRF: the hello, or a GET, sent wherever the answer points), a body split across TCP segments or
over its limit, a connection kept for later, an address that drops connections. Each must end with the
documented outcome and change nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
import socket
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO, error_body
from tests.reference_device import RunningDevice

from .conftest import Impostor, announce, onboarding_state, registered, registrar_of, settle

DEVICE_ID = "ab" * 32


def refusal_code(entry: MockConfigEntry, device_id: str = DEVICE_ID) -> str | None:
    """The code of the refusal the registrar recorded for a device (None: none)."""
    record = registrar_of(entry).state.devices.get(device_id)
    return record.refusal.code if record is not None and record.refusal is not None else None


def nothing_learnt(hass: HomeAssistant, entry: MockConfigEntry, device_id: str = DEVICE_ID) -> None:
    """Only a refusal is recorded: no chain, no address, not a member, not in the device registry."""
    record = registrar_of(entry).state.devices[device_id]
    assert (record.chain, record.address, record.is_member) == ([], None, False)
    assert registered(hass, device_id) is None
    assert list(registrar_of(entry).state.devices) == [device_id]


@pytest.fixture
async def serve(socket_enabled: None) -> AsyncIterator[Callable[[web.Application], Awaitable[int]]]:
    """Serve an aiohttp application on 127.0.0.1; returns its port."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> int:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


# --- redirects ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_refused_not_followed(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    impostor: Callable[..., Awaitable[Impostor]],
    serve: Callable[[web.Application], Awaitable[int]],
    status: int,
) -> None:
    """A device answering the hello with a redirect (to Home Assistant's own API, say) is refused with
    `redirect`: nothing is sent where it points, and nothing but the refusal is recorded."""
    target = await impostor(b"")

    async def hello(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": f"http://127.0.0.1:{target.port}/api/"})

    app = web.Application()
    app.router.add_post(PATH_HELLO, hello)
    announce(loaded, DEVICE_ID, await serve(app), claimed=False)
    await settle(hass)

    assert target.requests == []
    assert refusal_code(loaded) == "redirect"
    nothing_learnt(hass, loaded)


# --- bodies ----------------------------------------------------------------------------------------------


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (as aiohttp sends and answers them)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head + await reader.readexactly(length)


@dataclass
class Relay:
    """A relay in front of a device that counts the requests each connection carried. With `hold` set,
    it sends the hello's answer in two segments: the head and half the body, then (once `hold` is set)
    the rest; `first_part_sent` is set once the first segment was flushed."""

    port: int = 0
    per_connection: list[int] = field(default_factory=list)
    open_connections: int = 0
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)
    first_part_sent: asyncio.Event = field(default_factory=asyncio.Event)
    hold: asyncio.Event | None = None


@pytest.fixture
async def relay(socket_enabled: None) -> AsyncIterator[Callable[..., Awaitable[Relay]]]:
    """Start a relay to a device's port: `await relay(device.port, hold=event)`."""
    servers: list[asyncio.Server] = []

    async def start(device_port: int, *, hold: asyncio.Event | None = None) -> Relay:
        state = Relay(hold=hold)

        async def forward(request: bytes, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", device_port)
            up_writer.write(request)
            answer = await read_message(up_reader)
            up_writer.close()
            if state.hold is None or not request.startswith(f"POST {PATH_HELLO} ".encode()):
                writer.write(answer)
                await writer.drain()
                return
            head, body = answer.split(b"\r\n\r\n", 1)
            writer.write(head + b"\r\n\r\n" + body[: len(body) // 2])
            await writer.drain()
            state.first_part_sent.set()
            await state.hold.wait()
            writer.write(body[len(body) // 2 :])
            await writer.drain()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            index = len(state.per_connection)
            state.per_connection.append(0)
            state.open_connections += 1
            try:
                while True:  # until the client closes: the relay never closes a connection itself
                    request = await read_message(reader)
                    state.per_connection[index] += 1
                    await forward(request, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
                state.open_connections -= 1
                if state.open_connections == 0:
                    state.all_closed.set()

        server = await asyncio.start_server(connection, "127.0.0.1", 0)
        servers.append(server)
        state.port = int(server.sockets[0].getsockname()[1])
        return state

    yield start
    for server in servers:
        server.close()


async def test_a_proof_bundle_split_across_segments_is_read_whole(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[..., Awaitable[Relay]],
) -> None:
    """A genuine proof bundle whose second half arrives in a later TCP segment is read whole (0.2.0 read
    only what had arrived and refused the device as `malformed`)."""
    device: RunningDevice = await devices([home])
    hold = asyncio.Event()
    front = await relay(device.port, hold=hold)
    device_id = device.spec.device_id.hex()

    announce(loaded, device_id, front.port, claimed=False)
    await asyncio.wait_for(front.first_part_sent.wait(), 30)
    await hass.async_block_till_done()  # the client reads what has arrived
    hold.set()
    await settle(hass)

    assert refusal_code(loaded, device_id) is None
    assert onboarding_state(hass, device_id) == "onboarded"


@dataclass
class RawDevice:
    """A device that answers any request with a fixed head and body, sent in parts: the first at once,
    the others once `hold` is set (`first_part_sent` is set when the first was flushed)."""

    port: int = 0
    first_part_sent: asyncio.Event = field(default_factory=asyncio.Event)
    hold: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def raw_device(
    socket_enabled: None,
) -> AsyncIterator[Callable[[str, list[bytes]], Awaitable[RawDevice]]]:
    """Start a raw device: `await raw_device(head, [part, ...])`. It keeps each connection open until the
    client closes it."""
    servers: list[asyncio.Server] = []

    async def start(head: str, parts: list[bytes]) -> RawDevice:
        state = RawDevice()

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await read_message(reader)
                writer.write(head.encode() + b"\r\n\r\n" + parts[0])
                await writer.drain()
                state.first_part_sent.set()
                for part in parts[1:]:
                    await state.hold.wait()
                    writer.write(part)
                    await writer.drain()
                await reader.read()  # the client's EOF
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        state.port = int(server.sockets[0].getsockname()[1])
        return state

    yield start
    for server in servers:
        server.close()


OVER = MAX_BUNDLE_SIZE + 1


@pytest.mark.parametrize(
    ("head", "parts"),
    [
        # announced over the limit (and never sent): refused before a byte of it is read
        (f"HTTP/1.1 200 OK\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {10 * OVER}", [b"\xa0" * 64]),
        # no length announced: read until the limit is passed, over segments
        (
            f"HTTP/1.1 200 OK\r\nContent-Type: {MEDIA_TYPE}\r\nConnection: close",
            [b"\xa0" * 64, b"\xa0" * OVER],
        ),
        # an error body over its own limit (1 024)
        (
            f"HTTP/1.1 403 Forbidden\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: 2048",
            [(error_body("not_owner", "x") + b"\x00" * 2048)[:2048]],
        ),
    ],
    ids=["announced", "streamed", "error_body"],
)
async def test_an_answer_over_its_limit_is_too_large(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    raw_device: Callable[[str, list[bytes]], Awaitable[RawDevice]],
    head: str,
    parts: list[bytes],
) -> None:
    """An answer over its endpoint's limit (§9 rule 9) is refused as `too_large`, however it arrives."""
    device = await raw_device(head, parts)
    announce(loaded, DEVICE_ID, device.port, claimed=False)
    await asyncio.wait_for(device.first_part_sent.wait(), 30)
    await hass.async_block_till_done()  # the client reads what has arrived
    device.hold.set()
    await settle(hass)

    assert refusal_code(loaded) == "too_large"
    nothing_learnt(hass, loaded)


# --- connections ----------------------------------------------------------------------------------------


async def test_every_request_has_its_own_connection_closed_after_the_answer(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[..., Awaitable[Relay]],
) -> None:
    """Onboarding takes a hello and a note, each on a connection of its own that is closed after the answer:
    nothing is left in Home Assistant's shared pool (0.2.0 kept a keep-alive connection per device)."""
    device: RunningDevice = await devices([home])
    front = await relay(device.port)
    device_id = device.spec.device_id.hex()

    announce(loaded, device_id, front.port, claimed=False)
    await settle(hass)

    assert onboarding_state(hass, device_id) == "onboarded"
    assert front.per_connection == [1, 1]
    await asyncio.wait_for(front.all_closed.wait(), 30)


@pytest.fixture
def blackhole(socket_enabled: None) -> Iterator[int]:
    """A port on 127.0.0.1 that drops connection attempts: its accept queue is full and never drained."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    yield port
    for sock in (*fillers, listener):
        sock.close()


async def test_an_address_that_drops_connections_is_given_up_on_at_the_connect_timeout(
    hass: HomeAssistant, loaded: MockConfigEntry, blackhole: int
) -> None:
    """Connecting has its own, short timeout: an announced address that drops packets holds an attempt
    (one of the few that run at once) for that long, not for the read timeout. It is no answer: retried."""
    registrar = registrar_of(loaded)
    with (
        patch("custom_components.autoadd.runtime.CONNECT_TIMEOUT", 0.2),
        patch("custom_components.autoadd.runtime.REQUEST_TIMEOUT", 120.0),
    ):
        announce(loaded, DEVICE_ID, blackhole, claimed=False)
        await asyncio.wait_for(settle(hass), 60)

    assert registrar.failures[DEVICE_ID] == 1
    assert DEVICE_ID in registrar.retries
    assert DEVICE_ID not in registrar.state.devices

"""A hostile host on the home network against the reference device's HTTP server (docs/protocol.md §9).

Each attack is one the device once lost to: a flood that locked the genuine registrar out, half-sent
requests held open for ever, a few hosts holding every connection slot, a body limit other than §9's, a
body split across TCP segments refused as malformed, an integer CPython cannot format turned into a 500,
and refusals in plain text. Each must end with the documented status and CBOR error map, leave the
device's state as it was, and leave the genuine registrar (another address: 127.0.0.2) able to onboard it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from autoadd_device.device import DeviceState
from autoadd_device.files import STATE
from autoadd_device.limits import MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, ServingLimits
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.handshake import RegistrarHandshake, new_nonce
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, public_key_to_bytes
from custom_components.autoadd.protocol.transport import PATH_HELLO, PATH_INFO, PATH_LINKS
from tests.device.raw_http import RawConnection, answered, refusal, request_head, session_from
from tests.factory import NOW, NOW_TS
from tests.reference_device import RunningDevice

REGISTRAR_ADDRESS = "127.0.0.2"

type Snapshot = tuple[DeviceState, bytes | None]


def snapshot(device: RunningDevice) -> Snapshot:
    """What the device holds: chain, imprint and configuration, and the state file's bytes."""
    assert device.device is not None
    path = device.folder / STATE
    return device.device.state, path.read_bytes() if path.exists() else None


async def onboard_from_the_registrar(device: RunningDevice, home: PrivateKey) -> None:
    """The genuine registrar, on its own address, onboards the device."""
    flooder_session = device.session
    async with session_from(REGISTRAR_ADDRESS) as session:
        device.session = session
        try:
            await device.onboard(home)
        finally:
            device.session = flooder_session
    assert device.device is not None
    assert device.device.claimed


@pytest.fixture
async def connections() -> AsyncIterator[list[RawConnection]]:
    """Raw connections the test opens; all closed at the end."""
    opened: list[RawConnection] = []
    yield opened
    for connection in opened:
        await connection.close()


async def test_a_flooder_spends_only_its_own_rate_budget(
    devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Finding 1: the rate limit is per client. A flooder that has spent its burst gets 429 rate_limited,
    while the registrar on another address onboards the device as if nobody were flooding."""
    device: RunningDevice = await devices([home])
    device.rate, device.burst = 0.001, 4
    await device.restart()
    url = f"http://127.0.0.1:{device.port}{PATH_INFO}"
    statuses = []
    for _ in range(5):
        async with device.session.get(url) as response:
            statuses.append(response.status)
    assert statuses == [200, 200, 200, 200, 429]

    await onboard_from_the_registrar(device, home)

    async with device.session.get(url, headers={"X-Forwarded-For": REGISTRAR_ADDRESS}) as response:
        assert response.status == 429  # the client is the connection's address, never a header's


async def test_half_sent_requests_are_closed_at_the_header_deadline(
    devices: Callable[..., Any], home: PrivateKey, connections: list[RawConnection]
) -> None:
    """Finding 2: twenty connections that never finish their request head hold at most one client's share
    of the device's connections, and each is closed once the header timeout has passed; the registrar
    onboards the device meanwhile."""
    device: RunningDevice = await devices([home])
    device.limits = ServingLimits(header_timeout=1.0)
    await device.restart()
    for _ in range(20):
        connection = await RawConnection.open(device.port)
        connections.append(connection)
        await connection.send(b"POST /autoadd/v1/hello HTTP/1.1\r\nHost: device\r\nContent-Le")

    await onboard_from_the_registrar(device, home)

    for connection in connections:
        assert await connection.until_closed() == b""


@pytest.mark.parametrize("waiting", ["idle after a response", "sending its next head"])
async def test_hosts_holding_every_connection_slot_do_not_lock_the_registrar_out(
    devices: Callable[..., Any], home: PrivateKey, connections: list[RawConnection], waiting: str
) -> None:
    """Finding 7: four hosts each open their share of connections, together the whole table, and keep them
    waiting (idle after an answer, or trickling their next head) until a deadline closes them, then come
    back. The registrar's connections evict the ones that have waited longest instead of being refused:
    it onboards the device meanwhile, and the first flooder connection is the one that went."""
    device: RunningDevice = await devices([home])
    flooders = [f"127.0.0.{n}" for n in range(3, 3 + MAX_CONNECTIONS // MAX_CONNECTIONS_PER_CLIENT)]
    for source in flooders:
        for _ in range(MAX_CONNECTIONS_PER_CLIENT):
            connection = await RawConnection.open(device.port, source)
            connections.append(connection)
            await connection.send(request_head("GET", PATH_INFO))
            assert (await connection.answer()).status == 200  # admitted: the table fills up
            if waiting == "sending its next head":
                await connection.send(b"GET /autoadd/v1/info HTTP/1.1\r\nHost: dev")
    assert len(connections) == MAX_CONNECTIONS

    await onboard_from_the_registrar(device, home)

    assert await connections[0].until_closed() == b""


async def test_links_take_the_chain_array_form_limit(devices: Callable[..., Any], home: PrivateKey) -> None:
    """Finding 3: /links takes a body of up to 132 096 bytes (§4.3 "chain array form"), not 131 072: a
    131 506-byte body is read and refused for what it is (not an array of links); one byte over is 413."""
    device: RunningDevice = await devices([home])
    before = snapshot(device)
    not_links = dumps(["x" * 131_500])
    assert 131_072 < len(not_links) <= 132_096

    assert await refusal(device.port, PATH_LINKS, not_links) == (400, "malformed")
    assert await refusal(device.port, PATH_LINKS, b"\x00" * 132_097) == (413, "too_large")
    assert snapshot(device) == before


async def test_a_hello_split_across_segments_is_read_whole(
    devices: Callable[..., Any], home: PrivateKey, connections: list[RawConnection]
) -> None:
    """Finding 4: a genuine hello whose body arrives in two TCP segments is answered with a proof: the device
    reads a body to its end, not only what has arrived when it starts reading."""
    device: RunningDevice = await devices([home])
    session = RegistrarHandshake(home, issued_at=NOW_TS)
    hello = session.hello
    connection = await RawConnection.open(device.port)
    connections.append(connection)
    await connection.send(request_head("POST", PATH_HELLO, length=len(hello)) + hello[:100])
    await answered(device.port)  # the device has read the first segment

    await connection.send(hello[100:])
    answer = await connection.answer()

    assert answer.status == 200
    proven = session.read_proof(answer.body, roots=[device.maker.root], now=NOW)
    assert proven.device_id == device.spec.device_id


@pytest.mark.parametrize("where", ["the version", "an extra key"])
async def test_a_huge_integer_in_a_hello_is_refused_not_a_500(
    devices: Callable[..., Any], home: PrivateKey, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 5: a validly signed hello holding a 5000-digit integer (CPython refuses to format it) is a 400
    with the CBOR error map, never a 500, and its digits reach no log line; the device is unchanged."""
    device: RunningDevice = await devices([home])
    before = snapshot(device)
    huge = 10**5000 + 7
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.REGISTRAR_NONCE: new_nonce(),
        Label.REGISTRAR_KEY: public_key_to_bytes(home.public_key()),
        Label.ISSUED_AT: NOW_TS,
    }
    payload[Label.VERSION if where == "the version" else 99] = huge
    hello = cose.sign(payload, ContentType.HELLO, home, kid=fingerprint(home.public_key()))

    status, code = await refusal(device.port, PATH_HELLO, hello)

    assert status == 400
    assert code in {"malformed", "unsupported_version"}
    assert "0000000000007" not in caplog.text
    assert snapshot(device) == before


async def test_every_refusal_carries_the_cbor_error_map(
    devices: Callable[..., Any], home: PrivateKey, connections: list[RawConnection]
) -> None:
    """Finding 6: an unknown path, a wrong method, a request that is not HTTP/1.1 and an expectation the
    device does not meet are each refused with the CBOR error map and their own code, never plain text."""
    device: RunningDevice = await devices([home])
    before = snapshot(device)
    requests = {
        "unknown path": (request_head("GET", "/autoadd/v1/nothing"), (404, "not_found")),
        "GET on hello": (request_head("GET", PATH_HELLO), (405, "method_not_allowed")),
        "POST on info": (request_head("POST", PATH_INFO, length=0), (405, "method_not_allowed")),
        "not HTTP": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", (400, "malformed")),
        "odd Expect": (
            request_head("POST", PATH_HELLO, length=1, extra="Expect: magic\r\n"),
            (400, "malformed"),
        ),
    }
    answers = {}
    for name, (request, _) in requests.items():
        connection = await RawConnection.open(device.port)
        connections.append(connection)
        await connection.send(request)
        answer = await connection.answer()
        answers[name] = (answer.status, answer.error[0])
        if answer.status == 405:
            assert answer.headers["allow"] == ("POST" if name == "GET on hello" else "GET")

    assert answers == {name: expected for name, (_, expected) in requests.items()}
    assert snapshot(device) == before

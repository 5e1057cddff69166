"""The registrar's HTTP client against a reference device: answers, error bodies, unreachable devices."""

from __future__ import annotations

import aiohttp
from aiohttp import web
import pytest

from custom_components.autoadd.device_client import DeviceClient, DeviceUnreachableError
from custom_components.autoadd.protocol.const import Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.errors import MalformedError, UnknownSessionError
from custom_components.autoadd.protocol.transport import PATH_INFO, PeerError, error_body, read_error_body

from .conftest import RunningDevice


async def test_info_reports_the_chain(running: RunningDevice) -> None:
    """GET info gives the device identifier, chain length and head."""
    info = await running.client.info()
    assert info[Label.DEVICE_ID] == running.spec.device_id
    assert info[Label.CHAIN_LENGTH] == 1


async def test_unreachable_device(http: aiohttp.ClientSession, unused_tcp_port: int) -> None:
    """Nobody listening is a transient DeviceUnreachableError, not a verification failure."""
    client = DeviceClient(http, "127.0.0.1", unused_tcp_port, timeout=2)
    with pytest.raises(DeviceUnreachableError):
        await client.info()


async def test_ipv6_address_form(http: aiohttp.ClientSession) -> None:
    """An IPv6 host is written in brackets."""
    client = DeviceClient(http, "::1", 1)
    assert client._base == "http://[::1]:1"


async def test_info_that_is_not_the_documented_map(http: aiohttp.ClientSession) -> None:
    """An info answer without the documented keys is malformed."""

    async def info(request: web.Request) -> web.Response:
        return web.Response(body=b"\xa0", content_type="application/cbor")

    app = web.Application()
    app.router.add_get(PATH_INFO, info)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        client = DeviceClient(http, "127.0.0.1", runner.addresses[0][1])
        with pytest.raises(MalformedError):
            await client.info()
    finally:
        await runner.cleanup()


def test_error_bodies_map_back_to_errors() -> None:
    """A documented code comes back as its class; anything else as a PeerError with the status."""
    assert isinstance(read_error_body(error_body("unknown_session", "gone"), 410), UnknownSessionError)
    unknown = read_error_body(error_body("rate_limited", "slow down"), 429)
    assert isinstance(unknown, PeerError)
    assert (unknown.peer_code, unknown.status) == ("rate_limited", 429)
    assert isinstance(read_error_body(b"\xff", 500), PeerError)
    assert isinstance(read_error_body(b"\x01", 500), PeerError)
    home_key_error = read_error_body(error_body("invalid_home_key_string", "x"), 400)
    assert isinstance(home_key_error, PeerError)


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({1: "bad\nsignature \u202e", 2: "x"}, "unknown", "x"),
        ({1: "a" * 33, 2: "x"}, "unknown", "x"),
        ({1: "not_a_known_code", 2: "y" * 600}, "not_a_known_code", "y" * 256),
        ({1: "teapot", 2: 10**20}, "teapot", "(a detail that is not text)"),
    ],
)
def test_an_error_body_is_kept_only_as_far_as_it_is_shaped_like_one(
    body: dict[int, object], code: str, detail: str
) -> None:
    """A peer's code that is not shaped like a §12 code is "unknown"; its detail is text cut to 256
    characters, or nothing of it: the peer's words never travel further in any other shape."""
    error = read_error_body(dumps(body), 418)
    assert isinstance(error, PeerError)
    assert error.peer_code == code
    assert error.detail.endswith(detail)

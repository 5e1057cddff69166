"""The device's HTTP server: the endpoints of docs/protocol.md ("Transport"), with size and rate limits.

Every request body is read with a hard size limit before anything parses it; every failure is a 4xx with
a CBOR error body, and a failed request changes nothing on the device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import logging
import time

from aiohttp import web

from custom_components.autoadd.protocol.chain import chain_links
from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_CHAIN_SIZE,
    MAX_MESSAGE_SIZE,
    Label,
)
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.transport import (
    HTTP_STATUS,
    MEDIA_TYPE,
    PATH_HELLO,
    PATH_INFO,
    PATH_LINKS,
    PATH_NOTE,
    RATE_LIMITED,
    error_body,
)

from .device import ReferenceDevice

_LOGGER = logging.getLogger(__name__)
DEVICE_KEY: web.AppKey[ReferenceDevice] = web.AppKey("device", ReferenceDevice)


class RateLimiter:
    """A token bucket: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        """Start full."""
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        """Take a token if there is one."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


LIMITER_KEY: web.AppKey[RateLimiter] = web.AppKey("limiter", RateLimiter)


def _error(code: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=HTTP_STATUS.get(code, 400),
        body=error_body(code, detail),
        content_type=MEDIA_TYPE,
        headers=headers,
    )


async def _body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge(limit)
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge(limit)
    return data


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes")


type _Handler = Callable[[ReferenceDevice, bytes], bytes | None]


def _endpoint(limit: int, action: _Handler, step: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        device = request.app[DEVICE_KEY]
        if request.content_type != MEDIA_TYPE:
            device.log(f"{step} refused", f"content type {request.content_type!r}")
            return web.Response(
                status=415,
                body=error_body("malformed", f"the body must be {MEDIA_TYPE}"),
                content_type=MEDIA_TYPE,
            )
        try:
            body = await _body(request, limit)
            answer = action(device, body)
        except _TooLarge as err:
            device.log(f"{step} refused", f"too_large: {err}")
            return _error("too_large", str(err))
        except AutoAddError as err:
            device.log(f"{step} refused", str(err))
            return _error(err.code, err.detail)
        if answer is None:
            return web.Response(status=204)
        return web.Response(body=answer, content_type=MEDIA_TYPE)

    return handle


def _links(device: ReferenceDevice, body: bytes) -> None:
    device.add_links(list(chain_links(loads(body, what="links", max_size=MAX_CHAIN_SIZE))))


async def _info(request: web.Request) -> web.Response:
    device = request.app[DEVICE_KEY]
    info = {
        Label.DEVICE_ID: device.device_id,
        Label.CHAIN_LENGTH: len(device.chain.links),
        Label.CHAIN_HEAD: device.chain.head.digest,
    }
    return web.Response(body=dumps(info), content_type=MEDIA_TYPE)


@web.middleware
async def _rate_limit(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.app[LIMITER_KEY].allow():
        request.app[DEVICE_KEY].log(f"{request.path} refused", RATE_LIMITED)
        return _error(RATE_LIMITED, "too many requests; try again shortly", {"Retry-After": "1"})
    return await handler(request)


def make_app(device: ReferenceDevice, *, rate: float = 10.0, burst: int = 20) -> web.Application:
    """The device's aiohttp application."""
    app = web.Application(client_max_size=MAX_BUNDLE_SIZE + 1024, middlewares=[_rate_limit])
    app[DEVICE_KEY] = device
    app[LIMITER_KEY] = RateLimiter(rate, burst)
    app.router.add_get(PATH_INFO, _info)
    app.router.add_post(PATH_HELLO, _endpoint(MAX_MESSAGE_SIZE, ReferenceDevice.answer_hello, "hello"))
    app.router.add_post(PATH_NOTE, _endpoint(MAX_BUNDLE_SIZE, ReferenceDevice.accept_note, "note"))
    app.router.add_post(PATH_LINKS, _endpoint(MAX_CHAIN_SIZE, _links, "links"))
    return app

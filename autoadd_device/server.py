"""The device's HTTP application: the endpoints of docs/protocol.md §9 ("Transport"), with their limits.

Every request body is read in full, within its size limit and its time limit, before anything parses it;
every refusal is a 4xx with the CBOR error map, and a refused request changes nothing on the device. The
device answers every path and method itself (unknown ones with `not_found` and `method_not_allowed`),
and a last-resort middleware turns anything unexpected into `malformed` with a fixed detail: the device
never answers 500 and never puts the attacker's values into a log line or a detail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import logging
from pathlib import Path
import traceback

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11

from custom_components.autoadd.protocol.certificates import encode_root_offer
from custom_components.autoadd.protocol.chain import chain_links
from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_CHAIN_ARRAY_SIZE,
    MAX_MESSAGE_SIZE,
    Label,
)
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import AutoAddError, ClaimWaitError
from custom_components.autoadd.protocol.transport import (
    HTTP_STATUS,
    MEDIA_TYPE,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PATH_CLAIM_FINISH,
    PATH_CLAIM_START,
    PATH_HELLO,
    PATH_INFO,
    PATH_LINKS,
    PATH_NOTE,
    PATH_ROOT,
    RATE_LIMITED,
    REQUEST_TIMEOUT,
    error_body,
    is_cbor_content_type,
)

from .connections import ConnectionGate
from .device import ReferenceDevice
from .limits import RateLimiter, ServingLimits

_LOGGER = logging.getLogger(__name__)
MALFORMED = "malformed"
TOO_LARGE = "too_large"

DEVICE_KEY: web.AppKey[ReferenceDevice] = web.AppKey("device", ReferenceDevice)
LIMITS_KEY: web.AppKey[ServingLimits] = web.AppKey("limits", ServingLimits)
LIMITER_KEY: web.AppKey[RateLimiter] = web.AppKey("limiter", RateLimiter)
GATE_KEY: web.AppKey[ConnectionGate] = web.AppKey("gate", ConnectionGate)

#: The body limit of each endpoint (§9's table); /info takes no body.
BODY_LIMITS: dict[str, int] = {
    PATH_HELLO: MAX_MESSAGE_SIZE,
    PATH_NOTE: MAX_BUNDLE_SIZE,
    PATH_LINKS: MAX_CHAIN_ARRAY_SIZE,
    PATH_CLAIM_START: MAX_MESSAGE_SIZE,
    PATH_CLAIM_FINISH: MAX_MESSAGE_SIZE,
}
#: The status aiohttp's own refusals have, and the code the device answers them with.
_HTTP_CODES = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: TOO_LARGE, 415: MALFORMED}

type _Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(
    code: str, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A 4xx with the CBOR error map {1: code, 2: detail}; the status is the code's unless given."""
    return web.Response(
        status=status or HTTP_STATUS.get(code, 400),
        body=error_body(code, detail),
        content_type=MEDIA_TYPE,
        headers=headers,
    )


class _TooLarge(Exception):
    """The body is over the endpoint's limit."""


async def _read_body(request: web.Request, limit: int, seconds: float) -> bytes:
    """The whole body, up to its end, or _TooLarge as soon as it is over `limit`.

    A body arrives in pieces (TCP segments, chunks): one read returns only what is there so far, so the
    body is read until its end. Content-Length, when given, refuses an oversized body before any of it
    is read; a chunked body is refused once `limit` + 1 bytes are in. TimeoutError if it takes longer
    than `seconds`.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    body = bytearray()
    async with asyncio.timeout(seconds):
        while chunk := await request.content.read(limit + 1 - len(body)):
            body += chunk
            if len(body) > limit:
                raise _TooLarge
    return bytes(body)


type _Action = Callable[[ReferenceDevice, bytes], bytes | None]


def _endpoint(action: _Action, step: str, limit: int) -> _Handler:
    """A POST endpoint. Its checks run in §9 rule 2's order, so that every implementation gives one
    request the same answer: the router has matched method and path (404/405); then Content-Type (415),
    then the size (413), and only then the body rules."""

    async def handle(request: web.Request) -> web.StreamResponse:
        device = request.app[DEVICE_KEY]
        if not is_cbor_content_type(request.headers.getall(hdrs.CONTENT_TYPE, [])):
            device.log(f"{step} refused", f"the request does not have the one Content-Type {MEDIA_TYPE}")
            return error_response(MALFORMED, f"the body must be {MEDIA_TYPE}", status=415)
        try:
            body = await _read_body(request, limit, request.app[LIMITS_KEY].body_timeout)
            request.app[GATE_KEY].request_started(request.transport)  # evictable until its body is in
        except _TooLarge:
            device.log(f"{step} refused", f"too_large: the body is over {limit} bytes")
            return error_response(TOO_LARGE, f"the request body is over {limit} bytes")
        except TimeoutError:
            device.log(f"{step} refused", "request_timeout: the body did not arrive in time")
            response = error_response(REQUEST_TIMEOUT, "the request body did not arrive in time")
            response.force_close()
            return response
        try:
            answer = action(device, body)
        except AutoAddError as err:
            device.log(f"{step} refused", str(err))
            wait = {"Retry-After": str(err.retry_after)} if isinstance(err, ClaimWaitError) else None
            return error_response(err.code, err.detail, headers=wait)
        if answer is None:
            return web.Response(status=204)
        return web.Response(body=answer, content_type=MEDIA_TYPE)

    return handle


def _links(device: ReferenceDevice, body: bytes) -> None:
    device.add_links(list(chain_links(loads(body, what="links", max_size=MAX_CHAIN_ARRAY_SIZE))))


async def _info(request: web.Request) -> web.StreamResponse:
    device = request.app[DEVICE_KEY]
    info = {
        Label.DEVICE_ID: device.device_id,
        Label.CHAIN_LENGTH: len(device.chain.links),
        Label.CHAIN_HEAD: device.chain.head.digest,
    }
    return web.Response(body=dumps(info), content_type=MEDIA_TYPE)


async def _root(request: web.Request) -> web.StreamResponse:
    root = request.app[DEVICE_KEY].identity.root
    if root is None:
        return error_response(NOT_FOUND, "the device offers no manufacturer root")
    return web.Response(body=encode_root_offer(root), content_type=MEDIA_TYPE)


async def _not_found(request: web.Request) -> web.StreamResponse:
    return error_response(NOT_FOUND, "the device has no endpoint at this path")


def _wrong_method(allowed: str) -> _Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return error_response(
            METHOD_NOT_ALLOWED, f"this endpoint only takes {allowed}", headers={hdrs.ALLOW: allowed}
        )

    return handle


async def _expect(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` is answered at once; any other expectation is refused, and the connection
    closed (the request never reaches the middlewares, so it must not stay open on their deadlines)."""
    if request.version >= HttpVersion11 and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper is still to come
        return None
    response = error_response(MALFORMED, "the device meets no expectation but 100-continue")
    response.force_close()
    return response


def _where(err: BaseException) -> str:
    """Where an exception was raised, as file:line function (never its message: it may hold the
    attacker's values, and CPython cannot even format a 5000-digit integer)."""
    frames = traceback.extract_tb(err.__traceback__)[-3:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


@web.middleware
async def _connection_deadlines(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Tell the connection gate a request is being answered, and when it has been."""
    gate = request.app[GATE_KEY]
    gate.head_received(request.transport)
    if not request.body_exists:
        gate.request_started(request.transport)  # nothing more to come: it is being answered
    try:
        return await handler(request)
    finally:
        gate.request_finished(request.transport)


@web.middleware
async def _last_resort(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """aiohttp's own refusals get the CBOR error map; an unexpected exception is `malformed`, logged by
    type and place only. A request with two Content-Type fields is not HTTP one can read (the field is a
    singleton, RFC 9110 §8.3): `400` here, as newer aiohttp's parser answers itself (§9 rule 2, check 1)."""
    if len(request.headers.getall(hdrs.CONTENT_TYPE, [])) > 1:
        response = error_response(MALFORMED, "the request has more than one Content-Type field")
        response.force_close()
        return response
    try:
        return await handler(request)
    except web.HTTPException as err:
        status = err.status if 400 <= err.status < 500 else 400
        allow = err.headers.get(hdrs.ALLOW)
        headers = {str(hdrs.ALLOW): allow} if allow is not None else None
        detail = "the device does not take this request"
        return error_response(_HTTP_CODES.get(status, MALFORMED), detail, status=status, headers=headers)
    except ConnectionError:
        raise  # the client went away: aiohttp drops the connection
    except Exception as err:  # the device's safety net: nothing may become a 500
        _LOGGER.error(
            "%s: unexpected %s while answering a request, at %s; answered malformed",
            request.app[DEVICE_KEY].name,
            type(err).__name__,
            _where(err),
        )
        return error_response(MALFORMED, "the device could not process this request")


@web.middleware
async def _rate_limit(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Each client (remote address) has its own budget: a flooder spends only its own."""
    if not request.app[LIMITER_KEY].allow(request.remote or ""):
        request.app[DEVICE_KEY].log("request refused", RATE_LIMITED)
        return error_response(
            RATE_LIMITED, "too many requests; try again shortly", headers={"Retry-After": "1"}
        )
    return await handler(request)


def make_app(device: ReferenceDevice, *, limits: ServingLimits | None = None) -> web.Application:
    """The device's aiohttp application; serve it with serving.DeviceServer, which applies the
    connection limits (header and idle timeouts, connection caps) that aiohttp does not have."""
    limits = limits or ServingLimits()
    app = web.Application(
        client_max_size=MAX_BUNDLE_SIZE, middlewares=[_connection_deadlines, _last_resort, _rate_limit]
    )
    app[DEVICE_KEY] = device
    app[LIMITS_KEY] = limits
    app[LIMITER_KEY] = RateLimiter(limits.rate, limits.burst, clients=limits.rate_clients)
    app[GATE_KEY] = ConnectionGate(limits)
    hello = _endpoint(ReferenceDevice.answer_hello, "hello", BODY_LIMITS[PATH_HELLO])
    note = _endpoint(ReferenceDevice.accept_note, "note", BODY_LIMITS[PATH_NOTE])
    links = _endpoint(_links, "links", BODY_LIMITS[PATH_LINKS])
    routes: list[tuple[str, str, _Handler]] = [
        (hdrs.METH_GET, PATH_INFO, _info),
        (hdrs.METH_GET, PATH_ROOT, _root),
        (hdrs.METH_POST, PATH_HELLO, hello),
        (hdrs.METH_POST, PATH_NOTE, note),
        (hdrs.METH_POST, PATH_LINKS, links),
    ]
    if device.claims is not None:  # only unassigned stock has the claim endpoints (§14.9)
        routes += [
            (
                hdrs.METH_POST,
                PATH_CLAIM_START,
                _endpoint(ReferenceDevice.claim_start, "claim start", MAX_MESSAGE_SIZE),
            ),
            (
                hdrs.METH_POST,
                PATH_CLAIM_FINISH,
                _endpoint(ReferenceDevice.claim_finish, "claim finish", MAX_MESSAGE_SIZE),
            ),
        ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler, expect_handler=_expect)
        app.router.add_route(hdrs.METH_ANY, path, _wrong_method(method), expect_handler=_expect)
    app.router.add_route(hdrs.METH_ANY, "/{path:.*}", _not_found, expect_handler=_expect)
    return app

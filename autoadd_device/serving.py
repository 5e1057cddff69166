"""Serving the device's application: aiohttp's HTTP/1.1 protocol behind the connection gate.

`DeviceServer` replaces aiohttp's TCPSite: it creates the listening sockets itself, so that every
connection passes the gate (connections.py) before aiohttp sees a byte of it, and so that what aiohttp
refuses on its own (a request that is not valid HTTP/1.1) is answered with the CBOR error map too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import logging
from typing import Any

from aiohttp import web

from .server import GATE_KEY, LIMITS_KEY, MALFORMED, error_response

_LOGGER = logging.getLogger(__name__)


class DeviceRequestHandler(web.RequestHandler):
    """aiohttp's connection protocol, answering the requests it cannot parse with the CBOR error map.

    aiohttp calls `handle_error` for a request it cannot parse (and for an exception that escaped the
    application, which the last-resort middleware prevents). Its own answer is plain text and its log
    line holds the offending bytes; this one is `malformed`, logged by exception type only, and the
    connection is closed after it, as aiohttp's is. A connection lost during a request (the client went
    away, or the gate evicted it) is logged at debug level: any client can cause it at will, so an error
    line for it would let a flooder fill the log.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The CBOR answer to a request the application never saw."""
        level = logging.ERROR if status >= 500 and not isinstance(exc, ConnectionError) else logging.DEBUG
        _LOGGER.log(level, "request refused by the HTTP layer: %s", type(exc).__name__ if exc else status)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already partly sent")
        response = error_response(MALFORMED, "the device could not read this request as HTTP/1.1")
        response.force_close()
        return response


class DeviceServer:
    """One device's HTTP server, on one or more addresses sharing one port."""

    def __init__(self, app: web.Application) -> None:
        """Nothing listens until `start`."""
        self.app = app
        limits = app[LIMITS_KEY]
        # A request still being answered at shutdown needs at most its body timeout.
        self.runner = web.AppRunner(app, shutdown_timeout=limits.body_timeout)
        self._servers: list[asyncio.Server] = []
        self.port = 0

    async def start(self, addresses: Sequence[str], port: int = 0) -> int:
        """Listen on each address; with port 0 the first gets a free port and the others the same one."""
        await self.runner.setup()
        manager = self.runner.server
        assert manager is not None
        limits, gate = self.app[LIMITS_KEY], self.app[GATE_KEY]
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {
            "keepalive_timeout": limits.idle_timeout,
            # What is left of a refused body is read and dropped for at most this long, then the
            # connection is closed.
            "lingering_time": limits.body_timeout,
            "access_log": None,
        }

        def protocol() -> asyncio.Protocol:
            return DeviceRequestHandler(manager, loop=loop, **options)

        factory = gate.protocol_factory(protocol)
        try:
            for address in addresses:
                server = await loop.create_server(factory, address, port)
                self._servers.append(server)
                port = port or int(server.sockets[0].getsockname()[1])
        except BaseException:
            await self.stop()
            raise
        self.port = port
        return port

    async def stop(self) -> None:
        """Stop listening, let requests in progress finish, then close every connection."""
        for server in self._servers:
            server.close()
        if self.runner.server is not None:
            await self.runner.cleanup()
        gate = self.app[GATE_KEY]
        gate.abort_all()
        # A connection's request loop may still be draining a refused body (lingering) after its abort:
        # end it, so that a stopped device leaves no task behind (newer aiohttp does not end them all).
        tasks = list(gate.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

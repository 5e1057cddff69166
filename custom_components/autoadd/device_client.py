"""HTTP client for an AutoAdd device, on a session the caller owns (Home Assistant's shared one).

Moves the protocol's bytes and maps the device's error bodies back to the protocol's errors; all checks
are the protocol core's. No Home Assistant import, so tests and tools use it as it is.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from .protocol.const import MAX_BUNDLE_SIZE, Label
from .protocol.encoding import dumps, loads
from .protocol.errors import MalformedError
from .protocol.transport import MEDIA_TYPE, PATH_HELLO, PATH_INFO, PATH_LINKS, PATH_NOTE, read_error_body
from .registrar.ports import DeviceUnreachableError

DEFAULT_TIMEOUT = 10.0
#: Failures that a request sent on a pooled connection the device already closed ends with.
_STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)

__all__ = ["DeviceClient", "DeviceUnreachableError"]


class DeviceClient:
    """One device at one address."""

    def __init__(
        self, session: aiohttp.ClientSession, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Talk to http://host:port with a per-request timeout in seconds."""
        self._session = session
        self._base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """One request; one that failed on a reused connection is sent once more on a fresh one (§12)."""
        try:
            return await self._send(method, path, body)
        except DeviceUnreachableError as err:
            if not isinstance(err.__cause__, _STALE):
                raise
        return await self._send(method, path, body)

    async def _send(self, method: str, path: str, body: bytes | None) -> bytes:
        try:
            async with self._session.request(
                method,
                self._base + path,
                data=body,
                headers={"Content-Type": MEDIA_TYPE} if body is not None else None,
                timeout=self._timeout,
            ) as response:
                data = await response.content.read(MAX_BUNDLE_SIZE + 1)
                if response.status >= 400:
                    raise read_error_body(data, response.status)
                return data
        except TimeoutError as err:
            raise DeviceUnreachableError(f"{self._base} did not answer in time") from err
        except aiohttp.ClientError as err:
            raise DeviceUnreachableError(f"{self._base}: {err}") from err

    async def info(self) -> dict[int, Any]:
        """The device's identifier, chain length and chain head."""
        value = loads(await self._request("GET", PATH_INFO), what="info", max_size=1024)
        if not isinstance(value, dict) or not {Label.DEVICE_ID, Label.CHAIN_LENGTH, Label.CHAIN_HEAD} <= set(
            value
        ):
            raise MalformedError("the info answer is not the documented map")
        return value

    async def hello(self, hello: bytes) -> bytes:
        """Send a hello; returns the proof bundle (still to be verified)."""
        return await self._request("POST", PATH_HELLO, hello)

    async def note(self, note: bytes) -> bytes:
        """Send an acceptance note; returns the receipt (still to be verified)."""
        return await self._request("POST", PATH_NOTE, note)

    async def links(self, links: list[bytes]) -> None:
        """Push links that extend the device's chain."""
        await self._request("POST", PATH_LINKS, dumps(links))

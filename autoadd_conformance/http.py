"""Talking to the device under test: one aiohttp request per check, with the device's rate limit respected.

Each request goes on its own connection (as the reference registrar sends them), bodies are read to their
end within a bound, and a `429` is waited out (its `Retry-After`, capped) and the request sent again, so a
fast runner is not mistaken for a broken device. A request that gets no HTTP answer at all is an `Answer`
with status 0, which every check reports as a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE
from custom_components.autoadd.protocol.transport import MEDIA_TYPE

#: Nothing the device sends is longer than a proof bundle; more is read no further.
MAX_ANSWER = MAX_BUNDLE_SIZE
#: How often a request refused with 429 is sent again, and the longest wait the runner honours.
_RATE_RETRIES = 20
_MAX_RETRY_AFTER = 10.0
_TIMEOUT = aiohttp.ClientTimeout(total=30)


class DeviceUrlError(ValueError):
    """The --device URL is not `http://HOST:PORT` (with an optional path, which is ignored)."""


def device_origin(url: str) -> str:
    """`http://HOST:PORT` from the URL the user named; the protocol's paths are fixed (§9)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise DeviceUrlError("the device URL must look like http://HOST:PORT")
    try:
        port = parts.port
    except ValueError as err:
        raise DeviceUrlError("the device URL has an invalid port") from err
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port or 80}"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the device answered: status (0 if it did not), media type, body, and the headers we check."""

    status: int
    content_type: str
    body: bytes
    allow: str | None = None
    retry_after: str | None = None


NO_ANSWER = Answer(0, "", b"")


def _retry_after(value: str | None) -> float:
    """Seconds to wait: the header's delta-seconds when it is one, else one second, never too long."""
    if value is not None and value.isdigit() and len(value) <= 4:
        return min(float(value), _MAX_RETRY_AFTER)
    return 1.0


async def _chunks(body: bytes, piece: int) -> AsyncIterator[bytes]:
    """`body` in pieces of `piece` bytes, sent chunked (no Content-Length)."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


class DeviceHttp:
    """The device's HTTP endpoints at one origin."""

    def __init__(self, session: aiohttp.ClientSession, origin: str) -> None:
        """Requests go to `origin` (scheme, host and port) through `session`."""
        self._session = session
        self._origin = origin
        self.rate_limited = 0
        #: Every final answer, for the checks that look at all of them (§9 "Errors").
        self.answers: list[Answer] = []

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        body = bytearray()
        while len(body) <= MAX_ANSWER and (chunk := await response.content.read(MAX_ANSWER + 1 - len(body))):
            body += chunk
        return bytes(body)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str | None = MEDIA_TYPE,
        chunk: int | None = None,
    ) -> Answer:
        """Send one request (again after each 429) and return the final answer."""
        headers = {"Content-Type": content_type} if content_type is not None and method != "GET" else {}
        for _ in range(_RATE_RETRIES):
            data = _chunks(body or b"", chunk) if chunk is not None else body
            try:
                async with self._session.request(
                    method,
                    self._origin + path,
                    data=data,
                    headers=headers,
                    skip_auto_headers=() if headers else ("Content-Type",),
                    timeout=_TIMEOUT,
                ) as response:
                    answer = Answer(
                        response.status,
                        response.content_type,
                        await self._read(response),
                        response.headers.get("Allow"),
                        response.headers.get("Retry-After"),
                    )
            except (aiohttp.ClientError, TimeoutError):
                return NO_ANSWER
            if answer.status != 429:
                self.answers.append(answer)
                return answer
            self.rate_limited += 1
            await asyncio.sleep(_retry_after(answer.retry_after))
        return answer

    async def post(self, path: str, body: bytes, *, content_type: str | None = MEDIA_TYPE) -> Answer:
        """POST a body as is."""
        return await self.request("POST", path, body, content_type=content_type)

    async def post_chunked(self, path: str, body: bytes, *, chunk: int = 1024) -> Answer:
        """POST a body with chunked transfer encoding (no Content-Length), `chunk` bytes at a time."""
        return await self.request("POST", path, body, chunk=chunk)

    async def get(self, path: str) -> Answer:
        """GET a path."""
        return await self.request("GET", path)

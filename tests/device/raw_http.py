"""HTTP/1.1 by hand, for the requests no HTTP client sends: half-sent heads, split bodies, idle sockets.

Shared by the device tests and the security battery (tests/security/test_device_attacks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import aiohttp

from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.transport import MEDIA_TYPE

#: Seconds a test waits for something the device must do: a generous bound on a condition, never a sleep.
PATIENCE = 10.0


def request_head(method: str, path: str, *, length: int | None = None, extra: str = "") -> bytes:
    """A request head for the device (Content-Type application/cbor, the given Content-Length)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: device", f"Content-Type: {MEDIA_TYPE}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


@dataclass(frozen=True)
class RawAnswer:
    """One response as it came over the wire; header names lower-cased."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error(self) -> tuple[str, str]:
        """The CBOR error map's code and detail (fails the test if the body is not that map)."""
        assert self.headers.get("content-type", "").startswith(MEDIA_TYPE), (self.status, self.body[:200])
        value: Any = loads(self.body, what="error body", max_size=1024)
        assert isinstance(value, dict), value
        assert set(value) == {1, 2}, value
        return value[1], value[2]


class RawConnection:
    """A TCP connection to the device on 127.0.0.1, from `source` (another loopback address is another
    client to the device)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.1") -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> RawAnswer:
        """Read one response (with a Content-Length body, as the device sends them)."""
        async with asyncio.timeout(PATIENCE):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in filter(None, lines):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawAnswer(int(status_line.split()[1]), headers, body)

    async def until_closed(self) -> bytes:
        """Wait for the device to close the connection; what it sent before. Fails after PATIENCE."""
        try:
            async with asyncio.timeout(PATIENCE):
                return await self.reader.read()
        except ConnectionResetError:
            return b""
        except TimeoutError:
            raise AssertionError(f"the device kept the connection open for {PATIENCE} s") from None

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def refusal(port: int, path: str, body: bytes) -> tuple[int, str]:
    """POST `body` on a connection of its own; the status and the error map's code."""
    connection = await RawConnection.open(port)
    try:
        await connection.send(request_head("POST", path, length=len(body)) + body)
        answer = await connection.answer()
        return answer.status, answer.error[0]
    finally:
        await connection.close()


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (an empty one ends the body)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def answered(port: int) -> None:
    """A barrier: once the device has answered a request on another connection, it has read whatever was
    sent to it before (the device reads its sockets in the order their data came)."""
    other = await RawConnection.open(port)
    try:
        await other.send(request_head("GET", "/autoadd/v1/info"))
        assert (await other.answer()).status == 200
    finally:
        await other.close()


def session_from(source: str) -> aiohttp.ClientSession:
    """An HTTP client whose connections come from another loopback address: another client to the device."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))

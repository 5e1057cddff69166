"""HTTP client for an AutoAdd device, on a session the caller owns (Home Assistant's shared one).

Moves the protocol's bytes and maps the device's error bodies back to the protocol's errors; all checks
are the protocol core's. No Home Assistant import, so tests and tools use it as it is.

Whatever answers at a device's address is untrusted until it proves itself, so the client never lets it
steer Home Assistant: no redirect is followed (it would send the hello, or a GET, wherever the answer
points), the address is checked before connecting (registrar/addresses.py), every body is read whole but
never past its limit, and every request asks the device to close the connection after its answer (a
burst of devices would otherwise leave one idle keep-alive connection each in the shared pool).
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp

from .protocol.certificates import MAX_ROOT_OFFER
from .protocol.claim import MAX_CLAIM_ANSWER
from .protocol.const import MAX_BUNDLE_SIZE, MAX_MESSAGE_SIZE, Label
from .protocol.encoding import dumps, loads
from .protocol.errors import MalformedError, TooLargeError
from .protocol.transport import (
    MEDIA_TYPE,
    PATH_CLAIM_FINISH,
    PATH_CLAIM_START,
    PATH_HELLO,
    PATH_INFO,
    PATH_LINKS,
    PATH_NOTE,
    PATH_ROOT,
    REDIRECT,
    PeerError,
    read_error_body,
)
from .registrar.addresses import AddressPolicy
from .registrar.ports import DeviceUnreachableError

#: Seconds to open a connection: an address that drops packets is given up on quickly.
CONNECT_TIMEOUT: Final = 3.0
#: Seconds for an answer once connected (no read may stall longer; the whole request takes at most
#: CONNECT_TIMEOUT + this).
DEFAULT_TIMEOUT: Final = 10.0
#: Response body limits (§9 rule 9): the proof bundle, the receipt; `info` and error bodies.
MAX_PROOF_BUNDLE: Final = MAX_BUNDLE_SIZE
MAX_RECEIPT: Final = MAX_MESSAGE_SIZE
MAX_SMALL_BODY: Final = 1024
#: Tools and tests on one machine talk to devices on loopback; Home Assistant passes its own policy.
LOCAL_POLICY: Final = AddressPolicy(allow_loopback=True)
#: Failures that a request sent on a pooled connection the device already closed ends with. A failure to
#: connect (ClientConnectorError, itself a ClientOSError) is never one: it was a new connection.
_STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
#: Every request asks the device to close the connection after its answer, and takes the body as sent.
_HEADERS: Final = {"Connection": "close", "Accept-Encoding": "identity"}

__all__ = ["DeviceClient", "DeviceUnreachableError"]


class DeviceClient:
    """One device at one address."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        policy: AddressPolicy = LOCAL_POLICY,
    ) -> None:
        """Talk to http://host:port. Raises AddressRefusedError, before anything is sent, when the policy
        does not allow the address (one that reached the registrar some other way than discovery)."""
        policy.check(host, port)
        self._session = session
        self._base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + timeout, sock_connect=connect_timeout, sock_read=timeout
        )

    async def _request(self, method: str, path: str, limit: int, body: bytes | None = None) -> bytes:
        """One request. Should a device have kept a connection open anyway and it fail before any answer,
        the request is sent once more on a new one (§9 rule 10)."""
        try:
            return await self._send(method, path, limit, body)
        except DeviceUnreachableError as err:
            cause = err.__cause__
            if not isinstance(cause, _STALE) or isinstance(cause, aiohttp.ClientConnectorError):
                raise
        return await self._send(method, path, limit, body)

    async def _send(self, method: str, path: str, limit: int, body: bytes | None) -> bytes:
        headers = {**_HEADERS, "Content-Type": MEDIA_TYPE} if body is not None else _HEADERS
        try:
            async with self._session.request(
                method,
                self._base + path,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                auto_decompress=False,
                # None of the session's middlewares: Home Assistant's only one checks where a redirect
                # goes, which is moot when none is followed, and would resolve the host name a hostile
                # answer puts in its Location (a DNS query of its choosing).
                middlewares=(),
            ) as response:
                return await _answer(response, limit)
        except TimeoutError as err:
            raise DeviceUnreachableError(f"{self._base} did not answer in time") from err
        except aiohttp.ClientError as err:
            raise DeviceUnreachableError(f"{self._base}: {type(err).__name__}") from err

    async def info(self) -> dict[int, Any]:
        """The device's identifier, chain length and chain head."""
        value = loads(await self._request("GET", PATH_INFO, MAX_SMALL_BODY), what="info", max_size=1024)
        if not isinstance(value, dict) or not {Label.DEVICE_ID, Label.CHAIN_LENGTH, Label.CHAIN_HEAD} <= set(
            value
        ):
            raise MalformedError("the info answer is not the documented map")
        return value

    async def hello(self, hello: bytes) -> bytes:
        """Send a hello; returns the proof bundle (still to be verified)."""
        return await self._request("POST", PATH_HELLO, MAX_PROOF_BUNDLE, hello)

    async def note(self, note: bytes) -> bytes:
        """Send an acceptance note; returns the receipt (still to be verified)."""
        return await self._request("POST", PATH_NOTE, MAX_RECEIPT, note)

    async def links(self, links: list[bytes]) -> None:
        """Push links that extend the device's chain."""
        await self._request("POST", PATH_LINKS, MAX_SMALL_BODY, dumps(links))

    async def root(self) -> bytes:
        """Ask for the manufacturer root the device offers (still to be checked, §14.7)."""
        return await self._request("GET", PATH_ROOT, MAX_ROOT_OFFER)

    async def claim_start(self, start: bytes) -> bytes:
        """POST /claim/start; returns the device's share (§14.9)."""
        return await self._request("POST", PATH_CLAIM_START, MAX_SMALL_BODY, start)

    async def claim_finish(self, finish: bytes) -> bytes:
        """POST /claim/finish; returns the claim link the device signed, still to be verified."""
        return await self._request("POST", PATH_CLAIM_FINISH, MAX_CLAIM_ANSWER, finish)


async def _answer(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of a success, or the error an answer stands for: a redirect is a refusal, not a way on."""
    status = response.status
    if 300 <= status < 400:
        raise PeerError(REDIRECT, "the device answered with a redirect, which is never followed", status)
    if status >= 400:
        raise read_error_body(await read_body(response, MAX_SMALL_BODY, "error body"), status)
    if status < 200:
        raise PeerError("unknown", "the device answered with an informational status", status)
    return await read_body(response, limit, "answer")


async def read_body(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The whole body, up to EOF, or TooLargeError once it is over `limit` bytes.

    A read returns what has arrived so far: a body split across TCP segments takes several reads. At most
    limit + 1 bytes are read, and none when the announced length is already over the limit."""
    if response.content_length is not None and response.content_length > limit:
        raise TooLargeError(f"the device's {what} is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await response.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise TooLargeError(f"the device's {what} is over {limit} bytes")

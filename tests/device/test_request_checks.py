"""The order and the exact form of the device's checks on a request (docs/protocol.md §9 rule 2): HTTP and
`Expect` (400), the rate limit (429), path (404), method (405), Content-Type (415), size (413), then the body
rules; the media type is compared case-insensitively, its parameters ignored, and a POST without exactly
one Content-Type is 415.

Each request goes over a raw connection, so the test chooses every header byte; each refusal is checked by
its status, its CBOR error map's code and the device's state, which a refused request never changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from custom_components.autoadd.protocol.const import MAX_MESSAGE_SIZE
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import PATH_HELLO, PATH_INFO, PATH_NOTE

from .conftest import RunningDevice
from .raw_http import RawAnswer, RawConnection

#: A body one byte over /hello's limit, and the limit of /note (a body /hello must refuse by its size).
OVERSIZED = b"\xff" * (MAX_MESSAGE_SIZE + 1)


def _head(method: str, path: str, body: bytes, content_types: list[str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: device", f"Content-Length: {len(body)}"]
    lines += [f"Content-Type: {value}" for value in content_types]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _ask(device: RunningDevice, method: str, path: str, body: bytes, *content_types: str) -> RawAnswer:
    """One request on a connection of its own, with exactly the given Content-Type fields (none: none)."""
    connection = await RawConnection.open(device.port)
    try:
        await connection.send(_head(method, path, body, list(content_types)) + body)
        return await connection.answer()
    finally:
        await connection.close()


async def test_an_oversized_body_of_the_wrong_type_is_415_not_413(running: RunningDevice) -> None:
    """Content-Type is checked before the size: the answer says what is wrong first."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", PATH_HELLO, OVERSIZED, "application/json")
    assert (answer.status, answer.error[0]) == (415, "malformed")
    assert running.device.state == before


async def test_an_oversized_body_without_a_content_type_is_415(running: RunningDevice) -> None:
    """A POST with no Content-Type at all is 415, whatever its size."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", PATH_HELLO, OVERSIZED)
    assert (answer.status, answer.error[0]) == (415, "malformed")
    assert running.device.state == before


async def test_an_oversized_body_of_the_right_type_is_413(running: RunningDevice) -> None:
    """With the right media type, the size is the next check."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", PATH_HELLO, OVERSIZED, "application/cbor")
    assert (answer.status, answer.error[0]) == (413, "too_large")
    assert running.device.state == before


async def test_a_wrong_method_is_405_before_the_content_type_and_size(running: RunningDevice) -> None:
    """Method and path come first: a PUT of an oversized JSON body to /hello is 405, with Allow."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "PUT", PATH_HELLO, OVERSIZED, "application/json")
    assert (answer.status, answer.error[0]) == (405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"
    assert running.device.state == before


async def test_an_unknown_path_is_404_before_the_content_type_and_size(running: RunningDevice) -> None:
    """A POST of an oversized JSON body to a path the device does not serve is 404."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", "/autoadd/v1/hello/", OVERSIZED, "application/json")
    assert (answer.status, answer.error[0]) == (404, "not_found")
    assert running.device.state == before


@pytest.mark.parametrize(
    "content_type",
    [
        "application/CBOR",
        "Application/Cbor; charset=x",
        "application/cbor;charset=utf-8",
        "application/cbor ; q=1",
        'application/cbor; name="a;b"',
    ],
)
async def test_the_media_type_is_compared_case_insensitively_and_its_parameters_ignored(
    running: RunningDevice, content_type: str
) -> None:
    """A media type that differs only in case, or has parameters, is application/cbor: the body is read and
    its rules apply (garbage is malformed with 400, not 415)."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", PATH_HELLO, b"\xff", content_type)
    assert (answer.status, answer.error[0]) == (400, "malformed")
    assert running.device.state == before


@pytest.mark.parametrize(
    "content_types",
    [
        ["application/cbor-seq"],
        ["application/cbor+json"],
        ["application/x-cbor"],
        ["text/plain; type=application/cbor"],
        [""],
    ],
)
async def test_any_other_content_type_is_415(running: RunningDevice, content_types: list[str]) -> None:
    """Another media type, or an empty field, is 415 `malformed`."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", PATH_NOTE, b"\xff", *content_types)
    assert (answer.status, answer.error[0]) == (415, "malformed")
    assert running.device.state == before


@pytest.mark.parametrize(
    "content_types", [["application/cbor", "application/cbor"], ["application/cbor", "application/json"]]
)
async def test_two_content_type_fields_are_unreadable_http(
    running: RunningDevice, content_types: list[str]
) -> None:
    """Content-Type is a singleton field: two of them are a request no one can read the same way twice,
    400 `malformed` (check 1, before the path, the method and the media type)."""
    assert running.device is not None
    before = running.device.state
    answer = await _ask(running, "POST", PATH_NOTE, b"\xff", *content_types)
    assert (answer.status, answer.error[0]) == (400, "malformed")
    assert running.device.state == before


async def test_a_get_needs_no_content_type(running: RunningDevice) -> None:
    """Only a POST has a body to check: GET /info without any Content-Type is answered."""
    answer = await _ask(running, "GET", PATH_INFO, b"")
    assert answer.status == 200


async def test_the_rate_limit_comes_before_every_other_check(
    make_device: Callable[..., RunningDevice], home: PrivateKey
) -> None:
    """A client past its budget gets 429 whatever is wrong with its request (here: path, type and size)."""
    device = make_device([home])
    device.rate, device.burst = 0.001, 0
    await device.start()
    try:
        answer = await _ask(device, "POST", "/nowhere", OVERSIZED, "application/json")
        assert (answer.status, answer.error[0]) == (429, "rate_limited")
    finally:
        await device.stop()


async def test_an_expectation_is_checked_before_the_path(running: RunningDevice) -> None:
    """An `Expect` other than 100-continue is 400 `malformed` even on a path the device does not serve."""
    connection = await RawConnection.open(running.port)
    try:
        await connection.send(
            b"POST /nowhere HTTP/1.1\r\nHost: device\r\nExpect: magic\r\nContent-Length: 1\r\n\r\n"
        )
        answer = await connection.answer()
        assert (answer.status, answer.error[0]) == (400, "malformed")
    finally:
        await connection.close()

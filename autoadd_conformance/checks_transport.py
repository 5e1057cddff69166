"""§9, the device's HTTP rules: body limits (413, also for chunked bodies), bodies read to their end,
media type (415), unknown paths and methods (404, 405 with Allow), `/info`, and the error body of every
4xx answer."""

from __future__ import annotations

from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_CHAIN_ARRAY_SIZE,
    MAX_MESSAGE_SIZE,
    Label,
)
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.handshake import make_hello
from custom_components.autoadd.protocol.keys import fingerprint
from custom_components.autoadd.protocol.transport import (
    BASE_PATH,
    MEDIA_TYPE,
    PATH_HELLO,
    PATH_INFO,
    PATH_LINKS,
    PATH_NOTE,
)

from .checks_hello import bundle_of
from .http import DeviceHttp
from .messages import Probe, now_ts, random_bytes, stranger
from .results import Result, describe_answer, error_code_of, expect_error, failed, passed

_LIMITS = ((PATH_HELLO, MAX_MESSAGE_SIZE), (PATH_NOTE, MAX_BUNDLE_SIZE), (PATH_LINKS, MAX_CHAIN_ARRAY_SIZE))


async def transport_checks(http: DeviceHttp, probe: Probe) -> list[Result]:
    """Rules 1, 2 and 6 of §9; `probe` is a good hello's answer, for comparing `/info` with."""
    results: list[Result] = []
    for path, limit in _LIMITS:
        name = path.rsplit("/", 1)[-1]
        answer = await http.post(path, bytes(limit + 1))
        results.append(
            expect_error("T1", f"/{name}: a body of {limit + 1} bytes (Content-Length)", answer, "too_large")
        )
    for path, limit in _LIMITS[:2]:
        name = path.rsplit("/", 1)[-1]
        answer = await http.post_chunked(path, bytes(limit + 1024))
        results.append(expect_error("T1", f"/{name}: a chunked body over {limit} bytes", answer, "too_large"))

    key = stranger()
    nonce = random_bytes()
    answer = await http.post_chunked(PATH_HELLO, make_hello(key, nonce, now_ts()), chunk=7)
    found = bundle_of(
        "T1",
        "a hello sent chunked in 7-byte pieces is read to its end and answered 200",
        answer,
        nonce,
        fingerprint(key.public_key()),
    )
    results.append(
        found
        if isinstance(found, Result)
        else passed("T1", "a hello sent chunked in 7-byte pieces is read to its end and answered 200")
    )

    for path in (PATH_HELLO, PATH_NOTE, PATH_LINKS):
        name = path.rsplit("/", 1)[-1]
        for media in ("text/plain", "application/json"):
            answer = await http.post(path, make_hello(key, nonce, now_ts()), content_type=media)
            results.append(
                expect_error("T2", f"/{name}: a CBOR body sent as {media}", answer, "malformed", status=415)
            )
    answer = await http.post(PATH_HELLO, make_hello(key, nonce, now_ts()), content_type=None)
    results.append(expect_error("T2", "/hello: a body without Content-Type", answer, "malformed", status=415))
    answer = await http.post(PATH_HELLO, bytes(MAX_MESSAGE_SIZE + 1), content_type="text/plain")
    results.append(
        expect_error(
            "T2",
            "/hello: an oversized body of the wrong type is 415 (checked first)",
            answer,
            "malformed",
            status=415,
        )
    )
    for media in ("Application/CBOR", "application/cbor; charset=binary"):
        title = f"/hello: Content-Type {media!r} is the CBOR media type (case, parameters ignored)"
        nonce = random_bytes()
        answer = await http.post(PATH_HELLO, make_hello(key, nonce, now_ts()), content_type=media)
        found = bundle_of("T2", title, answer, nonce, fingerprint(key.public_key()))
        results.append(found if isinstance(found, Result) else passed("T2", title))

    for method, path in (("GET", f"{BASE_PATH}/nothing"), ("POST", "/")):
        answer = await http.request(method, path, b"" if method == "POST" else None)
        results.append(expect_error("T2", f"{method} {path}", answer, "not_found"))
    for method, path, allowed in (
        ("GET", PATH_HELLO, "POST"),
        ("PUT", PATH_NOTE, "POST"),
        ("POST", PATH_INFO, "GET"),
    ):
        answer = await http.request(method, path, b"" if method != "GET" else None)
        check = expect_error("T2", f"{method} {path} (Allow: {allowed})", answer, "method_not_allowed")
        if check.why == "" and (answer.allow or "").replace(" ", "").upper().split(",") != [allowed]:
            check = failed(check.rule, check.title, f"expected an Allow header naming {allowed} only")
        results.append(check)

    results.append(await _info(http, probe))
    return results


async def _info(http: DeviceHttp, probe: Probe) -> Result:
    """`/info` = {2: device id, 14: chain head, 19: chain length}, as the proof says."""
    title = "GET /info answers {2: device id, 14: chain head, 19: chain length} as the proof does"
    answer = await http.get(PATH_INFO)
    if answer.status != 200 or answer.content_type != MEDIA_TYPE:
        return failed("T6", title, f"expected 200 {MEDIA_TYPE}, got {describe_answer(answer)}")
    try:
        info = loads(answer.body, what="info", max_size=1024)
    except AutoAddError as err:
        return failed("T6", title, f"the body is not deterministic CBOR: {err.code}")
    if not isinstance(info, dict) or set(info) != {Label.DEVICE_ID, Label.CHAIN_HEAD, Label.CHAIN_LENGTH}:
        return failed("T6", title, "the body is not a map of exactly the labels 2, 14 and 19")
    expected = {
        Label.DEVICE_ID: probe.device_id,
        Label.CHAIN_HEAD: probe.chain_head,
        Label.CHAIN_LENGTH: probe.chain_length,
    }
    if info != expected or isinstance(info[Label.CHAIN_LENGTH], bool):
        return failed("T6", title, "its values are not the proof's")
    return passed("T6", title)


def error_body_check(http: DeviceHttp) -> Result:
    """§9 "Errors", over everything the device answered: every 4xx has the CBOR error map; no 5xx."""
    title = "every 4xx answer is {1: code, 2: detail <= 256 chars} as application/cbor, and no 5xx"
    errors = [answer for answer in http.answers if answer.status >= 400]
    bad = sum(1 for answer in errors if answer.status >= 500 or error_code_of(answer) is None)
    if bad:
        return failed("T9", title, f"{bad} of {len(errors)} error answers are not")
    return passed("T9", f"{title} ({len(errors)} seen)")

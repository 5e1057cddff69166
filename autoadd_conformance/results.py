"""One result per check, and how an answer is compared with what the spec requires.

A line never quotes the device's own text (its error `detail`, its body): only the HTTP status (a number
aiohttp parsed) and an error code that passed the §12 shape check, so a hostile or broken device cannot
put anything into the runner's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import json

from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.transport import HTTP_STATUS, MAX_ERROR_DETAIL, MEDIA_TYPE

from .http import Answer

#: §9 rule 9: error bodies are at most this long.
MAX_ERROR_BODY = 1024
_ERROR_CODE = 1
_ERROR_DETAIL = 2


class Outcome(StrEnum):
    """What became of one check."""

    PASSED = "PASS"
    FAILED = "FAIL"
    SKIPPED = "SKIP"


@dataclass(frozen=True, slots=True)
class Result:
    """One check: the rule it exercises, what it did, and how it went."""

    rule: str
    title: str
    outcome: Outcome
    why: str = ""

    def line(self) -> str:
        """The printed form: `PASS H3 ...`, `FAIL N5 ... (expected ..., got ...)`, `SKIP ...: needs ...`."""
        if self.outcome is Outcome.FAILED:
            return f"FAIL {self.rule} {self.title} ({self.why})"
        if self.outcome is Outcome.SKIPPED:
            return f"SKIP {self.rule} {self.title}: {self.why}"
        return f"PASS {self.rule} {self.title}"

    def json(self) -> str:
        """The --json form: one object per line, with the same fields."""
        return json.dumps(
            {"outcome": self.outcome.value, "rule": self.rule, "title": self.title, "why": self.why}
        )


def passed(rule: str, title: str) -> Result:
    """A check the device met."""
    return Result(rule, title, Outcome.PASSED)


def failed(rule: str, title: str, why: str) -> Result:
    """A check the device did not meet; `why` is built from the runner's own words only."""
    return Result(rule, title, Outcome.FAILED, why)


def skipped(rule: str, title: str, why: str) -> Result:
    """A check that could not run (a missing option, or an earlier step that failed)."""
    return Result(rule, title, Outcome.SKIPPED, why)


def error_code_of(answer: Answer) -> str | None:
    """The code of a §9 error body, or None when the body is not one: a CBOR map of exactly {1: code,
    2: detail}, both text, the code shaped like §12's, the detail at most 256 characters, sent as
    `application/cbor`."""
    if answer.content_type != MEDIA_TYPE or len(answer.body) > MAX_ERROR_BODY:
        return None
    try:
        value = loads(answer.body, what="error body", max_size=MAX_ERROR_BODY)
    except AutoAddError:
        return None
    if not isinstance(value, dict) or set(value) != {_ERROR_CODE, _ERROR_DETAIL}:
        return None
    code, detail = value[_ERROR_CODE], value[_ERROR_DETAIL]
    if not isinstance(code, str) or not isinstance(detail, str) or len(detail) > MAX_ERROR_DETAIL:
        return None
    if not (1 <= len(code) <= 32 and all(c == "_" or "a" <= c <= "z" for c in code)):
        return None
    return code


def describe_answer(answer: Answer) -> str:
    """`403 bad_signature`, `404 with no CBOR error body`, `200`: what the device answered, safely."""
    if answer.status == 0:
        return "no HTTP answer"
    if answer.status < 400:
        return str(answer.status)
    code = error_code_of(answer)
    return f"{answer.status} {code}" if code is not None else f"{answer.status} with no CBOR error body"


def expect_error(rule: str, title: str, answer: Answer, code: str, *, status: int | None = None) -> Result:
    """The device must refuse with `code`, at the status §9's table gives it, in a §9 error body."""
    want = status if status is not None else HTTP_STATUS.get(code, 400)
    if answer.status == want and error_code_of(answer) == code:
        return passed(rule, title)
    return failed(rule, title, f"expected {want} {code}, got {describe_answer(answer)}")

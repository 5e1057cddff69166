"""The HTTP transport's fixed parts: paths, media type, error bodies and the status for each error code.

Pure data and encoding: the device's server and the registrar's client do the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
import re
from typing import Final

from .encoding import dumps, loads
from .errors import ERRORS_BY_CODE, AutoAddError

BASE_PATH: Final = "/autoadd/v1"
PATH_INFO: Final = f"{BASE_PATH}/info"
PATH_HELLO: Final = f"{BASE_PATH}/hello"
PATH_NOTE: Final = f"{BASE_PATH}/note"
PATH_LINKS: Final = f"{BASE_PATH}/links"
PATH_ROOT: Final = f"{BASE_PATH}/root"
PATH_CLAIM_START: Final = f"{BASE_PATH}/claim/start"
PATH_CLAIM_FINISH: Final = f"{BASE_PATH}/claim/finish"
MEDIA_TYPE: Final = "application/cbor"

#: Transport-only code: the device refused the request because it came too fast.
RATE_LIMITED: Final = "rate_limited"
#: Transport-only code the registrar gives a 3xx answer: redirects are never followed (§10).
REDIRECT: Final = "redirect"
#: What an error code looks like (§12); anything else a peer sends is "unknown".
_CODE_SHAPE: Final = re.compile(r"[a-z_]{1,32}")
#: Transport-only codes: no endpoint at this path; the endpoint does not take this method; the request body
#: did not arrive within the device's body timeout.
NOT_FOUND: Final = "not_found"
METHOD_NOT_ALLOWED: Final = "method_not_allowed"
REQUEST_TIMEOUT: Final = "request_timeout"

#: The whitespace HTTP allows around a media type and its parameters (RFC 9110 §5.6.3, OWS).
_OWS: Final = " \t"

_ERROR_CODE = 1
_ERROR_DETAIL = 2
_MAX_ERROR_BODY = 1024
MAX_ERROR_DETAIL = 256

HTTP_STATUS: Final[dict[str, int]] = {
    "malformed": 400,
    "wrong_content_type": 400,
    "unsupported_version": 400,
    "unsupported_algorithm": 400,
    "invalid_key": 400,
    "invalid_home_key_string": 400,
    "invalid_recovery_key_string": 400,
    "invalid_claim_code_string": 400,
    "invalid_owners": 400,
    "bad_signature": 403,
    "untrusted_manufacturer": 403,
    "wrong_manufacturer_root": 403,
    "manufacturer_mismatch": 403,
    "idevid_mismatch": 403,
    "signer_not_owner": 403,
    "wrong_device": 403,
    "not_owner": 403,
    "nonce_mismatch": 403,
    "wrong_claim_code": 403,
    "claim_unproven": 403,
    "already_claimed": 409,
    "wrong_previous_hash": 409,
    "wrong_sequence": 409,
    "fork": 409,
    "rollback": 409,
    "chain_head_mismatch": 409,
    "handshake_state": 409,
    "unknown_session": 410,
    "too_large": 413,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    REQUEST_TIMEOUT: 408,
    RATE_LIMITED: 429,
    "claim_wait": 429,
}


class PeerError(AutoAddError):
    """An error the other side reported in an error body, with its code (which may be transport-only)."""

    code = "peer_error"

    def __init__(self, peer_code: str, detail: str, status: int) -> None:
        """Keep the peer's code and the HTTP status."""
        self.peer_code = peer_code
        self.status = status
        super().__init__(f"the device answered {status} {peer_code}: {detail}")


def is_cbor_content_type(fields: Sequence[str]) -> bool:
    """Whether a request's Content-Type fields say `application/cbor` (§9 rule 2).

    There must be exactly one field. Its media type is what comes before the first `;`, without the
    whitespace around it, compared with `application/cbor` ignoring ASCII case; the parameters after it
    are ignored, whatever they are. Two implementations following this agree on every header: one that
    parsed parameters strictly would refuse what another takes."""
    if len(fields) != 1:
        return False
    media_type = fields[0].split(";", 1)[0].strip(_OWS)
    return media_type.isascii() and media_type.lower() == MEDIA_TYPE


def error_body(code: str, detail: str) -> bytes:
    """The CBOR body of an error response: {1: code, 2: detail}."""
    return dumps({_ERROR_CODE: code, _ERROR_DETAIL: detail[:MAX_ERROR_DETAIL]})


def read_error_body(body: bytes, status: int) -> AutoAddError:
    """The error a peer's error response stands for: the documented class where the code is one.

    Everything in it is the peer's claim: a code that is not shaped like one (§12: lowercase letters and
    underscores) counts as "unknown", and the detail is kept only if it is text, cut to MAX_ERROR_DETAIL."""
    try:
        value = loads(body, what="error body", max_size=_MAX_ERROR_BODY)
    except AutoAddError:
        return PeerError("unknown", f"unreadable error body ({len(body)} bytes)", status)
    if not isinstance(value, dict) or not isinstance(value.get(_ERROR_CODE), str):
        return PeerError("unknown", "error body without a code", status)
    code = value[_ERROR_CODE] if _CODE_SHAPE.fullmatch(value[_ERROR_CODE]) else "unknown"
    detail = value.get(_ERROR_DETAIL, "")
    detail = detail[:MAX_ERROR_DETAIL] if isinstance(detail, str) else "(a detail that is not text)"
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        return PeerError(code, detail, status)
    try:
        return cls(f"the device says: {detail}")
    except TypeError:  # classes with extra constructor arguments are reported as peer errors
        return PeerError(code, detail, status)

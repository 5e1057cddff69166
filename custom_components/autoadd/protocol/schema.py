"""Payload schemas: voluptuous validators for the contract's CBOR maps, failing as MalformedError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import voluptuous as vol

from .const import PROTOCOL_VERSION
from .errors import MalformedError, UnsupportedVersionError, describe

MAX_TEXT = 128
MAX_UINT = 2**64 - 1


def byte_string(size: int | None = None, max_size: int | None = None) -> Callable[[Any], bytes]:
    """A byte string of exactly `size`, or at most `max_size`, bytes."""

    def check(value: Any) -> bytes:
        if not isinstance(value, bytes):
            raise vol.Invalid("expected a byte string")
        if size is not None and len(value) != size:
            raise vol.Invalid(f"expected {size} bytes, got {len(value)}")
        if max_size is not None and len(value) > max_size:
            raise vol.Invalid(f"more than {max_size} bytes")
        return value

    return check


def uint(value: Any) -> int:
    """An unsigned integer (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT:
        raise vol.Invalid("expected an unsigned integer")
    return value


def text(value: Any) -> str:
    """A short text string."""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise vol.Invalid(f"expected text of at most {MAX_TEXT} characters")
    return value


def array(item: Callable[[Any], Any], max_items: int) -> Callable[[Any], list[Any]]:
    """A CBOR array of at most `max_items` items, each checked by `item`."""

    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise vol.Invalid("expected an array")
        if len(value) > max_items:
            raise vol.Invalid(f"more than {max_items} items")
        return [item(element) for element in value]

    return check


def exactly(expected: Any) -> Callable[[Any], Any]:
    """One fixed value (of the same type: 1 is not True)."""

    def check(value: Any) -> Any:
        if type(value) is not type(expected) or value != expected:
            raise vol.Invalid(f"expected {expected!r}")
        return value

    return check


def cbor_map(fields: dict[Any, Any]) -> vol.Schema:
    """A map with exactly these integer keys (vol.Required / vol.Optional) and no others."""
    return vol.Schema(fields, extra=vol.PREVENT_EXTRA)


def _explain(err: vol.Invalid) -> str:
    """What voluptuous found wrong, and where, without the received keys or values themselves.

    `str(err)` would write the path's keys with `repr`: an extra key that is a 5 000-digit integer makes
    that raise, and a long text key would be copied into the message.
    """
    first = err.errors[0] if isinstance(err, vol.MultipleInvalid) and err.errors else err
    where = "][".join(describe(step) for step in first.path)
    message = first.msg if isinstance(first.msg, str) else "invalid"
    if isinstance(first.error_type, str):
        message = f"{message} for {first.error_type}"
    return f"{message[:80]} @ data[{where}]" if where else message[:80]


def validate(schema: vol.Schema, value: Any, *, what: str) -> dict[int, Any]:
    """Apply a schema, turning any failure into MalformedError naming the field."""
    if not isinstance(value, dict):
        raise MalformedError(f"{what} payload is not a map")
    version = value.get(1)
    if type(version) is int and version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(
            f"{what} is protocol version {describe(version)}; this implementation speaks {PROTOCOL_VERSION}"
        )
    try:
        result: dict[int, Any] = schema(value)
    except vol.Invalid as err:
        raise MalformedError(f"{what} payload: {_explain(err)}") from err
    return result

"""Payload schemas: voluptuous validators for the contract's CBOR maps, and the configuration's data model.

Every failure is MalformedError, except a version other than 1, which is UnsupportedVersionError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import voluptuous as vol

from .const import MAX_CONFIG_SIZE, PROTOCOL_VERSION
from .encoding import MAX_DEPTH, dumps
from .errors import MalformedError, TooLargeError, UnsupportedVersionError, describe

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


def one_of(allowed: Iterable[Any]) -> Callable[[Any], Any]:
    """One of a few values (of the same type: 1 is not True)."""
    accepted = {(type(value), value) for value in allowed}
    kinds = {kind for kind, _ in accepted}

    def check(value: Any) -> Any:
        # The type first: a value of another type (a list, a map) may not even be hashable.
        if type(value) not in kinds or (type(value), value) not in accepted:
            raise vol.Invalid("not one of the values allowed")
        return value

    return check


class MapSchema:
    """A map with exactly these integer keys (given as vol.Required / vol.Optional) and no others.

    Written out rather than a vol.Schema: it runs for every link of every chain, where voluptuous' general
    key matching cost a third of an Ed25519 verify per link. Its failures are vol.Invalid with the key's
    path, as voluptuous reports them: missing, extra, or the field's own check.
    """

    __slots__ = ("_checks", "_required")

    def __init__(self, fields: dict[vol.Marker, Any]) -> None:
        """Compile the fields: each value is a check (a callable, or a type the value must be)."""
        self._checks: dict[Any, Callable[[Any], Any]] = {
            marker.schema: _as_check(check) for marker, check in fields.items()
        }
        self._required = tuple(marker.schema for marker in fields if isinstance(marker, vol.Required))

    def __call__(self, value: dict[Any, Any]) -> dict[Any, Any]:
        """The map with each field checked; vol.Invalid at the first field that is wrong."""
        checks = self._checks
        for key in value:
            if key not in checks:
                raise vol.Invalid("extra keys not allowed", path=[key])
        for key in self._required:
            if key not in value:
                raise vol.Invalid("required key not provided", path=[key])
        checked: dict[Any, Any] = {}
        for key, item in value.items():
            try:
                checked[key] = checks[key](item)
            except vol.Invalid as err:
                raise vol.Invalid(err.msg, path=[key, *err.path]) from err
        return checked


def _as_check(check: Any) -> Callable[[Any], Any]:
    if not isinstance(check, type):
        return cast("Callable[[Any], Any]", check)
    kind = check

    def is_instance(value: Any) -> Any:
        if not isinstance(value, kind):
            raise vol.Invalid(f"expected {kind.__name__}")
        return value

    return is_instance


def cbor_map(fields: dict[vol.Marker, Any]) -> MapSchema:
    """A map with exactly these integer keys (vol.Required / vol.Optional) and no others."""
    return MapSchema(fields)


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


def validate(schema: MapSchema, value: Any, *, what: str) -> dict[int, Any]:
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


# --- A note's configuration (§2.1 "Configuration data model", N7a, M4) ----------------------------------

#: The integers a configuration may hold: CBOR major types 0 and 1 (-2^64 ... 2^64-1), never a bignum.
_MIN_CONFIG_INT = -(2**64)


#: Where a note's configuration sits (E4): the note payload map is at depth 1, its label 17 value at 2.
_CONFIG_DEPTH = 2


def check_config(config: Any) -> None:
    """A note's configuration: N7a (data model, MalformedError) then N7b (size, TooLargeError); also M4.

    The configuration is the one open-ended value of the contract, so its data model is closed here rather
    than left to what a CBOR library happens to build: text-keyed maps, arrays, integers of major types
    0/1, text, byte strings, true, false and null. Floats, tags (dates, bignums, sets, embedded CBOR, even
    a COSE_Sign1), `undefined` and other simple values are refused, whatever library decoded them. The
    registrar runs the same check before it signs, so it never sends what a device would refuse; the
    depth check is E4's, counted from the configuration's place in the note payload.
    """
    if not isinstance(config, dict):
        raise MalformedError("the configuration is not a map")
    _check_config_item(config, _CONFIG_DEPTH)
    if len(dumps(config)) > MAX_CONFIG_SIZE:
        raise TooLargeError(f"the configuration is over {MAX_CONFIG_SIZE} bytes")


def _check_config_item(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedError(f"the configuration nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | bytes):
        return
    if isinstance(value, int):
        if not _MIN_CONFIG_INT <= value <= MAX_UINT:
            raise MalformedError("the configuration holds an integer outside 64 bits (a bignum)")
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list) or type(value) is tuple:  # cbor2's simple values are tuples too
        for item in value:
            _check_config_item(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedError(f"the configuration has a map key that is not text ({describe(key)})")
            _check_text(key)
            _check_config_item(item, depth + 1)
    else:
        raise MalformedError(
            f"the configuration holds {describe(value)}; only maps, arrays, integers, text, byte strings, "
            "true, false and null are allowed"
        )


def _check_text(value: str) -> None:
    """Text that has a UTF-8 form (a Python string may hold lone surrogates, which have none)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise MalformedError("the configuration holds text that is not valid Unicode") from err

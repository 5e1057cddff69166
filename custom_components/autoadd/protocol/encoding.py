"""CBOR in and out: deterministic encoding, and strict decoding that only ever fails with MalformedError.

Everything AutoAdd encodes is deterministic CBOR: definite lengths, shortest forms, and map keys sorted
length-first (RFC 8949 section 4.2.3, the order of RFC 7049's canonical CBOR, which cbor2 implements; for
the integer keys of the contract's maps it is the same as section 4.2.1's). Map keys are integers or text.
A decoder accepts only deterministically encoded input, so every object has exactly one encoding:
duplicate map keys, indefinite lengths and padded integers are refused, and two implementations can
never read one signed payload two ways.
"""

from __future__ import annotations

from typing import Any

import cbor2

from .errors import MalformedError, TooLargeError

#: Nesting deeper than this is never needed by the contract's structures.
_MAX_DEPTH = 16


def dumps(value: Any) -> bytes:
    """Deterministic CBOR."""
    return cbor2.dumps(value, canonical=True)


def _check(value: Any, what: str, level: int = 0) -> None:
    """Nesting within the limit, and map keys that are integers or text (never true, 1.0 or a map)."""
    if level > _MAX_DEPTH:
        raise MalformedError(f"{what} nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, list):
        for item in value:
            _check(item, what, level + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise MalformedError(f"{what} has a map key that is not an integer or text: {key!r}")
            _check(item, what, level + 1)
    elif isinstance(value, cbor2.CBORTag):
        _check(value.value, what, level + 1)


def loads(data: bytes, *, what: str, max_size: int) -> Any:
    """Decode one deterministic CBOR item of at most `max_size` bytes, naming `what` in errors."""
    if not isinstance(data, bytes):
        raise MalformedError(f"{what} is not a byte string")
    if len(data) > max_size:
        raise TooLargeError(f"{what} is {len(data)} bytes, over the limit of {max_size}")
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORError, ValueError, TypeError, ArithmeticError, RecursionError, LookupError) as err:
        raise MalformedError(f"{what} is not valid CBOR: {err}") from err
    _check(value, what)
    try:
        canonical = dumps(value)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as err:
        raise MalformedError(f"{what} holds values the contract does not use: {err}") from err
    if canonical != data:
        raise MalformedError(f"{what} is not deterministically encoded CBOR (or has trailing bytes)")
    return value

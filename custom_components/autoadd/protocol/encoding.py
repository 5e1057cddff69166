"""CBOR in and out: deterministic encoding, and strict decoding that only ever fails with MalformedError.

Everything AutoAdd encodes is deterministic CBOR (RFC 8949 section 4.2.1: definite lengths, shortest
forms, map keys sorted). A decoder accepts only deterministically encoded input, so every object has
exactly one encoding: duplicate map keys, indefinite lengths and padded integers are refused, and
two implementations can never read one signed payload two ways.
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


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level)
    if isinstance(value, dict):
        return max((max(_depth(k, level + 1), _depth(v, level + 1)) for k, v in value.items()), default=level)
    if isinstance(value, cbor2.CBORTag):
        return _depth(value.value, level + 1)
    return level


def loads(data: bytes, *, what: str, max_size: int) -> Any:
    """Decode one deterministic CBOR item of at most `max_size` bytes, naming `what` in errors."""
    if not isinstance(data, bytes):
        raise MalformedError(f"{what} is not a byte string")
    if len(data) > max_size:
        raise TooLargeError(f"{what} is {len(data)} bytes, over the limit of {max_size}")
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError, LookupError) as err:
        raise MalformedError(f"{what} is not valid CBOR: {err}") from err
    if _depth(value) > _MAX_DEPTH:
        raise MalformedError(f"{what} nests deeper than {_MAX_DEPTH} levels")
    try:
        canonical = dumps(value)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as err:
        raise MalformedError(f"{what} holds values the contract does not use: {err}") from err
    if canonical != data:
        raise MalformedError(f"{what} is not deterministically encoded CBOR (or has trailing bytes)")
    return value

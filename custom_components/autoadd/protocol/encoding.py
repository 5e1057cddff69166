"""CBOR in and out: deterministic encoding, and strict decoding that only ever fails with MalformedError.

Everything AutoAdd encodes is deterministic CBOR: definite lengths, shortest forms, and map keys sorted
length-first (RFC 8949 section 4.2.3, the order of RFC 7049's canonical CBOR, which cbor2 implements; for
the integer keys of the contract's maps it is the same as section 4.2.1's). Map keys are integers or text.
A decoder accepts only deterministically encoded input, so every object has exactly one encoding:
duplicate map keys, indefinite lengths and padded integers are refused, and two implementations can
never read one signed payload two ways.
"""

from __future__ import annotations

from collections.abc import Mapping
import threading
from typing import IO, Any, cast

import cbor2

from .errors import MalformedError, TooLargeError, describe

#: The deepest an item may sit (E4): the outermost item is at depth 1; each array element, map key and map
#: value, and a tag's content, is one deeper than the item holding it. So 16 nested arrays pass, 17 do not.
MAX_DEPTH = 16


class _Encoders(threading.local):
    """One canonical encoder per thread, kept between calls, writing into a list of chunks.

    `cbor2.dumps` builds a buffer and an encoder per call, which costs more than encoding a link; every
    decode re-encodes what it read, so this is paid several times per link. The encoder writes each
    item as a new `bytes` object, so collecting them is enough. An encoder that raised is replaced, so
    nothing a failed encoding left behind can reach the next one.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.chunks: list[bytes] = []
        #: What the encoder writes to: anything with a `write` method.
        self.write = self.chunks.append
        self.encoder = cbor2.CBOREncoder(cast("IO[bytes]", self), canonical=True)


_ENCODERS = _Encoders()


def dumps(value: Any) -> bytes:
    """Deterministic CBOR: what `cbor2.dumps(value, canonical=True)` gives, byte for byte."""
    state = _ENCODERS
    try:
        state.encoder.encode(value)
        return b"".join(state.chunks)
    except BaseException:
        state.reset()
        raise
    finally:
        state.chunks.clear()


#: What most decoded items are: checked by their type alone, never nested.
_LEAVES = frozenset({bytes, int, str})


def _check(value: Any, what: str, level: int = 1) -> None:
    """Nesting within the limit, and map keys that are integers or text (never true, 1.0 or a map).

    cbor2 turns arrays inside map keys and sets (tag 258) into tuples and sets, and maps there into frozen
    maps: they are containers all the same, so the rules reach into them too.
    """
    if level > MAX_DEPTH:
        raise MalformedError(f"{what} nests deeper than {MAX_DEPTH} levels")
    if type(value) in _LEAVES:
        return
    deeper = level + 1
    if isinstance(value, list | tuple | set | frozenset):
        if value and deeper > MAX_DEPTH:
            raise MalformedError(f"{what} nests deeper than {MAX_DEPTH} levels")
        for item in value:
            if type(item) not in _LEAVES:  # a leaf needs no call: it is checked by type alone
                _check(item, what, deeper)
    elif isinstance(value, Mapping):
        if value and deeper > MAX_DEPTH:
            raise MalformedError(f"{what} nests deeper than {MAX_DEPTH} levels")
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise MalformedError(f"{what} has a map key that is not an integer or text ({describe(key)})")
            if type(item) not in _LEAVES:
                _check(item, what, deeper)
    elif isinstance(value, cbor2.CBORTag):
        _check(value.value, what, deeper)


def loads(data: bytes, *, what: str, max_size: int) -> Any:
    """Decode one deterministic CBOR item of at most `max_size` bytes, naming `what` in errors."""
    if not isinstance(data, bytes):
        raise MalformedError(f"{what} is not a byte string")
    if len(data) > max_size:
        raise TooLargeError(f"{what} is {len(data)} bytes, over the limit of {max_size}")
    # cbor2 builds dates, decimals, regular expressions and more from tags, each with its own ways to fail
    # (OverflowError, OSError, RecursionError, MemoryError, ...): whatever it raises, the input is malformed.
    try:
        value = cbor2.loads(data)
    except Exception as err:
        raise MalformedError(f"{what} is not valid CBOR ({describe(err)})") from err
    _check(value, what)
    try:
        canonical = dumps(value)
    except Exception as err:
        raise MalformedError(f"{what} holds values the contract does not use ({describe(err)})") from err
    if canonical != data:
        raise MalformedError(f"{what} is not deterministically encoded CBOR (or has trailing bytes)")
    return value

"""A note's configuration has a closed data model (§2.1, N7a, M4), and nesting is counted one way (E4).

Before, what a configuration could hold was whatever cbor2 happened to decode: floats, bignums, tags 18,
24 and 258, `undefined` and simple values went through, and nested maps could have integer keys. Nesting
was counted from 0, so 17 levels passed "depth <= 16". Each refusal below is checked on the device (the
session stays open for the right note) and, where a registrar could be asked to build it, on the registrar
(no note is made, a correct one still can be).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import cbor2
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.const import ContentType, Label
from custom_components.autoadd.protocol.encoding import MAX_DEPTH, dumps, loads
from custom_components.autoadd.protocol.errors import MalformedError, UnknownSessionError
from tests.factory import NOW_TS
from tests.protocol.helpers import encode, expect_error
from tests.protocol.stage import Stage

#: A byte string that stands for the configuration value until the raw bytes under test replace it.
_MARK = b"\xee" * 20


@pytest.fixture
def stage() -> Stage:
    return Stage.create()


def _nest(levels: int) -> list[Any]:
    """`levels` arrays, each the only element of the one around it; the innermost is empty."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _note_with_raw_config(stage: Stage, session: Any, fragment: bytes) -> bytes:
    """A correctly signed note whose configuration is `{"v": <fragment>}`, the fragment's bytes as given."""
    payload = stage.note_payload(session)
    payload[Label.CONFIG] = {"v": _MARK}
    data = encode(payload)
    assert data.count(encode(_MARK)) == 1
    return stage.sign_as_home(data.replace(encode(_MARK), fragment), ContentType.NOTE)


# --- Nesting (E4): the outermost item is at depth 1, at most 16 -------------------------------------------


def test_sixteen_nested_arrays_are_the_most() -> None:
    """16 nested arrays decode; 17 are malformed (before, level 0 was the top, so 17 passed)."""
    assert MAX_DEPTH == 16
    assert loads(dumps(_nest(16)), what="input", max_size=100) == _nest(16)
    with pytest.raises(MalformedError, match="deeper than 16"):
        loads(dumps(_nest(17)), what="input", max_size=100)


def _around(levels: int, inner: Any) -> Any:
    """`inner` inside `levels` nested arrays."""
    for _ in range(levels):
        inner = [inner]
    return inner


def test_a_scalar_is_an_item_with_a_depth_too() -> None:
    """An integer inside 15 nested arrays is at depth 16 and passes; inside 16 arrays it is at 17."""
    assert loads(dumps(_around(15, 0)), what="input", max_size=100) == _around(15, 0)
    with pytest.raises(MalformedError, match="deeper than 16"):
        loads(dumps(_around(16, 0)), what="input", max_size=100)


def test_maps_and_tags_count_like_arrays() -> None:
    """A map's values and a tag's content are one level deeper, like array elements."""
    deep: Any = []
    for _ in range(15):
        deep = {"a": deep}
    assert loads(dumps(deep), what="input", max_size=200) == deep
    with pytest.raises(MalformedError, match="deeper than 16"):
        loads(dumps({"a": deep}), what="input", max_size=200)
    with pytest.raises(MalformedError, match="deeper than 16"):
        loads(dumps(cbor2.CBORTag(18, _nest(16))), what="input", max_size=100)


def test_a_configuration_nested_to_the_limit_goes_through(stage: Stage) -> None:
    """In a note the payload map is depth 1 and the configuration 2: 14 arrays under one key is the most."""
    session = stage.prove()
    config = {"v": _nest(14)}
    note = session.make_note(signer=stage.home, issued_at=NOW_TS, config=config)
    accepted = stage.accept(note)
    assert accepted.config == config
    session.read_receipt(accepted.receipt)


def test_a_configuration_nested_one_deeper_is_refused_by_both_sides(stage: Stage) -> None:
    """One level more: the registrar does not build it (M4), the device refuses it (N2, E4)."""
    session = stage.prove()
    too_deep = {"v": _nest(15)}
    expect_error(
        MalformedError,
        "malformed",
        None,
        lambda: session.make_note(signer=stage.home, issued_at=NOW_TS, config=too_deep),
    )
    assert session.note is None
    payload = stage.note_payload(session)
    payload[Label.CONFIG] = too_deep
    note = cose.sign(payload, ContentType.NOTE, stage.home, kid=stage.home_kid)
    expect_error(MalformedError, "malformed", None, lambda: stage.accept(note))
    stage.good_note_still_accepted(session)


# --- The configuration's data model (N7a, M4) ---------------------------------------------------------------


def test_every_kind_of_value_the_model_allows_goes_through(stage: Stage) -> None:
    """Text-keyed maps, arrays, integers of major types 0 and 1 at both ends, text, bytes, true/false/null."""
    config = {
        "largest": 2**64 - 1,
        "smallest": -(2**64),
        "zero": 0,
        "name": "Porch lamp",
        "blob": b"\x00\xff",
        "on": True,
        "off": False,
        "unset": None,
        "list": [1, "two", [None, b""]],
        "map": {"inner": {"deep": -1}, "": []},
    }
    session = stage.prove()
    accepted = stage.accept(session.make_note(signer=stage.home, issued_at=NOW_TS, config=config))
    assert accepted.config == config
    session.read_receipt(accepted.receipt)


_OUTSIDE_THE_MODEL = {
    # Accepted before (cbor2 decoded them and they re-encoded to the same bytes):
    "half-float": "f93e00",
    "double": "fb3ff199999999999a",
    "tag-18-cose": "d28440a04040",
    "tag-24-embedded-cbor": "d818410a",
    "tag-258-set": "d9010282" + "0102",
    "bignum-2^64": "c249010000000000000000",
    "negative-bignum": "c349010000000000000000",
    "undefined": "f7",
    "simple-16": "f0",
    "nested-integer-key": "a1" + "01" + "6178",
    "nested-mixed-keys-length-first": "a2" + "2000" + "181800",
    # Refused before too, as non-deterministic (E6): pinned, they stay malformed.
    "tag-1-epoch": "c11a00000001",
    "tag-100-date": "d86400",
    "small-bignum": "c24101",
    "nested-mixed-keys-bytewise": "a2" + "181800" + "2000",
    "nested-text-keys-unsorted": "a2" + "616200" + "616100",
}


@pytest.mark.parametrize("fragment", list(_OUTSIDE_THE_MODEL.values()), ids=list(_OUTSIDE_THE_MODEL))
def test_the_device_refuses_values_outside_the_model(stage: Stage, fragment: str) -> None:
    """Anything but the model's kinds, at any depth, is malformed (N7a); the session stays open."""
    session = stage.prove()
    note = _note_with_raw_config(stage, session, bytes.fromhex(fragment))
    expect_error(MalformedError, "malformed", None, lambda: stage.accept(note))
    stage.good_note_still_accepted(session)


def test_the_model_is_checked_after_the_session_rules(stage: Stage) -> None:
    """N7a comes after N4: a float in the configuration of a note for no open session is unknown_session."""
    session = stage.prove()
    note = _note_with_raw_config(stage, session, bytes.fromhex("f93e00"))
    stage.accept(session.make_note(signer=stage.home, issued_at=NOW_TS))
    expect_error(UnknownSessionError, "unknown_session", None, lambda: stage.accept(note))


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        2**64,
        -(2**64) - 1,
        cbor2.CBORTag(24, b"\x0a"),
        cbor2.undefined,
        cbor2.CBORSimpleValue(16),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        {1, 2},
        {1: "one"},
        {"inner": {1: "one"}},
        "\ud800",
    ],
    ids=[
        "float",
        "bignum",
        "negative-bignum",
        "tag-24",
        "undefined",
        "simple-16",
        "datetime",
        "set",
        "integer-key",
        "nested-integer-key",
        "lone-surrogate",
    ],
)
def test_the_registrar_never_builds_a_value_outside_the_model(stage: Stage, value: Any) -> None:
    """M4 checks what N7a checks, before signing: nothing is built, and a correct note still can be."""
    session = stage.prove()
    expect_error(
        MalformedError,
        "malformed",
        None,
        lambda: session.make_note(signer=stage.home, issued_at=NOW_TS, config={"v": value}),
    )
    assert session.note is None
    stage.good_note_still_accepted(session)


def test_a_configuration_that_is_not_a_map_is_not_built(stage: Stage) -> None:
    """The configuration itself is a map (label 17); the registrar refuses a list in its place."""
    session = stage.prove()
    expect_error(
        MalformedError,
        "malformed",
        None,
        lambda: session.make_note(signer=stage.home, issued_at=NOW_TS, config=["a"]),  # type: ignore[arg-type]
    )
    assert session.note is None

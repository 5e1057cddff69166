"""Deterministic CBOR, map keys, and ES256 signatures in low-S form: one encoding per object."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.const import ContentType
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import HomeKeyStringError, MalformedError
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_key
from custom_components.autoadd.protocol.keys import KeyType, fingerprint
from tests.factory import fixed_key

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.mark.parametrize(
    "key",
    [True, False, 1.0, None, b"bytes"],
    ids=["true", "false", "float", "null", "bytes"],
)
def test_map_keys_are_integers_or_text(key: Any) -> None:
    """`true` or `1.0` would read as label 1 in some languages: such keys are malformed."""
    with pytest.raises(MalformedError, match="not an integer or text"):
        loads(cbor2.dumps({key: 1}, canonical=True), what="map", max_size=100)


def test_nested_map_keys_are_checked_too() -> None:
    """The key rule holds at any depth."""
    with pytest.raises(MalformedError):
        loads(dumps({1: [{True: 2}]}), what="map", max_size=100)


def test_integer_and_text_keys_are_fine() -> None:
    """Integer and text keys decode as they are."""
    assert loads(dumps({1: {"a": 2}}), what="map", max_size=100) == {1: {"a": 2}}


def _signature(data: bytes) -> int:
    return int.from_bytes(cbor2.loads(data).value[3][32:])


def test_es256_signatures_are_made_in_low_s_form() -> None:
    """Every ES256 signature the core makes has s <= n/2."""
    key = fixed_key("low s", KeyType.P256)
    for n in range(24):
        signed = cose.sign({1: n}, ContentType.LINK, key, kid=fingerprint(key.public_key()))
        assert _signature(signed) <= P256_ORDER // 2


def test_high_s_twin_of_a_signature_is_refused() -> None:
    """(r, n - s) verifies mathematically, but it is a second encoding: refused as malformed."""
    key = fixed_key("high s", KeyType.P256)
    signed = cose.sign({1: 1}, ContentType.LINK, key, kid=fingerprint(key.public_key()))
    tag = cbor2.loads(signed)
    signature = tag.value[3]
    tag.value[3] = signature[:32] + (P256_ORDER - int.from_bytes(signature[32:])).to_bytes(32)
    twin = cbor2.dumps(tag, canonical=True)
    obj = cose.parse(twin, ContentType.LINK, max_size=4096, what="twin")
    with pytest.raises(MalformedError, match="low-S"):
        cose.verify(obj, key.public_key(), what="twin")
    cose.verify(
        cose.parse(signed, ContentType.LINK, max_size=4096, what="link"), key.public_key(), what="link"
    )


@pytest.mark.parametrize("letter", ["\u017f", "\u0131", "\u00df", "\uff21"])
def test_home_key_string_refuses_look_alike_letters(letter: str) -> None:
    """Non-ASCII letters that upper-case to A-Z are refused, naming their position."""
    text = format_home_key(fixed_key("ascii").public_key())
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key(text[:10] + letter + text[11:])
    assert err.value.reason == "characters"
    assert "character 11" in err.value.detail


# --- Containers cbor2 builds from tags, and what decoder errors may say ----------------------------------


def test_map_keys_inside_a_set_are_checked() -> None:
    """A set (tag 258) is a container like an array: a float key in a map inside it is refused (E5).

    cbor2 hands back a set of frozen maps, which the key rule used not to look into.
    """
    data = dumps({1: cbor2.CBORTag(258, [{1.5: 2}])})
    with pytest.raises(MalformedError, match="not an integer or text"):
        loads(data, what="map", max_size=100)


def test_nesting_inside_a_set_counts() -> None:
    """Arrays inside a set become tuples: their nesting counts against the 16 levels all the same (E4)."""
    deep: object = 0
    for _ in range(20):
        deep = [deep]
    data = dumps(cbor2.CBORTag(258, [deep]))
    with pytest.raises(MalformedError, match="deeper than 16"):
        loads(data, what="set", max_size=100)


def test_a_set_within_the_rules_still_decodes() -> None:
    """E1-E6 reach into sets but do not refuse them (a configuration's data model does, N7a)."""
    value = loads(dumps({"tags": cbor2.CBORTag(258, [1, 2])}), what="map", max_size=100)
    assert value == {"tags": {1, 2}}


@pytest.mark.parametrize(
    "data",
    [
        dumps(cbor2.CBORTag(0, "SECRET-not-a-date")),  # cbor2 quotes the text in its error
        dumps(cbor2.CBORTag(1, 10**5000)),  # an epoch date no one can format
        dumps({cbor2.CBORTag(99, 10**5000): 1}),  # a map key no one can format
    ],
    ids=["date-text", "huge-epoch", "huge-tagged-key"],
)
def test_decoder_errors_quote_nothing_from_the_input(data: bytes) -> None:
    """What cbor2 found wrong is named by its kind only: its message may quote (or choke on) the input."""
    with pytest.raises(MalformedError) as caught:
        loads(data, what="input", max_size=4096)
    text = str(caught.value)
    assert "SECRET" not in text
    assert "0000000000" not in text
    assert len(text) < 120

"""The recovery key string (§5.1): the owner's printed copy of the home's recovery private key."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, strategies as st
import pytest

from custom_components.autoadd.protocol.errors import HomeKeyStringError, RecoveryKeyStringError
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_key, parse_home_keys
from custom_components.autoadd.protocol.keys import KeyType, private_key_to_pem, public_key_to_bytes
from custom_components.autoadd.protocol.recovery_key import (
    LENGTH,
    PREFIX,
    format_recovery_key,
    parse_recovery_key,
)
from tests.factory import fixed_key

REASONS = {"prefix", "characters", "length", "checksum", "key_type", "key"}


def _reason(text: str) -> str:
    with pytest.raises(RecoveryKeyStringError) as err:
        parse_recovery_key(text)
    assert err.value.code == "invalid_recovery_key_string"
    return err.value.reason


def _string(body: bytes, domain: bytes = b"AutoAdd recovery key") -> str:
    checksum = hashlib.sha256(domain + body).digest()[:4]
    return PREFIX + base64.b32encode(body + checksum).decode().rstrip("=")


@pytest.mark.parametrize("key_type", list(KeyType))
def test_round_trip_in_any_spelling(key_type: KeyType) -> None:
    key = fixed_key("recovery", key_type)
    text = format_recovery_key(key)
    assert text.startswith("AARK1-")
    assert len(text.replace("-", "")) == len(PREFIX) + LENGTH
    for spelling in (text, text.lower(), text.replace("-", " "), text.replace("-", "")):
        assert private_key_to_pem(parse_recovery_key(spelling)) == private_key_to_pem(key)


def test_every_single_character_typo_is_caught() -> None:
    text = format_recovery_key(fixed_key("recovery")).replace("-", "")
    for position in range(len(PREFIX), len(text)):
        for char in "AB":
            if char != text[position]:
                assert _reason(text[:position] + char + text[position + 1 :]) == "checksum"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "prefix"),
        ("AAHK1-AAAAA", "prefix"),  # a home key string is not a recovery key string
        ("AARK1-AAAA0", "characters"),
        ("AARK1-\u017fAAAA", "characters"),
        ("AARK1-AAAAA", "length"),
    ],
)
def test_refusals_by_reason(text: str, reason: str) -> None:
    assert _reason(text) == reason


def test_key_type_and_range() -> None:
    assert _reason(_string(b"\x03" + bytes(32))) == "key_type"
    assert _reason(_string(b"\x02" + bytes(32))) == "key"  # P-256 scalar 0
    assert _reason(_string(b"\x02" + b"\xff" * 32)) == "key"  # above the group order


def test_the_domains_keep_the_two_strings_apart() -> None:
    """A recovery key body with a home key string's checksum fails the checksum, and the other way round."""
    body = b"\x01" + bytes(range(32))
    assert _reason(_string(body, b"AutoAdd home key")) == "checksum"
    home = format_home_key(fixed_key("home").public_key())
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key("AARK1" + home[5:])
    assert err.value.reason == "prefix"


def test_the_public_part_is_what_the_home_key_string_names() -> None:
    key = fixed_key("recovery")
    home = fixed_key("home")
    text = format_home_key(home.public_key(), parse_recovery_key(format_recovery_key(key)).public_key())

    assert public_key_to_bytes(parse_home_keys(text)[1]) == public_key_to_bytes(key.public_key())


@given(
    st.text(max_size=200)
    | st.builds(lambda s: "AARK1" + s, st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567-", max_size=80))
)
def test_any_text_parses_or_says_why(text: str) -> None:
    """Whatever is typed, the recovery key string parser returns a key or its own error, never another."""
    reason = "parsed"
    try:
        parse_recovery_key(text)
    except RecoveryKeyStringError as err:
        reason = err.reason
    assert reason in {"parsed", *REASONS}


@given(
    st.builds(
        lambda s: "AAHK2" + s,
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=110, max_size=118),
    )
)
def test_any_two_key_string_parses_or_says_why(text: str) -> None:
    """The same for home key strings naming two keys."""
    reason, count = "parsed", 2
    try:
        count = len(parse_home_keys(text))
    except HomeKeyStringError as err:
        reason = err.reason
    assert reason in {"parsed", *REASONS}
    assert count == 2

"""Home key strings: `AAHK1-` and base32 of type, compact key and checksum; every mistake is named."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from custom_components.autoadd.protocol import home_key
from custom_components.autoadd.protocol.errors import HomeKeyStringError
from custom_components.autoadd.protocol.home_key import (
    PREFIX,
    format_home_key,
    parse_home_key,
    parse_home_keys,
)
from custom_components.autoadd.protocol.keys import KeyType, PublicKey, key_type_of, public_key_to_bytes
from tests.factory import fixed_key

#: QR code alphanumeric mode: 0-9, A-Z, space and $%*+-./:
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _public(key_type: KeyType, label: str = "home") -> PublicKey:
    return fixed_key(label, key_type).public_key()


def _string_for_body(body: bytes) -> str:
    """A home key string for any body (type byte and key), with a correct checksum."""
    text = base64.b32encode(body + home_key._checksum(body)).decode("ascii").rstrip("=")
    return PREFIX + "-" + "-".join(text[i : i + 5] for i in range(0, len(text), 5))


def _reason(text: str) -> str:
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key(text)
    assert err.value.code == "invalid_home_key_string"
    return err.value.reason


# --- Round trips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key_type", "length"), [(KeyType.ED25519, 60), (KeyType.P256, 61)])
def test_round_trip(key_type: KeyType, length: int) -> None:
    """A home key string reads back as exactly the key it was made from."""
    public = _public(key_type)
    text = format_home_key(public)
    assert text.startswith("AAHK1-")
    assert len(text.replace("-", "")) == len(PREFIX) + length
    parsed = parse_home_key(text)
    assert key_type_of(parsed) is key_type
    assert public_key_to_bytes(parsed) == public_key_to_bytes(public)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_groups_of_five(key_type: KeyType) -> None:
    """After the prefix, the string is in dash-separated groups of five (the last may be shorter)."""
    groups = format_home_key(_public(key_type)).split("-")
    assert groups[0] == PREFIX
    assert all(len(group) == 5 for group in groups[1:-1])
    assert 1 <= len(groups[-1]) <= 5


@pytest.mark.parametrize("key_type", list(KeyType))
def test_only_qr_alphanumeric_characters(key_type: KeyType) -> None:
    """Every character is in QR's alphanumeric set, so the string makes a small QR code as it is."""
    for label in ("a", "b", "c", "d"):
        text = format_home_key(_public(key_type, label))
        assert set(text) <= QR_ALPHANUMERIC
        assert re.fullmatch(r"AAHK1(-[A-Z2-7]{1,5})+", text)


def test_string_is_deterministic_and_distinct() -> None:
    """One key has one string; different keys have different strings."""
    assert format_home_key(_public(KeyType.ED25519)) == format_home_key(_public(KeyType.ED25519))
    assert format_home_key(_public(KeyType.ED25519, "x")) != format_home_key(_public(KeyType.ED25519, "y"))


@pytest.mark.parametrize("key_type", list(KeyType))
@pytest.mark.parametrize(
    "spell",
    [
        str.lower,
        lambda s: s.replace("-", ""),
        lambda s: s.replace("-", " "),
        lambda s: "  " + s.replace("-", "\n") + "\t",
        lambda s: s.replace("-", "--").swapcase(),
        lambda s: " ".join(s.replace("-", "")),
        lambda s: "a-a-h-k-1" + s[5:],
    ],
    ids=[
        "lower",
        "no-dashes",
        "spaces",
        "whitespace",
        "double-dashes-mixed-case",
        "spaced-out",
        "dashes-in-prefix",
    ],
)
def test_case_space_and_dash_insensitive(key_type: KeyType, spell: object) -> None:
    """Case, spaces (any whitespace) and dashes do not matter when a string is read back."""
    public = _public(key_type)
    assert callable(spell)
    parsed = parse_home_key(spell(format_home_key(public)))
    assert public_key_to_bytes(parsed) == public_key_to_bytes(public)


# --- Refusals, each with its reason ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "AAHK", "AAHK3-AAAAA", "BAHK1-AAAAA", "AAKH1-AAAAA", "1AAHK-AAAAA"])
def test_prefix(text: str) -> None:
    """A string that does not start with AAHK1 or AAHK2 is refused with reason `prefix`."""
    assert _reason(text) == "prefix"


def test_prefix_of_a_valid_key_with_another_version() -> None:
    """A valid body behind another prefix is still refused with reason `prefix`."""
    text = format_home_key(_public(KeyType.ED25519))
    assert _reason("AAHK3" + text[5:]) == "prefix"
    assert _reason("AAHK2" + text[5:]) == "prefix"  # a one-key reader refuses AAHK2 before reading it
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_keys("AAHK2" + text[5:])
    assert err.value.reason == "length"  # one key's body where two are named


@pytest.mark.parametrize(
    ("char", "position"), [("0", 1), ("1", 7), ("8", 30), ("9", 59), ("=", 60), ("!", 12)]
)
def test_characters_names_the_position(char: str, position: int) -> None:
    """A character outside A-Z and 2-7 is refused with reason `characters`, naming it and its position."""
    data = format_home_key(_public(KeyType.ED25519)).replace("-", "")[len(PREFIX) :]
    bad = data[: position - 1] + char + data[position:]
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key(PREFIX + bad)
    assert err.value.reason == "characters"
    assert f"character {position} after the prefix, {char!r}" in err.value.detail


def test_characters_position_ignores_dashes_and_spaces() -> None:
    """Positions count characters after the prefix, not the dashes or spaces between groups."""
    text = format_home_key(_public(KeyType.ED25519))
    bad = text[:12] + "0" + text[13:]  # AAHK1-ABCDE-0...: the sixth character after the prefix
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key(bad)
    assert err.value.reason == "characters"
    assert "character 6 after the prefix" in err.value.detail


@pytest.mark.parametrize("length", [0, 1, 8, 40, 59, 62, 64, 100])
def test_length(length: int) -> None:
    """A string of another length than 60 (Ed25519) or 61 (P-256) characters is refused: `length`."""
    assert _reason(PREFIX + "A" * length) == "length"


@pytest.mark.parametrize("key_type", list(KeyType))
def test_length_of_a_truncated_string(key_type: KeyType) -> None:
    """A real string with a group of five lost is refused with reason `length`."""
    groups = format_home_key(_public(key_type)).split("-")
    del groups[-2]
    assert _reason("-".join(groups)) == "length"


def test_length_says_which_lengths_are_allowed() -> None:
    """The length error tells both allowed lengths."""
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key(PREFIX + "A" * 10)
    assert err.value.reason == "length"
    assert "10 characters" in err.value.detail
    assert "60 or 61" in err.value.detail


def test_key_length_must_match_key_type() -> None:
    """An Ed25519 type byte with 33 key bytes (a P-256 length) is refused with reason `length`."""
    assert _reason(_string_for_body(bytes([0x01]) + bytes(33))) == "length"


@pytest.mark.parametrize("key_type", list(KeyType))
def test_checksum_catches_every_single_character_typo(key_type: KeyType) -> None:
    """Replacing any one character, at any position, by any other base32 character is caught."""
    data = format_home_key(_public(key_type)).replace("-", "")[len(PREFIX) :]
    for position, original in enumerate(data):
        for char in BASE32:
            if char == original:
                continue
            typo = PREFIX + data[:position] + char + data[position + 1 :]
            with pytest.raises(HomeKeyStringError) as err:
                parse_home_key(typo)
            assert err.value.reason == "checksum", (position, char)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_checksum_catches_swapped_neighbours(key_type: KeyType) -> None:
    """Swapping two different neighbouring characters is caught."""
    data = format_home_key(_public(key_type)).replace("-", "")[len(PREFIX) :]
    for position in range(len(data) - 1):
        if data[position] == data[position + 1]:
            continue
        swapped = data[:position] + data[position + 1] + data[position] + data[position + 2 :]
        assert _reason(PREFIX + swapped) == "checksum", position


def test_checksum_is_domain_separated_sha256() -> None:
    """The checksum is the first 4 bytes of SHA-256("AutoAdd home key" || type || key)."""
    public = _public(KeyType.ED25519)
    raw = base64.b32decode(format_home_key(public).replace("-", "")[len(PREFIX) :] + "====")
    body, checksum = raw[:-4], raw[-4:]
    assert body[0] == 0x01
    assert checksum == hashlib.sha256(b"AutoAdd home key" + body).digest()[:4]


@pytest.mark.parametrize(("type_byte", "size"), [(0x00, 32), (0x03, 32), (0xFF, 33)])
def test_key_type(type_byte: int, size: int) -> None:
    """An unknown key type byte, with a correct checksum, is refused with reason `key_type`."""
    assert _reason(_string_for_body(bytes([type_byte]) + bytes(size))) == "key_type"


def test_key_type_p256_byte_with_ed25519_length() -> None:
    """A P-256 type byte with 32 key bytes is refused (`length`: the key does not fit its type)."""
    assert _reason(_string_for_body(bytes([0x02]) + bytes(32))) == "length"


@pytest.mark.parametrize(
    "compact",
    [
        bytes([0x02]) + (1).to_bytes(32, "big"),  # x = 1: no point of P-256 has it
        bytes([0x05]) + bytes(range(32)),  # not a compressed-point prefix
        bytes([0x03]) + b"\xff" * 32,  # x >= p
    ],
    ids=["x-not-on-curve", "bad-prefix", "x-too-large"],
)
def test_key_not_a_valid_point(compact: bytes) -> None:
    """A P-256 key that is not a point on the curve, with a correct checksum, is refused: `key`."""
    assert _reason(_string_for_body(bytes([0x02]) + compact)) == "key"


def test_error_message_carries_code_and_detail() -> None:
    """The error's text starts with its code, and the reason is kept apart for the UI."""
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_key("hello")
    assert str(err.value).startswith("invalid_home_key_string: ")
    assert err.value.reason == "prefix"
    assert err.value.index is None


# --- AAHK2: the home key and the recovery key -------------------------------------------------------------


@pytest.mark.parametrize("home_type", list(KeyType))
@pytest.mark.parametrize("recovery_type", list(KeyType))
def test_a_string_naming_a_recovery_key_round_trips(home_type: KeyType, recovery_type: KeyType) -> None:
    """AAHK2 names the home key, then the recovery key; every spelling AAHK1 allows parses."""
    home, recovery = _public(home_type), _public(recovery_type, "recovery")
    text = format_home_key(home, recovery)
    assert text.startswith("AAHK2-")
    assert len(text.replace("-", "")) - 5 in (112, 114, 116)
    parsed = parse_home_keys(text.lower().replace("-", " "))
    assert [public_key_to_bytes(k) for k in parsed] == [
        public_key_to_bytes(home),
        public_key_to_bytes(recovery),
    ]
    assert [public_key_to_bytes(k) for k in parse_home_keys(format_home_key(home))] == [
        public_key_to_bytes(home)
    ]


def test_one_key_is_asked_for_where_a_recovery_key_is_named() -> None:
    """parse_home_key (one key) refuses AAHK2 rather than dropping the recovery key."""
    text = format_home_key(_public(KeyType.ED25519), _public(KeyType.ED25519, "recovery"))
    assert _reason(text) == "prefix"


def _two_key_reason(body: bytes, prefix: str = "AAHK2") -> str:
    text = base64.b32encode(body + home_key._checksum(body)).decode("ascii").rstrip("=")
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_keys(prefix + text)
    return err.value.reason


def test_two_key_strings_are_refused_with_their_reason() -> None:
    """The same key twice; an unknown second type; a checksum typo; a body of three keys' length."""
    key = bytes.fromhex("01") + bytes(range(32))
    key_b = bytes.fromhex("01") + bytes(range(1, 33))
    assert _two_key_reason(key + key) == "key"
    assert _two_key_reason(key + b"\x03" + key_b[1:]) == "key_type"
    assert _two_key_reason(key + key_b + key_b) == "length"
    good = format_home_key(_public(KeyType.ED25519), _public(KeyType.ED25519, "recovery")).replace("-", "")
    typo = good[:40] + ("A" if good[40] != "A" else "B") + good[41:]
    with pytest.raises(HomeKeyStringError) as err:
        parse_home_keys(typo)
    assert err.value.reason == "checksum"

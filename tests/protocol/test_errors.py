"""Error codes are part of the contract: one per class, stable, and every class is in the table."""

from __future__ import annotations

import inspect

import pytest

from custom_components.autoadd.protocol import errors
from custom_components.autoadd.protocol.errors import (
    ERRORS_BY_CODE,
    AutoAddError,
    HomeKeyStringError,
    MalformedError,
)

#: The documented codes (docs/protocol.md, "Error codes"). Changing one breaks every peer: update with care.
CODES = {
    "malformed": "MalformedError",
    "too_large": "TooLargeError",
    "wrong_content_type": "WrongContentTypeError",
    "unsupported_version": "UnsupportedVersionError",
    "unsupported_algorithm": "UnsupportedAlgorithmError",
    "bad_signature": "BadSignatureError",
    "untrusted_manufacturer": "UntrustedManufacturerError",
    "wrong_manufacturer_root": "WrongManufacturerRootError",
    "manufacturer_mismatch": "ManufacturerMismatchError",
    "idevid_mismatch": "IDevIDMismatchError",
    "invalid_key": "InvalidKeyError",
    "invalid_home_key_string": "HomeKeyStringError",
    "invalid_recovery_key_string": "RecoveryKeyStringError",
    "invalid_claim_code_string": "ClaimCodeStringError",
    "wrong_claim_code": "WrongClaimCodeError",
    "claim_unproven": "ClaimUnprovenError",
    "already_claimed": "AlreadyClaimedError",
    "claim_wait": "ClaimWaitError",
    "invalid_owners": "OwnersError",
    "signer_not_owner": "SignerNotOwnerError",
    "wrong_previous_hash": "PreviousHashError",
    "wrong_device": "WrongDeviceError",
    "wrong_sequence": "SequenceError",
    "fork": "ForkError",
    "rollback": "RollbackError",
    "not_owner": "NotOwnerError",
    "nonce_mismatch": "NonceMismatchError",
    "unknown_session": "UnknownSessionError",
    "chain_head_mismatch": "ChainHeadMismatchError",
    "handshake_state": "HandshakeStateError",
}

#: The codes that point at an attack or a broken party (docs/protocol.md, "suspicious").
SUSPICIOUS = {
    "wrong_content_type",
    "unsupported_algorithm",
    "bad_signature",
    "manufacturer_mismatch",
    "idevid_mismatch",
    "signer_not_owner",
    "wrong_previous_hash",
    "wrong_device",
    "wrong_sequence",
    "fork",
    "rollback",
    "nonce_mismatch",
    "chain_head_mismatch",
    "claim_unproven",
}


def _error_classes() -> list[type[AutoAddError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, AutoAddError) and cls is not AutoAddError
    ]


def test_code_list_snapshot() -> None:
    """The full list of codes is exactly the documented one: a new, renamed or dropped code fails here."""
    assert set(ERRORS_BY_CODE) == {
        "malformed",
        "too_large",
        "wrong_content_type",
        "unsupported_version",
        "unsupported_algorithm",
        "bad_signature",
        "untrusted_manufacturer",
        "wrong_manufacturer_root",
        "manufacturer_mismatch",
        "idevid_mismatch",
        "invalid_key",
        "invalid_home_key_string",
        "invalid_recovery_key_string",
        "invalid_claim_code_string",
        "wrong_claim_code",
        "claim_unproven",
        "already_claimed",
        "claim_wait",
        "invalid_owners",
        "signer_not_owner",
        "wrong_previous_hash",
        "wrong_device",
        "wrong_sequence",
        "fork",
        "rollback",
        "not_owner",
        "nonce_mismatch",
        "unknown_session",
        "chain_head_mismatch",
        "handshake_state",
    }


def test_each_code_names_its_class() -> None:
    """Each code maps to the class documented for it, and that class carries the code."""
    assert {code: cls.__name__ for code, cls in ERRORS_BY_CODE.items()} == CODES
    for code, cls in ERRORS_BY_CODE.items():
        assert cls.code == code


def test_codes_are_unique() -> None:
    """No two classes share a code, and no class uses the base class's code."""
    classes = _error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert AutoAddError.code not in codes


def test_every_error_class_is_in_the_table() -> None:
    """Every error class of the module is in the table, so a peer's code can always be mapped back."""
    assert sorted(cls.__name__ for cls in _error_classes()) == sorted(CODES.values())
    assert set(ERRORS_BY_CODE.values()) == set(_error_classes())


def test_codes_are_lower_snake_case() -> None:
    """Codes are short lower_snake_case words, safe in HTTP bodies and logs."""
    for code in ERRORS_BY_CODE:
        assert code.replace("_", "").isalpha()
        assert code == code.lower()


def test_suspicious_snapshot() -> None:
    """Which errors count as suspicious is part of the contract too."""
    assert {code for code, cls in ERRORS_BY_CODE.items() if cls.suspicious} == SUSPICIOUS
    assert AutoAddError.suspicious is False


@pytest.mark.parametrize("cls", list(ERRORS_BY_CODE.values()), ids=list(ERRORS_BY_CODE))
def test_message_starts_with_code(cls: type[AutoAddError]) -> None:
    """An error's text starts with its code; a link index, when given, is named at the end."""
    strings = issubclass(cls, HomeKeyStringError)
    err = cls("prefix", "bad") if strings else cls("bad", index=3)  # type: ignore[call-arg,arg-type]
    assert str(err).startswith(f"{cls.code}: bad")
    assert isinstance(err, AutoAddError)
    if not strings:
        assert err.index == 3
        assert str(err).endswith("(link 3)")


def test_error_without_index() -> None:
    """Without an index, the message is just code and detail."""
    err = MalformedError("not CBOR")
    assert err.index is None
    assert err.detail == "not CBOR"
    assert str(err) == "malformed: not CBOR"


def test_home_key_error_keeps_its_reason() -> None:
    """The home key string error carries its reason apart from the message."""
    err = HomeKeyStringError("checksum", "a character is mistyped")
    assert err.reason == "checksum"
    assert err.detail == "a character is mistyped"
    assert err.index is None


# --- describe: how a received value may appear in an error message ----------------------------------------


class _Hostile:
    """An object every one of whose dunder methods fails."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __len__(self) -> int:
        raise RuntimeError("len")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (-8, "-8"),
        (2**64, str(2**64)),
        (10**5000, "an integer of 16610 bits"),
        (-(10**5000), "an integer of 16610 bits"),
        (True, "True"),
        (None, "None"),
        ("x" * 5000, "text of 5000 characters"),
        (b"\x00" * 7, "7 bytes"),
        (1.5, "a value of type float"),
        (ValueError("SECRET " + "x" * 200), "ValueError"),
        (_Hostile(), "a value of type _Hostile"),
    ],
    ids=[
        "small",
        "alg",
        "2^64",
        "huge",
        "negative-huge",
        "true",
        "null",
        "text",
        "bytes",
        "float",
        "error",
        "hostile",
    ],
)
def test_describe_names_kinds_and_sizes_only(value: object, expected: str) -> None:
    """Small integers are written out; everything else by type and size, never its content."""
    assert errors.describe(value) == expected


def test_describe_is_short_and_never_fails() -> None:
    """Even for a type with a very long name, or one whose type cannot be read."""

    class ATypeWithAVeryLongNameThatGoesOnAndOnAndOnAndOn:
        pass

    assert len(errors.describe(ATypeWithAVeryLongNameThatGoesOnAndOnAndOnAndOn())) <= 40

    class Shapeshifter:
        @property  # type: ignore[misc]
        def __class__(self) -> type:  # isinstance reads it
            raise RuntimeError("no class")

    assert errors.describe(Shapeshifter()) == "a value"

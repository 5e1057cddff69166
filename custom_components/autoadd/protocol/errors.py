"""The protocol's errors: one hierarchy, each class with a stable machine-readable code.

Codes are part of the contract (docs/protocol.md, "Error codes"): the registrar maps them to what it shows
the owner, the device sends them back in its HTTP error bodies, and they never change meaning.
"""

from __future__ import annotations

from typing import ClassVar

#: The widest integer `describe` writes out: any uint the contract allows, and a little more.
_MAX_SHOWN_INT = 2**64
_MAX_DESCRIPTION = 40


def describe(value: object) -> str:
    """A short description of a received value (or a library's exception about one) for an error message.

    Error details reach logs, records, the UI and peers' error bodies, so they never carry what a sender
    chose: a small integer (a label, an algorithm number) is written out, anything else only by its type
    and size. A 5 000-digit integer cannot even be formatted (CPython refuses), so nothing else in the
    core formats a received value; this never fails and never exceeds a few dozen characters.
    """
    try:
        text = _description(value)
    except Exception:  # an object whose type or size cannot be read: say nothing about it
        return "a value"
    return text[:_MAX_DESCRIPTION]


def _description(value: object) -> str:
    if value is None or isinstance(value, bool):
        description = repr(value)
    elif isinstance(value, int):
        small = -_MAX_SHOWN_INT <= value <= _MAX_SHOWN_INT
        description = str(value) if small else f"an integer of {value.bit_length()} bits"
    elif isinstance(value, str):
        description = f"text of {len(value)} characters"
    elif isinstance(value, bytes | bytearray):
        description = f"{len(value)} bytes"
    elif isinstance(value, BaseException):
        description = type(value).__name__  # its message may quote the input: only its kind
    else:
        description = f"a value of type {type(value).__name__}"
    return description


class AutoAddError(Exception):
    """Base of every error the protocol core raises."""

    code: ClassVar[str] = "error"
    #: True when the failure points at an attack or a broken party rather than bad luck.
    suspicious: ClassVar[bool] = False

    def __init__(self, detail: str, *, index: int | None = None) -> None:
        """Describe the failure; `index` names the chain link (or certificate) at fault."""
        self.detail = detail
        self.index = index
        where = f" (link {index})" if index is not None else ""
        super().__init__(f"{self.code}: {detail}{where}")


# --- Input that is not what the contract says -----------------------------------------------------------


class MalformedError(AutoAddError):
    """Bytes that are not the CBOR, COSE or field layout the contract defines."""

    code = "malformed"


class TooLargeError(AutoAddError):
    """Input over one of the documented size limits."""

    code = "too_large"


class WrongContentTypeError(AutoAddError):
    """A signed object of another kind than the one expected (cross-message reuse)."""

    code = "wrong_content_type"
    suspicious = True


class UnsupportedVersionError(AutoAddError):
    """A protocol version this implementation does not speak."""

    code = "unsupported_version"


class UnsupportedAlgorithmError(AutoAddError):
    """An algorithm or key type outside the allow-list (EdDSA with Ed25519, ES256 with P-256)."""

    code = "unsupported_algorithm"
    suspicious = True


# --- Signatures and identities --------------------------------------------------------------------------


class BadSignatureError(AutoAddError):
    """A signature that does not verify with the key it must come from."""

    code = "bad_signature"
    suspicious = True


class UntrustedManufacturerError(AutoAddError):
    """A certificate chain that does not lead to a trusted manufacturer root."""

    code = "untrusted_manufacturer"


class WrongManufacturerRootError(UntrustedManufacturerError):
    """A certificate chain naming a trusted manufacturer root as its issuer (its subject, byte for byte)
    that did not issue it: a counterfeit, or a second root of that manufacturer's this home lacks (X8)."""

    code = "wrong_manufacturer_root"


class ManufacturerMismatchError(AutoAddError):
    """An invoice signed under another manufacturer root than the device's IDevID."""

    code = "manufacturer_mismatch"
    suspicious = True


class IDevIDMismatchError(AutoAddError):
    """An invoice whose device identifier or certificate hash is not the device's IDevID."""

    code = "idevid_mismatch"
    suspicious = True


class InvalidKeyError(AutoAddError):
    """Key material that cannot be loaded or is not an Ed25519 or P-256 key."""

    code = "invalid_key"


class HomeKeyStringError(AutoAddError):
    """A home key string that does not parse; `reason` says what is wrong with it."""

    code = "invalid_home_key_string"

    def __init__(self, reason: str, detail: str) -> None:
        """`reason` is one of: prefix, characters, length, checksum, key_type, key."""
        self.reason = reason
        super().__init__(detail)


class RecoveryKeyStringError(HomeKeyStringError):
    """A recovery key string that does not parse; `reason` as for a home key string."""

    code = "invalid_recovery_key_string"


class ClaimCodeStringError(HomeKeyStringError):
    """A claim code string that does not parse; `reason` as for a home key string."""

    code = "invalid_claim_code_string"


# --- Claim codes (§14.9) ----------------------------------------------------------------------------------


class WrongClaimCodeError(AutoAddError):
    """The claim run failed: the code was wrong (or the peer's share unusable). Never says how close."""

    code = "wrong_claim_code"


class ClaimUnprovenError(AutoAddError):
    """The device answered a claim run with a claim link but its confirmation does not verify: it does
    not know the code (a device pretending to be the one the code is printed on). Local to the registrar."""

    code = "claim_unproven"
    suspicious = True


class AlreadyClaimedError(AutoAddError):
    """A claim code run for a device whose chain already names owners."""

    code = "already_claimed"


class ClaimWaitError(AutoAddError):
    """The device takes no claim code run now: too many wrong codes, the delay is not over."""

    code = "claim_wait"

    def __init__(self, detail: str, *, retry_after: int = 0, index: int | None = None) -> None:
        """`retry_after`: whole seconds until the device takes a run again (its Retry-After header)."""
        self.retry_after = retry_after
        super().__init__(detail, index=index)


# --- Chains ---------------------------------------------------------------------------------------------


class OwnersError(AutoAddError):
    """An owner list that is empty, repeats a key or holds more than the limit."""

    code = "invalid_owners"


class SignerNotOwnerError(AutoAddError):
    """A link signed by a key that is not an owner named by the previous link."""

    code = "signer_not_owner"
    suspicious = True


class PreviousHashError(AutoAddError):
    """A link whose previous-link hash is not the hash of the link before it."""

    code = "wrong_previous_hash"
    suspicious = True


class WrongDeviceError(AutoAddError):
    """A link or message for another device than the one at hand."""

    code = "wrong_device"
    suspicious = True


class SequenceError(AutoAddError):
    """A link whose sequence number is not its position in the chain."""

    code = "wrong_sequence"
    suspicious = True


class ForkError(AutoAddError):
    """Two different links extending the same parent."""

    code = "fork"
    suspicious = True


class RollbackError(AutoAddError):
    """A chain that is a strict prefix of one already seen."""

    code = "rollback"
    suspicious = True


class NotOwnerError(AutoAddError):
    """The key at hand is not a current owner of the device's chain."""

    code = "not_owner"


# --- Handshake ------------------------------------------------------------------------------------------


class NonceMismatchError(AutoAddError):
    """A message bound to other nonces than this session's (a replay or a relay into another session)."""

    code = "nonce_mismatch"
    suspicious = True


class UnknownSessionError(AutoAddError):
    """A message for a session that does not exist, expired or was already used."""

    code = "unknown_session"


class ChainHeadMismatchError(AutoAddError):
    """A message bound to another chain head than the one it is about."""

    code = "chain_head_mismatch"
    suspicious = True


class HandshakeStateError(AutoAddError):
    """A handshake step taken out of order (a programming error on the caller's side)."""

    code = "handshake_state"


#: Every error class by code: the documented table, and what a peer's error body is mapped back through.
ERRORS_BY_CODE: dict[str, type[AutoAddError]] = {
    cls.code: cls
    for cls in (
        MalformedError,
        TooLargeError,
        WrongContentTypeError,
        UnsupportedVersionError,
        UnsupportedAlgorithmError,
        BadSignatureError,
        UntrustedManufacturerError,
        WrongManufacturerRootError,
        ManufacturerMismatchError,
        IDevIDMismatchError,
        InvalidKeyError,
        HomeKeyStringError,
        RecoveryKeyStringError,
        ClaimCodeStringError,
        WrongClaimCodeError,
        ClaimUnprovenError,
        AlreadyClaimedError,
        ClaimWaitError,
        OwnersError,
        SignerNotOwnerError,
        PreviousHashError,
        WrongDeviceError,
        SequenceError,
        ForkError,
        RollbackError,
        NotOwnerError,
        NonceMismatchError,
        UnknownSessionError,
        ChainHeadMismatchError,
        HandshakeStateError,
    )
}

"""The claim code: what a maker prints on a device sold with no owner, and the owner types or scans (§5.2).

    AACC1-ABCDE-FGHIJ-KLMNO-PQRST-UVWX

`AACC1-` then RFC 4648 base32 (no padding) of:  hint (3 bytes) || secret (8 bytes) || checksum (4 bytes),
in groups of five: 24 characters. The hint is the first 3 bytes of the device id, so a registrar knows
which device a typed code is for without spending a guess of any other device's. The secret is 64 bits
from a CSPRNG, known only to the device and printed on it. The checksum is the first 4 bytes of
SHA-256("AutoAdd claim code" || hint || secret): a domain of its own, so no other AutoAdd string reads as
a claim code. The PAKE (§14.9) is keyed by hint || secret, the 11 bytes before the checksum.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import secrets

from .errors import ClaimCodeStringError
from .home_key import clean, decode, grouped

PREFIX = "AACC1"
_DOMAIN = b"AutoAdd claim code"
HINT_SIZE = 3
SECRET_SIZE = 8
#: Characters after the prefix: base32 of 3 + 8 + 4 bytes.
LENGTH = 24


@dataclass(frozen=True, slots=True)
class ClaimCode:
    """A parsed claim code: the device-id hint and the secret."""

    hint: bytes
    secret: bytes

    @property
    def password(self) -> bytes:
        """What the PAKE is keyed with (CPace's PRS, §14.9): hint || secret."""
        return self.hint + self.secret

    def is_for(self, device_id: bytes) -> bool:
        """Whether this code's hint matches a device id."""
        return device_id[:HINT_SIZE] == self.hint

    def __repr__(self) -> str:
        """Never the secret: a code may end up in a log through a repr."""
        return f"ClaimCode(hint={self.hint.hex()})"


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + body).digest()[:4]


def new_claim_code(device_id: bytes) -> ClaimCode:
    """A fresh claim code for a device (the vendor tool makes one per unassigned device)."""
    return ClaimCode(device_id[:HINT_SIZE], secrets.token_bytes(SECRET_SIZE))


def format_claim_code(code: ClaimCode) -> str:
    """The claim code string."""
    body = code.hint + code.secret
    return grouped(PREFIX, body + _checksum(body))


def parse_claim_code(text: str) -> ClaimCode:
    """Read a claim code string, or say exactly what is wrong with it (§5's steps, its own prefix)."""
    _, data = clean(text, (PREFIX,), "a claim code", ClaimCodeStringError)
    body = decode(data, {LENGTH}, "a claim code", _checksum, ClaimCodeStringError)
    return ClaimCode(body[:HINT_SIZE], body[HINT_SIZE:])

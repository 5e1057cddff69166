"""The home's keys: the current one, one staged by a rotation in progress, and the retired ones.

Plain data with a JSON form; where it is kept (and how durably) is the storage adapter's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    fingerprint,
    generate_private_key,
    private_key_from_pem,
    private_key_to_pem,
    public_key_of,
)


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass
class HomeKey:
    """One home private key and when it was made."""

    key: PrivateKey
    key_type: KeyType
    created_at: datetime

    @property
    def fingerprint(self) -> bytes:
        """The public key's fingerprint."""
        return fingerprint(public_key_of(self.key))

    def as_dict(self) -> dict[str, str]:
        """Stored form."""
        return {
            "private_pem": private_key_to_pem(self.key).decode(),
            "key_type": self.key_type.value,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the stored form."""
        return cls(
            key=private_key_from_pem(data["private_pem"].encode()),
            key_type=KeyType(data["key_type"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )

    @classmethod
    def generate(cls, key_type: KeyType, now: datetime | None = None) -> Self:
        """A fresh key."""
        return cls(generate_private_key(key_type), key_type, now or utcnow())


@dataclass
class RetiredKey:
    """A home key replaced by a rotation: its private part kept until its devices moved, or destroyed."""

    fingerprint: str
    key_type: KeyType
    created_at: str
    retired_at: str
    key: PrivateKey | None

    def as_dict(self) -> dict[str, Any]:
        """Stored form (the private key only while it is kept)."""
        return {
            "fingerprint": self.fingerprint,
            "key_type": self.key_type.value,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
            "private_pem": private_key_to_pem(self.key).decode() if self.key is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the stored form."""
        pem = data.get("private_pem")
        return cls(
            fingerprint=data["fingerprint"],
            key_type=KeyType(data["key_type"]),
            created_at=data["created_at"],
            retired_at=data["retired_at"],
            key=private_key_from_pem(pem.encode()) if pem else None,
        )


@dataclass
class HomeKeys:
    """Everything the private key store holds.

    `kept` holds, per device, the chain and the links this home signed that the device has not confirmed,
    written when the integration is removed: setting it up again must still reach those devices.
    """

    current: HomeKey
    staged: HomeKey | None = None
    retired: list[RetiredKey] = field(default_factory=list)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)

    def signing_keys(self) -> list[PrivateKey]:
        """Every private key this home still holds, current first."""
        return [self.current.key, *(old.key for old in self.retired if old.key is not None)]

    def fingerprints(self) -> set[bytes]:
        """Every key this home has or had, staged included (its own keys are never someone else's)."""
        known = {self.current.fingerprint, *(bytes.fromhex(old.fingerprint) for old in self.retired)}
        if self.staged is not None:
            known.add(self.staged.fingerprint)
        return known

    def held(self) -> set[bytes]:
        """Fingerprints of the keys whose private part this home still holds."""
        return {fingerprint(public_key_of(key)) for key in self.signing_keys()}

    def signer_for(self, owners: tuple[PublicKey, ...]) -> PrivateKey | None:
        """The first private key this home holds among `owners` (current first)."""
        wanted = {fingerprint(owner) for owner in owners}
        return next((key for key in self.signing_keys() if fingerprint(public_key_of(key)) in wanted), None)

    def as_dict(self) -> dict[str, Any]:
        """Stored form."""
        return {
            "current": self.current.as_dict(),
            "staged": self.staged.as_dict() if self.staged is not None else None,
            "retired": [old.as_dict() for old in self.retired],
            "kept": self.kept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the stored form (a lone key, as the first release stored it, is the current key)."""
        if "current" not in data:
            return cls(HomeKey.from_dict(data))
        staged = data.get("staged")
        return cls(
            current=HomeKey.from_dict(data["current"]),
            staged=HomeKey.from_dict(staged) if staged else None,
            retired=[RetiredKey.from_dict(old) for old in data.get("retired", [])],
            kept=dict(data.get("kept", {})),
        )

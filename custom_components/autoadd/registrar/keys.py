"""The home's keys: the current one, one staged by a rotation in progress, the retired ones, and the
public part of the home's recovery key (its private part only while the home is restored from it).

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
    public_key_from_pem,
    public_key_of,
    public_key_to_pem,
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
class RecoveryKey:
    """The home's recovery key: a co-owner of every device this home owns, whose private key the owner
    keeps on paper. Home Assistant holds the private key only while the owner restores the home with it
    (typed back in), to move devices to a new home key; never otherwise."""

    public: PublicKey
    created_at: str
    key: PrivateKey | None = None
    #: Made by this home, or shown to be its by moving one of its devices; a key typed in to restore
    #: is not, until then (so a mistaken one is forgotten when the restore finishes).
    confirmed: bool = True

    @property
    def fingerprint(self) -> bytes:
        """The recovery key's fingerprint."""
        return fingerprint(self.public)

    def as_dict(self) -> dict[str, Any]:
        """Stored form (the private key only while restoring)."""
        return {
            "public_pem": public_key_to_pem(self.public).decode(),
            "created_at": self.created_at,
            "private_pem": private_key_to_pem(self.key).decode() if self.key is not None else None,
            "confirmed": self.confirmed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the stored form."""
        pem = data.get("private_pem")
        return cls(
            public=public_key_from_pem(data["public_pem"].encode()),
            created_at=data["created_at"],
            key=private_key_from_pem(pem.encode()) if pem else None,
            confirmed=bool(data.get("confirmed", True)),
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
    recovery: RecoveryKey | None = None

    def owner_keys(self) -> list[PublicKey]:
        """The keys an invoice names for this home (its home key string's): the home key, then the
        recovery key if there is one."""
        keys = [public_key_of(self.current.key)]
        recovery = self.confirmed_recovery()
        return [*keys, recovery.public] if recovery is not None else keys

    def confirmed_recovery(self) -> RecoveryKey | None:
        """The recovery key, once it is known to be this home's (what rotations and invoices name)."""
        return self.recovery if self.recovery is not None and self.recovery.confirmed else None

    def with_recovery(self) -> set[bytes]:
        """This home's keys and its recovery key: whose links are this home's own (§14.3, §14.8). The
        recovery key is not in fingerprints(): to every other rule it is a co-owner."""
        known = self.fingerprints()
        return known | {self.recovery.fingerprint} if self.recovery is not None else known

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
            "recovery": self.recovery.as_dict() if self.recovery is not None else None,
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
            recovery=RecoveryKey.from_dict(data["recovery"]) if data.get("recovery") else None,
        )

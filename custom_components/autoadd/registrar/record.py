"""One record per device: its phase and everything this home knows or owes it.

The phase says what the device is to this home; `machine.py` is the only place that changes it. Links are
kept as the exact bytes received or signed (base64 in the JSON form).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import functools
import hashlib
from typing import Any, ClassVar, Self


@functools.lru_cache(maxsize=1 << 14)
def b64(data: bytes) -> str:
    """Bytes as text for JSON storage (links are saved again with every save: encoded once each)."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Text from JSON storage back to bytes."""
    return base64.b64decode(text)


#: TXT keys that change with every announcement (§10 `sv`): not news about the device, so not digested.
_VOLATILE_TXT = frozenset({"sv"})


def txt_digest(txt: Mapping[str, str]) -> str:
    """A short digest of an announced TXT record, without its state serial; "" for none.

    A refused device is tried before its back-off ends only when this changes; leaving `sv` out means a
    flooder can't skip the back-off by counting it up."""
    items = sorted((key, value) for key, value in txt.items() if key not in _VOLATILE_TXT)
    if not items:
        return ""
    text = "\n".join(f"{len(key)}:{key}={value}" for key, value in items)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


class Phase(StrEnum):
    """What a device is to this home."""

    #: Announced or named, nothing proven that makes it this home's.
    SEEN = "seen"
    #: Proven, handed to this home by another owner: the owner decides.
    AWAITING_APPROVAL = "awaiting_approval"
    #: The owner approved its head (or accepted its transfer file): onboarded at its next proof.
    APPROVED = "approved"
    #: The owner rejected its head: not asked again until the chain changes.
    REJECTED = "rejected"
    #: Holds a chain this home owns and confirmed it with a receipt.
    ONBOARDED = "onboarded"
    #: Onboarded, with a change this home signed (rotation, hand-over, cancel) not yet confirmed.
    CHANGING_OWNER = "changing_owner"
    #: Its chain is owned by a key of this home that is gone (restored from an older backup).
    KEY_LOST = "key_lost"
    #: A proof showed it left this home (its hand-over, or a co-owner's).
    HANDED_OVER = "handed_over"
    #: The owner removed it; it comes back only when it asks again (factory reset).
    REMOVED = "removed"
    #: The owner blocked its identifier: never contacted.
    BLOCKED = "blocked"


#: The phases of a device in this home's device registry.
MEMBER_PHASES = frozenset({Phase.ONBOARDED, Phase.CHANGING_OWNER, Phase.KEY_LOST})


class ChangeKind(StrEnum):
    """An ownership change this home signed and the device has not confirmed."""

    ROTATE = "rotate"
    HANDOVER = "handover"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Address:
    """Where a device answers."""

    host: str
    port: int

    def as_dict(self) -> dict[str, Any]:
        """Stored form."""
        return {"host": self.host, "port": self.port}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Address | None:
        """Read the stored form."""
        return None if data is None else cls(str(data["host"]), int(data["port"]))


@dataclass
class PendingChange:
    """Links this home signed, stored before anything was sent, extending what the device holds."""

    kind: ChangeKind
    links: list[bytes]
    at: str
    #: The buyer's fingerprint (hex), for a hand-over.
    new_owner: str = ""
    #: Sent at least once; not confirmed until a proof or receipt shows the new head.
    sent: bool = False
    #: Digests (hex) of earlier hand-over links to the same buyer that count as taken too.
    superseded: list[str] = field(default_factory=list)
    #: The links include a rotation of the home key.
    rotation: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Stored form."""
        return {
            "kind": self.kind.value,
            "links": [b64(link) for link in self.links],
            "at": self.at,
            "new_owner": self.new_owner,
            "sent": self.sent,
            "superseded": self.superseded,
            "rotation": self.rotation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PendingChange | None:
        """Read the stored form."""
        if data is None:
            return None
        return cls(
            kind=ChangeKind(data["kind"]),
            links=[unb64(link) for link in data["links"]],
            at=data["at"],
            new_owner=data.get("new_owner", ""),
            sent=bool(data.get("sent", False)),
            superseded=list(data.get("superseded", [])),
            rotation=bool(data.get("rotation", False)),
        )


@dataclass
class Approval:
    """A hand-over into this home: the head it is about and who handed it over."""

    head: str
    previous_owner: str
    at: str
    #: Links from a transfer file the owner accepted (the whole chain, invoice first), else empty.
    transfer: list[bytes] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Stored form."""
        return {
            "head": self.head,
            "previous_owner": self.previous_owner,
            "at": self.at,
            "transfer": [b64(link) for link in self.transfer],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Approval | None:
        """Read the stored form."""
        if data is None:
            return None
        return cls(
            head=data["head"],
            previous_owner=data["previous_owner"],
            at=data.get("at", ""),
            transfer=[unb64(link) for link in data.get("transfer", [])],
        )


@dataclass
class Refusal:
    """The last failed attempt, remembered so a bad device is not retried in a storm."""

    #: `detail` is this home's own words about the failure (never the device's), capped.
    MAX_DETAIL: ClassVar[int] = 200

    code: str
    detail: str
    at: str
    retry_after: str
    attempts: int = 1
    #: Digest of the TXT record announced when it was refused (candidates.txt_digest): a different one
    #: means the device changed. Only the digest is kept, so a long record costs nothing to store.
    txt_digest: str = ""
    #: The code is the device's own (its error answer), not a verdict of this home's.
    by_device: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Stored form (`by_device` only when set: stores written before it read as this home's codes)."""
        stored: dict[str, Any] = {
            "code": self.code,
            "detail": self.detail,
            "at": self.at,
            "retry_after": self.retry_after,
            "attempts": self.attempts,
            "txt_digest": self.txt_digest,
        }
        if self.by_device:
            stored["by_device"] = True
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Refusal | None:
        """Read the stored form."""
        if data is None:
            return None
        return cls(
            code=data["code"],
            detail=data.get("detail", ""),
            at=data["at"],
            retry_after=data["retry_after"],
            attempts=int(data.get("attempts", 1)),
            # stores written before the digest kept the whole record: its digest stands for it
            txt_digest=data.get("txt_digest") or txt_digest(data.get("txt") or {}),
            by_device=bool(data.get("by_device", False)),
        )


@dataclass
class DeviceRecord:
    """Everything this home knows about one device identifier."""

    device_id: str
    phase: Phase = Phase.SEEN
    manufacturer: str = ""
    model: str = ""
    serial_number: str | None = None
    #: Fingerprint (hex) of the manufacturer root its IDevID and invoice chain to.
    manufacturer_root: str = ""
    #: The chain the device last proved it holds (by a proof or a receipt), invoice first.
    chain: list[bytes] = field(default_factory=list)
    #: Fingerprints (hex) of the owners at that chain's head.
    owners: list[str] = field(default_factory=list)
    #: At most one ownership change this home signed that the device has not confirmed.
    change: PendingChange | None = None
    #: A hand-over into this home: waiting for, or given, the owner's decision.
    approval: Approval | None = None
    refusal: Refusal | None = None
    #: Where the device last proved itself; `hint` is where it was last announced (unverified).
    address: Address | None = None
    hint: Address | None = None
    #: Another address the same IDevID proved itself from soon after `address` (a cloned key): while
    #: set, the registrar keeps `address` and ignores proofs from elsewhere until the owner decides.
    clone: Address | None = None
    onboarded_at: str | None = None
    last_seen: str | None = None
    #: The key fingerprint (hex) a device in KEY_LOST expects.
    lost_key: str = ""
    #: The phase a blocked device goes back to when unblocked.
    blocked_from: Phase | None = None
    #: "revoked_manufacturer" while its manufacturer root is revoked.
    flags: list[str] = field(default_factory=list)
    #: The owners (fingerprints, hex, in order) of the claim code run this home made (§14.9), written
    #: before its finish was sent: only a claim link naming exactly these is this home's own entry.
    claimed: list[str] = field(default_factory=list)
    #: Append-only ownership history: [{"at", "event", ...}].
    history: list[dict[str, str]] = field(default_factory=list)

    def owners_bytes(self) -> list[bytes]:
        """The stored head's owner fingerprints as bytes."""
        return [bytes.fromhex(owner) for owner in self.owners]

    @property
    def is_member(self) -> bool:
        """Whether the device is in this home's device registry: a member phase, or blocked from one (a
        device removed or handed over, then blocked, is none: it was onboarded once, but left)."""
        return self.phase in MEMBER_PHASES or (
            self.phase is Phase.BLOCKED and self.blocked_from in MEMBER_PHASES
        )

    def as_dict(self) -> dict[str, Any]:
        """Stored form: new containers throughout, so that it can be encoded in another thread."""
        return {
            "device_id": self.device_id,
            "phase": self.phase.value,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial_number": self.serial_number,
            "manufacturer_root": self.manufacturer_root,
            "chain": [b64(link) for link in self.chain],
            "owners": list(self.owners),
            "change": self.change.as_dict() if self.change else None,
            "approval": self.approval.as_dict() if self.approval else None,
            "refusal": self.refusal.as_dict() if self.refusal else None,
            "address": self.address.as_dict() if self.address else None,
            "hint": self.hint.as_dict() if self.hint else None,
            "clone": self.clone.as_dict() if self.clone else None,
            "onboarded_at": self.onboarded_at,
            "last_seen": self.last_seen,
            "lost_key": self.lost_key,
            "blocked_from": self.blocked_from.value if self.blocked_from else None,
            "flags": list(self.flags),
            "history": [dict(entry) for entry in self.history],
            "claimed": list(self.claimed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the stored form."""
        blocked_from = data.get("blocked_from")
        return cls(
            device_id=data["device_id"],
            phase=Phase(data["phase"]),
            manufacturer=data.get("manufacturer", ""),
            model=data.get("model", ""),
            serial_number=data.get("serial_number"),
            manufacturer_root=data.get("manufacturer_root", ""),
            chain=[unb64(link) for link in data.get("chain", [])],
            owners=list(data.get("owners", [])),
            change=PendingChange.from_dict(data.get("change")),
            approval=Approval.from_dict(data.get("approval")),
            refusal=Refusal.from_dict(data.get("refusal")),
            address=Address.from_dict(data.get("address")),
            hint=Address.from_dict(data.get("hint")),
            clone=Address.from_dict(data.get("clone")),
            onboarded_at=data.get("onboarded_at"),
            last_seen=data.get("last_seen"),
            lost_key=data.get("lost_key", ""),
            blocked_from=Phase(blocked_from) if blocked_from else None,
            flags=list(data.get("flags", [])),
            history=[dict(entry) for entry in data.get("history", [])],
            claimed=list(data.get("claimed", [])),
        )

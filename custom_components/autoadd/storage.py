"""What the registrar keeps, in Home Assistant's storage.

Two stores:
- `autoadd.home_key` (private: file mode 0600): the home's private key. Never in the config entry, never
  logged, never in diagnostics. It is kept when the integration is removed, so that setting AutoAdd up
  again gets the same home back instead of locking its devices out.
- `autoadd.registrar`: trusted manufacturer roots, onboarded devices with their chains, pending work and
  remembered refusals.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Self

from cryptography import x509
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .protocol.certificates import certificate_public_key, certificate_to_pem, load_pem_certificates
from .protocol.keys import (
    KeyType,
    PrivateKey,
    fingerprint,
    generate_private_key,
    private_key_from_pem,
    private_key_to_pem,
)

HOME_KEY_STORE = "autoadd.home_key"
REGISTRAR_STORE = "autoadd.registrar"
STORE_VERSION = 1
SAVE_DELAY = 1.0


def b64(data: bytes) -> str:
    """Bytes as text for JSON storage."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Text from JSON storage back to bytes."""
    return base64.b64decode(text)


@dataclass
class HomeKey:
    """One home private key and when it was made."""

    key: PrivateKey
    key_type: KeyType
    created_at: datetime

    @property
    def fingerprint(self) -> bytes:
        """The public key's fingerprint."""
        return fingerprint(self.key.public_key())

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
    def generate(cls, key_type: KeyType) -> Self:
        """A fresh key."""
        return cls(generate_private_key(key_type), key_type, dt_util.utcnow())


@dataclass
class RetiredKey:
    """A home key replaced by a rotation: kept until its devices moved, or destroyed at once."""

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
    """The home's keys: the current one, a new one staged by a rotation in progress, and retired ones."""

    current: HomeKey
    staged: HomeKey | None = None
    retired: list[RetiredKey] = field(default_factory=list)

    def signing_keys(self) -> list[PrivateKey]:
        """Every private key this home still holds, current first."""
        return [self.current.key, *(old.key for old in self.retired if old.key is not None)]

    def fingerprints(self) -> set[bytes]:
        """Every key this home has ever had (its own past keys are not someone else's)."""
        return {self.current.fingerprint, *(bytes.fromhex(old.fingerprint) for old in self.retired)}

    def as_dict(self) -> dict[str, Any]:
        """Stored form."""
        return {
            "current": self.current.as_dict(),
            "staged": self.staged.as_dict() if self.staged is not None else None,
            "retired": [old.as_dict() for old in self.retired],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the stored form (a lone key, as the first version stored it, is the current key)."""
        if "current" not in data:
            return cls(HomeKey.from_dict(data))
        staged = data.get("staged")
        return cls(
            current=HomeKey.from_dict(data["current"]),
            staged=HomeKey.from_dict(staged) if staged else None,
            retired=[RetiredKey.from_dict(old) for old in data.get("retired", [])],
        )


class HomeKeyStore:
    """The private key store: the home keys of this Home Assistant instance (file mode 0600, atomic)."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Open the store (nothing is read yet)."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, HOME_KEY_STORE, private=True, atomic_writes=True
        )

    async def async_load(self) -> HomeKeys | None:
        """The stored home keys, if there are any."""
        data = await self._store.async_load()
        return HomeKeys.from_dict(data) if data else None

    async def async_create(self, key_type: KeyType) -> HomeKeys:
        """Make a new home key and persist it before anything uses it."""
        keys = HomeKeys(HomeKey.generate(key_type))
        await self.async_save(keys)
        return keys

    async def async_save(self, keys: HomeKeys) -> None:
        """Write the keys (atomically: a crash leaves the old file or the new one)."""
        await self._store.async_save(keys.as_dict())


@dataclass
class TrustedRoot:
    """A manufacturer root the owner trusts."""

    name: str
    pem: str
    fingerprint: str
    added_on: str

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, name: str) -> Self:
        """Record a root certificate."""
        return cls(
            name=name,
            pem=certificate_to_pem(cert).decode(),
            fingerprint=fingerprint(certificate_public_key(cert)).hex(),
            added_on=dt_util.utcnow().isoformat(),
        )

    def certificate(self) -> x509.Certificate:
        """The certificate."""
        return load_pem_certificates(self.pem.encode())[0]


@dataclass
class DeviceRecord:
    """A device this registrar onboarded."""

    device_id: str
    manufacturer: str
    model: str
    serial_number: str | None
    chain: list[str]
    onboarded_at: str
    last_seen: str
    host: str
    port: int
    owners: list[str] = field(default_factory=list)
    #: Fingerprint (hex) of the manufacturer root the device's IDevID and invoice chain to.
    manufacturer_root: str = ""
    #: Links this home signed that the device has not confirmed yet (rotations), presented at next contact.
    pending_links: list[str] = field(default_factory=list)
    #: A hand-over this home signed and the device has not taken yet: {"link", "new_owner", "at"}.
    handover: dict[str, str] | None = None
    #: Why the device is held back: "blocked", "revoked_manufacturer".
    flags: list[str] = field(default_factory=list)

    @property
    def links(self) -> list[bytes]:
        """The confirmed chain as bytes."""
        return [unb64(link) for link in self.chain]

    @property
    def unconfirmed(self) -> list[bytes]:
        """The pending links as bytes."""
        return [unb64(link) for link in self.pending_links]


@dataclass
class Refusal:
    """A device that failed verification, remembered so it is not retried in a storm."""

    device_id: str
    code: str
    detail: str
    at: str
    retry_after: str
    attempts: int = 1
    #: The TXT record the device announced when it was refused: a different one means it changed.
    txt: dict[str, str] = field(default_factory=dict)


@dataclass
class RegistrarData:
    """Everything in the registrar store."""

    roots: list[TrustedRoot] = field(default_factory=list)
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    #: A key rotation whose links are signed: {"old", "new", "destroy_old", "started_at"}.
    rotation: dict[str, Any] | None = None
    #: Devices handed to this home that the owner approved: {device_id: {"head", "links", "previous_owner"}}.
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Devices handed to this home that wait for the owner's decision: {device_id: {...}}.
    awaiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Hand-overs the owner rejected: {device_id: head digest (hex)}; asked again only for another head.
    rejected: dict[str, str] = field(default_factory=dict)
    #: Device identifiers the owner blocked: {device_id: {"at", "reason"}}.
    blocked: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Manufacturer roots the owner revoked: {fingerprint: {"name", "at"}}.
    revoked_roots: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Append-only ownership history per device: [{"at", "event", ...}].
    history: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "roots": [asdict(root) for root in self.roots],
            "devices": {key: asdict(dev) for key, dev in self.devices.items()},
            "pending": self.pending,
            "refused": {key: asdict(ref) for key, ref in self.refused.items()},
            "removed": self.removed,
            "rotation": self.rotation,
            "approvals": self.approvals,
            "awaiting": self.awaiting,
            "rejected": self.rejected,
            "blocked": self.blocked,
            "revoked_roots": self.revoked_roots,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the JSON form."""
        return cls(
            roots=[TrustedRoot(**root) for root in data.get("roots", [])],
            devices={key: DeviceRecord(**dev) for key, dev in data.get("devices", {}).items()},
            pending=dict(data.get("pending", {})),
            refused={key: Refusal(**ref) for key, ref in data.get("refused", {}).items()},
            removed=dict(data.get("removed", {})),
            rotation=data.get("rotation"),
            approvals=dict(data.get("approvals", {})),
            awaiting=dict(data.get("awaiting", {})),
            rejected=dict(data.get("rejected", {})),
            blocked=dict(data.get("blocked", {})),
            revoked_roots=dict(data.get("revoked_roots", {})),
            history={key: list(events) for key, events in data.get("history", {}).items()},
        )


class RegistrarStore:
    """The registrar's store, saved with a short delay after each change."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Open the store."""
        self._store: Store[dict[str, Any]] = Store(hass, STORE_VERSION, REGISTRAR_STORE)
        self.data = RegistrarData()

    async def async_load(self) -> RegistrarData:
        """Read what was stored."""
        stored = await self._store.async_load()
        self.data = RegistrarData.from_dict(stored or {})
        return self.data

    def async_schedule_save(self) -> None:
        """Save soon (changes made together are written once)."""
        self._store.async_delay_save(self.data.as_dict, SAVE_DELAY)

    async def async_save(self) -> None:
        """Save now: used where a step must be on disk before the next one."""
        await self._store.async_save(self.data.as_dict())

    async def async_remove(self) -> None:
        """Delete the store (when the integration is removed)."""
        await self._store.async_remove()

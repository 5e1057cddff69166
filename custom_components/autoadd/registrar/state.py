"""What the registrar store holds: trusted roots, one record per device, a rotation in progress."""

from __future__ import annotations

from collections.abc import Mapping
import copy
from dataclasses import dataclass, field
from typing import Any, Self

from cryptography import x509

from custom_components.autoadd.protocol.certificates import (
    certificate_key_fingerprint,
    certificate_to_pem,
    load_pem_certificates,
)

from .keys import utcnow
from .record import DeviceRecord

#: The registrar store's layout: 1 was 0.1.0's maps, 2 is one record per device (migration.py).
STATE_VERSION = 2


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
            fingerprint=certificate_key_fingerprint(cert).hex(),
            added_on=utcnow().isoformat(),
        )

    def certificate(self) -> x509.Certificate:
        """The certificate."""
        return load_pem_certificates(self.pem.encode())[0]

    def as_dict(self) -> dict[str, str]:
        """Stored form."""
        return {
            "name": self.name,
            "pem": self.pem,
            "fingerprint": self.fingerprint,
            "added_on": self.added_on,
        }


@dataclass
class RegistrarState:
    """Everything in the registrar store."""

    roots: list[TrustedRoot] = field(default_factory=list)
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    #: Manufacturer roots the owner revoked: {fingerprint: {"name", "at"}}.
    revoked_roots: dict[str, dict[str, str]] = field(default_factory=dict)
    #: A key rotation whose links are signed: {"old", "new", "destroy_old", "started_at"}.
    rotation: dict[str, Any] | None = None
    #: Roots devices offered that the owner has yet to approve (new_manufacturers.py):
    #: {fingerprint: {"name", "pem", "model", "serial", "at", "devices": {device id: address proved at}}}.
    waiting_roots: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Roots the owner rejected when a device offered them: {fingerprint: {"name", "at"}}.
    rejected_roots: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_dict(self, devices: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """JSON form, sharing nothing mutable with the state (it is encoded in another thread).
        `devices`: the records' stored forms as the caller has them already (store_image.py)."""
        return {
            "roots": [root.as_dict() for root in self.roots],
            "devices": {key: record.as_dict() for key, record in self.devices.items()}
            if devices is None
            else devices,
            "revoked_roots": copy.deepcopy(self.revoked_roots),
            "rotation": copy.deepcopy(self.rotation),
            "waiting_roots": copy.deepcopy(self.waiting_roots),
            "rejected_roots": copy.deepcopy(self.rejected_roots),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read the JSON form (version 2)."""
        return cls(
            roots=[TrustedRoot(**root) for root in data.get("roots", [])],
            devices={key: DeviceRecord.from_dict(rec) for key, rec in data.get("devices", {}).items()},
            revoked_roots=dict(data.get("revoked_roots", {})),
            rotation=data.get("rotation"),
            waiting_roots=dict(data.get("waiting_roots", {})),
            rejected_roots=dict(data.get("rejected_roots", {})),
        )

    def snapshot(self) -> RegistrarState:
        """A deep copy, to put back when a step fails to persist."""
        return copy.deepcopy(self)

    def restore(self, snapshot: RegistrarState) -> None:
        """Put a snapshot back in place (same object, so every holder sees it)."""
        self.roots = snapshot.roots
        self.devices = snapshot.devices
        self.revoked_roots = snapshot.revoked_roots
        self.rotation = snapshot.rotation
        self.waiting_roots = snapshot.waiting_roots
        self.rejected_roots = snapshot.rejected_roots

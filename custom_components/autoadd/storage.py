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
    """The home's private key and when it was made."""

    key: PrivateKey
    key_type: KeyType
    created_at: datetime

    @property
    def fingerprint(self) -> bytes:
        """The public key's fingerprint."""
        return fingerprint(self.key.public_key())


class HomeKeyStore:
    """The private key store: one home key per Home Assistant instance."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Open the store (nothing is read yet)."""
        self._store: Store[dict[str, Any]] = Store(hass, STORE_VERSION, HOME_KEY_STORE, private=True)

    async def async_load(self) -> HomeKey | None:
        """The stored home key, if there is one."""
        data = await self._store.async_load()
        if not data:
            return None
        return HomeKey(
            key=private_key_from_pem(data["private_pem"].encode()),
            key_type=KeyType(data["key_type"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )

    async def async_create(self, key_type: KeyType) -> HomeKey:
        """Make a new home key and persist it before anything uses it."""
        home = HomeKey(generate_private_key(key_type), key_type, dt_util.utcnow())
        await self._store.async_save(
            {
                "private_pem": private_key_to_pem(home.key).decode(),
                "key_type": key_type.value,
                "created_at": home.created_at.isoformat(),
            }
        )
        return home


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

    @property
    def links(self) -> list[bytes]:
        """The chain as bytes."""
        return [unb64(link) for link in self.chain]


@dataclass
class Refusal:
    """A device that failed verification, remembered so it is not retried in a storm."""

    device_id: str
    code: str
    detail: str
    at: str
    retry_after: str
    attempts: int = 1


@dataclass
class RegistrarData:
    """Everything in the registrar store."""

    roots: list[TrustedRoot] = field(default_factory=list)
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "roots": [asdict(root) for root in self.roots],
            "devices": {key: asdict(dev) for key, dev in self.devices.items()},
            "pending": self.pending,
            "refused": {key: asdict(ref) for key, ref in self.refused.items()},
            "removed": self.removed,
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

"""Builds manufacturers, devices, homes and chains for tests, from fixed seeds so runs repeat."""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from custom_components.autoadd.protocol import chain as chains
from custom_components.autoadd.protocol.certificates import certificate_hash
from custom_components.autoadd.protocol.chain import VerifiedChain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.handshake import DeviceResponder
from custom_components.autoadd.protocol.idevid import device_id_for
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from custom_components.autoadd.protocol.manufacturer import (
    make_idevid_certificate,
    make_root_certificate,
    make_signer_certificate,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
NOW_TS = int(NOW.timestamp())


def fixed_key(label: str, key_type: KeyType = KeyType.ED25519) -> PrivateKey:
    """A private key derived from a label: the same label gives the same key on every run."""
    seed = hashlib.sha256(f"autoadd test key {label}".encode()).digest()
    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(int.from_bytes(seed) % (order - 1) + 1, ec.SECP256R1())


@dataclass
class Manufacturer:
    """A root CA and an invoice signer certified by it."""

    name: str
    root_key: PrivateKey
    root: x509.Certificate
    signer_key: PrivateKey
    signer: x509.Certificate

    @classmethod
    def create(cls, name: str = "Acme", key_type: KeyType = KeyType.ED25519) -> Manufacturer:
        root_key = fixed_key(f"{name} root", key_type)
        root = make_root_certificate(root_key, name, now=NOW - dt.timedelta(days=30), serial=1)
        signer_key = fixed_key(f"{name} signer", key_type)
        signer = make_signer_certificate(
            root_key, root, signer_key.public_key(), now=NOW - dt.timedelta(days=30), serial=2
        )
        return cls(name, root_key, root, signer_key, signer)

    def make_device(self, serial: str = "SN0001", key_type: KeyType = KeyType.ED25519) -> Device:
        key = fixed_key(f"{self.name} device {serial}", key_type)
        cert = make_idevid_certificate(
            self.root_key,
            self.root,
            key.public_key(),
            serial_number=serial,
            model="Lamp 1",
            now=NOW - dt.timedelta(days=1),
            serial=1000 + int.from_bytes(serial.encode()) % 100000,
        )
        return Device(self, key, cert)

    def invoice(self, device: Device, owners: list[PrivateKey], **kwargs: object) -> bytes:
        return chains.issue_invoice(
            signer=self.signer_key,
            signer_chain=[self.signer],
            device_id=device.device_id,
            idevid_hash=certificate_hash(device.cert),
            owners=[owner.public_key() for owner in owners],
            issued_at=NOW_TS,
            model="Lamp 1",
            **kwargs,  # type: ignore[arg-type]
        )


@dataclass
class Device:
    """A device's IDevID key and certificate, and the chain it holds."""

    maker: Manufacturer
    key: PrivateKey
    cert: x509.Certificate
    links: list[bytes] = field(default_factory=list)

    @property
    def device_id(self) -> bytes:
        return device_id_for(self.key.public_key())

    def chain(self) -> VerifiedChain:
        return chains.verify_chain(self.links, roots=[self.maker.root], now=NOW)

    def responder(self) -> DeviceResponder:
        return DeviceResponder(self.key, [self.cert])


def add_link(
    links: list[bytes],
    signer: PrivateKey,
    owners: list[PrivateKey],
    reason: LinkReason,
    roots: list[x509.Certificate],
) -> bytes:
    """Append a link signed by `signer` naming `owners`; returns it."""
    head = chains.verify_chain(links, roots=roots, now=NOW).head
    link = chains.issue_link(
        signer=signer,
        head=head,
        owners=[o.public_key() for o in owners],
        reason=reason,
        issued_at=NOW_TS + len(links),
    )
    links.append(link)
    return link

"""IDevID: the device's identity certificate, verified up to a trusted manufacturer root.

The device identifier is SHA-256 over the IDevID public key's DER SubjectPublicKeyInfo: it names the key
the device proves it holds, so no certificate re-issue can move an identity to another key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import datetime as dt

from cryptography import x509
from cryptography.x509.oid import NameOID

from .certificates import (
    VerifiedCertificateChain,
    certificate_hash,
    certificate_public_key,
    load_der_certificate,
    subject_attribute,
    verify_certificate_chain,
)
from .keys import PublicKey, fingerprint


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """A verified IDevID."""

    device_id: bytes
    certificate_hash: bytes
    public_key: PublicKey
    certificate: x509.Certificate
    issuer: VerifiedCertificateChain

    @property
    def serial_number(self) -> str | None:
        """The subject's serialNumber attribute (802.1AR puts the device serial there)."""
        return subject_attribute(self.certificate, NameOID.SERIAL_NUMBER)

    @property
    def model(self) -> str | None:
        """The subject's title attribute, where the vendor tool records the model."""
        return subject_attribute(self.certificate, NameOID.TITLE)

    @property
    def manufacturer(self) -> str:
        """The manufacturer, from the trusted root."""
        return self.issuer.manufacturer


def device_id_for(key: PublicKey) -> bytes:
    """The device identifier for an IDevID public key."""
    return fingerprint(key)


def verify_idevid(
    chain: Sequence[bytes], roots: Sequence[x509.Certificate], now: dt.datetime
) -> DeviceIdentity:
    """Verify a DER IDevID chain (device certificate first) at `now` against the trusted roots."""
    certs = [load_der_certificate(der, what=f"IDevID certificate {i}") for i, der in enumerate(chain)]
    verified = verify_certificate_chain(certs, roots, now, what="IDevID")
    key = certificate_public_key(verified.leaf)
    return DeviceIdentity(
        device_id=device_id_for(key),
        certificate_hash=certificate_hash(verified.leaf),
        public_key=key,
        certificate=verified.leaf,
        issuer=verified,
    )

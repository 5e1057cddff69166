"""The manufacturer's certificates: root CA, invoice-signing certificate, IDevID certificates.

Standard X.509 v3 (readable by `openssl x509`, verifiable by `openssl verify`), following the profile in
docs/protocol.md: roots and signers are Ed25519 or P-256; IDevIDs carry the device serial number in the
subject's serialNumber attribute and the model in its title attribute, and, as IEEE 802.1AR recommends,
never expire (notAfter 9999-12-31 23:59:59 UTC).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from .certificates import subject_attribute
from .keys import KeyType, PrivateKey, PublicKey, key_type_of

#: RFC 5280 4.1.2.5: the GeneralizedTime for "no well-defined expiration date". IDevIDs are checked at
#: the time of onboarding, so they and the CAs above them must outlive every device: they never expire.
NO_EXPIRY = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return None if key_type_of(key) is KeyType.ED25519 else hashes.SHA256()


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: PublicKey,
    issuer_public: PublicKey,
    *,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    path_length: int | None = None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(_key_usage(ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
    )


def make_root_certificate(
    key: PrivateKey, manufacturer: str, *, now: dt.datetime, serial: int
) -> x509.Certificate:
    """A self-signed manufacturer root CA."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, manufacturer),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{manufacturer} AutoAdd Root CA"),
        ]
    )
    public = key.public_key()
    builder = _builder(
        name,
        name,
        public,
        public,
        serial=serial,
        not_before=now,
        not_after=NO_EXPIRY,
        ca=True,
        path_length=1,
    )
    return builder.sign(key, _hash_for(key))


def _issued_by_root(
    root_key: PrivateKey,
    root: x509.Certificate,
    public: PublicKey,
    role: str,
    *,
    now: dt.datetime,
    not_after: dt.datetime,
    serial: int,
    ca: bool,
    path_length: int | None = None,
) -> x509.Certificate:
    manufacturer = subject_attribute(root, NameOID.ORGANIZATION_NAME) or "unknown"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, manufacturer),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{manufacturer} AutoAdd {role}"),
        ]
    )
    builder = _builder(
        subject,
        root.subject,
        public,
        root_key.public_key(),
        serial=serial,
        not_before=now,
        not_after=not_after,
        ca=ca,
        path_length=path_length,
    )
    return builder.sign(root_key, _hash_for(root_key))


def make_device_ca_certificate(
    root_key: PrivateKey, root: x509.Certificate, ca: PublicKey, *, now: dt.datetime, serial: int
) -> x509.Certificate:
    """An intermediate CA that issues IDevIDs (pathLen 0), issued by the root; it never expires."""
    return _issued_by_root(
        root_key, root, ca, "Device CA", now=now, not_after=NO_EXPIRY, serial=serial, ca=True, path_length=0
    )


def make_signer_certificate(
    root_key: PrivateKey,
    root: x509.Certificate,
    signer: PublicKey,
    *,
    now: dt.datetime,
    serial: int,
    years: int = 10,
) -> x509.Certificate:
    """The invoice-signing certificate, issued by the root."""
    not_after = now + dt.timedelta(days=365 * years)
    return _issued_by_root(
        root_key, root, signer, "Invoice Signer", now=now, not_after=not_after, serial=serial, ca=False
    )


def make_idevid_certificate(
    issuer_key: PrivateKey,
    issuer: x509.Certificate,
    device: PublicKey,
    *,
    serial_number: str,
    model: str,
    now: dt.datetime,
    serial: int,
) -> x509.Certificate:
    """An IDevID certificate for a device key, issued by the root (or an intermediate CA)."""
    manufacturer = subject_attribute(issuer, NameOID.ORGANIZATION_NAME) or "unknown"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, manufacturer),
            x509.NameAttribute(NameOID.TITLE, model),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{model} {serial_number}"),
        ]
    )
    builder = _builder(
        subject,
        issuer.subject,
        device,
        issuer_key.public_key(),
        serial=serial,
        not_before=now,
        not_after=NO_EXPIRY,
        ca=False,
    )
    return builder.sign(issuer_key, _hash_for(issuer_key))

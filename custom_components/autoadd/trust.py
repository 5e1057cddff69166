"""Trusted manufacturer roots: reading a pasted PEM into a root the registrar can trust."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from .protocol.certificates import certificate_public_key, load_pem_certificates, subject_attribute
from .protocol.errors import AutoAddError


class RootError(Exception):
    """A pasted root that cannot be trusted; `reason` is the form error key."""

    def __init__(self, reason: str) -> None:
        """Keep the translation key."""
        self.reason = reason
        super().__init__(reason)


def parse_root(pem: str, name: str | None) -> tuple[x509.Certificate, str]:
    """One CA certificate with an Ed25519 or P-256 key, and the name to show for it."""
    try:
        certs = load_pem_certificates(pem.strip().encode())
    except AutoAddError as err:
        raise RootError("invalid_pem") from err
    if len(certs) != 1:
        raise RootError("one_certificate")
    cert = certs[0]
    try:
        certificate_public_key(cert)
    except AutoAddError as err:
        raise RootError("unsupported_key") from err
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as err:
        raise RootError("not_a_ca") from err
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as err:
        raise RootError("invalid_certificate") from err
    if not constraints.ca:
        raise RootError("not_a_ca")
    shown = (
        (name or "").strip()
        or subject_attribute(cert, NameOID.ORGANIZATION_NAME)
        or cert.subject.rfc4514_string()
    )
    return cert, shown

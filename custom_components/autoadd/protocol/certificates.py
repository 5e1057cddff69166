"""X.509: manufacturer roots, IDevID certificates and invoice-signing certificates, and their chains.

A chain is given leaf first, then intermediates in order, without the root, and must end in a
certificate issued by one of the trusted roots. Every certificate in it must be valid at the given time;
every issuer must be a CA (basicConstraints cA, keyUsage keyCertSign) within its path length; the leaf must
not be a CA and must be allowed to sign (keyUsage digitalSignature). Keys are Ed25519 or P-256 throughout.

(`cryptography.x509.verification` would do this path walk, but its Web PKI policy refuses Ed25519 keys,
which AutoAdd requires; the walk below uses `verify_directly_issued_by` for each step.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import datetime as dt
import functools
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .encoding import dumps, loads
from .errors import (
    MalformedError,
    TooLargeError,
    UntrustedManufacturerError,
    WrongManufacturerRootError,
    describe,
)
from .keys import PublicKey, fingerprint, key_type_of

MAX_CERTIFICATE_SIZE = 4096
MAX_CHAIN_CERTIFICATES = 4


def load_der_certificate(data: bytes, *, what: str = "certificate") -> x509.Certificate:
    """Parse one DER certificate within the size limit."""
    if len(data) > MAX_CERTIFICATE_SIZE:
        raise TooLargeError(f"{what} is {len(data)} bytes, over the limit of {MAX_CERTIFICATE_SIZE}")
    try:
        cert = x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as err:
        raise MalformedError(f"{what} is not a DER X.509 certificate ({describe(err)})") from err
    # The signature BIT STRING ends the DER. Signatures are whole octets; cryptography also reads a count of
    # unused (zero) bits there, which would give one certificate a second encoding with a different hash.
    if data[-len(cert.signature) - 1] != 0:
        raise MalformedError(f"{what} has a signature that is not a whole number of octets")
    _check_readable(cert, what)
    return cert


def _check_readable(cert: x509.Certificate, what: str) -> None:
    """Read the fields cryptography only decodes when asked, so no later use of them can fail.

    A name that is not valid text (a UTF8String that is not UTF-8, a string type cryptography does not
    know) or a time datetime cannot hold (year 0) loads fine, then raises ValueError or KeyError when the
    path check reads the validity or a record reads the model or serial number: such a certificate does
    not parse (X0). Whatever cryptography raises while decoding them, the certificate is malformed.
    """
    try:
        for name in (cert.subject, cert.issuer):
            for attribute in name:
                str(attribute.value)
        _ = (cert.not_valid_before_utc, cert.not_valid_after_utc)
    except Exception as err:
        raise MalformedError(
            f"{what} has a name or validity time that does not decode ({describe(err)})"
        ) from err


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Parse one or more PEM certificates (a root pasted by the owner, a file from the vendor tool)."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion) as err:
        raise MalformedError(f"not PEM certificates ({describe(err)})") from err
    for position, cert in enumerate(certs):
        _check_readable(cert, f"PEM certificate {position}")
    return certs


def certificate_to_der(cert: x509.Certificate) -> bytes:
    """DER form, as carried on the wire."""
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    """PEM form, as stored in files and pasted into the UI."""
    return cert.public_bytes(serialization.Encoding.PEM)


#: Certificates met in every handshake (the trusted roots, device CAs): what is read from them is kept for
#: this many, keyed by the certificate (equal DER, equal key), so that a handshake does not export, hash
#: and parse them anew. Few: devices' own certificates pass through it too, and each one kept holds
#: memory (a known device's proof is checked against its memo in verified.py instead).
CACHED_CERTIFICATES = 64


@functools.lru_cache(maxsize=CACHED_CERTIFICATES)
def certificate_hash(cert: x509.Certificate) -> bytes:
    """SHA-256 over the certificate's DER bytes."""
    return hashlib.sha256(certificate_to_der(cert)).digest()


def certificate_public_key(cert: x509.Certificate) -> PublicKey:
    """The certificate's key, which must be Ed25519 or P-256."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise MalformedError(f"certificate key cannot be loaded ({describe(err)})") from err
    key_type_of(key)  # type: ignore[arg-type]
    return key  # type: ignore[return-value]


@functools.lru_cache(maxsize=CACHED_CERTIFICATES)
def certificate_key_fingerprint(cert: x509.Certificate) -> bytes:
    """Fingerprint of the certificate's key (which must be Ed25519 or P-256)."""
    return fingerprint(certificate_public_key(cert))


@functools.lru_cache(maxsize=CACHED_CERTIFICATES)
def subject_attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    """First value of a subject attribute, as text."""
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


@dataclass(frozen=True, slots=True)
class VerifiedCertificateChain:
    """A chain that verified: its leaf, and the trusted root it ends at."""

    leaf: x509.Certificate
    root: x509.Certificate

    @property
    def root_fingerprint(self) -> bytes:
        """Fingerprint of the root's key: how a manufacturer is named."""
        return certificate_key_fingerprint(self.root)

    @property
    def manufacturer(self) -> str:
        """The root's organisation (or common name): the manufacturer shown to people."""
        return (
            subject_attribute(self.root, NameOID.ORGANIZATION_NAME)
            or subject_attribute(self.root, NameOID.COMMON_NAME)
            or "unknown"
        )


def within_validity(cert: x509.Certificate, now: dt.datetime, what: str) -> None:
    """Refuse a certificate that is not valid at `now`."""
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise UntrustedManufacturerError(
            f"{what} is valid from {cert.not_valid_before_utc:%Y-%m-%d} "
            f"to {cert.not_valid_after_utc:%Y-%m-%d}, not at {now:%Y-%m-%d}"
        )


_EXTENSION_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def _extension[T: x509.ExtensionType](cert: x509.Certificate, kind: type[T]) -> T | None:
    """One extension's value, or None; extensions are parsed lazily, so a broken one shows up here."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except _EXTENSION_ERRORS as err:
        raise MalformedError(f"certificate extensions cannot be parsed ({describe(err)})") from err


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    return _extension(cert, x509.BasicConstraints)


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    return _extension(cert, x509.KeyUsage)


#: Critical extensions this path validation understands; any other critical extension fails it (RFC 5280).
_UNDERSTOOD_CRITICAL = frozenset(
    {
        x509.oid.ExtensionOID.BASIC_CONSTRAINTS,
        x509.oid.ExtensionOID.KEY_USAGE,
        x509.oid.ExtensionOID.EXTENDED_KEY_USAGE,
        x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)


def _check_critical_extensions(cert: x509.Certificate, what: str) -> None:
    try:
        extensions = list(cert.extensions)
    except _EXTENSION_ERRORS as err:
        raise MalformedError(f"certificate extensions cannot be parsed ({describe(err)})") from err
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            raise UntrustedManufacturerError(f"{what}: a certificate has an unknown critical extension")


def _check_issuer(issuer: x509.Certificate, below: int, what: str) -> None:
    constraints = _basic_constraints(issuer)
    usage = _key_usage(issuer)
    if constraints is None or not constraints.ca:
        raise UntrustedManufacturerError(f"{what} is not a CA but issued a certificate")
    if usage is None or not usage.key_cert_sign:
        raise UntrustedManufacturerError(f"{what} may not sign certificates (keyUsage)")
    if constraints.path_length is not None and below > constraints.path_length:
        raise UntrustedManufacturerError(
            f"{what} allows {describe(constraints.path_length)} CAs below it, not {below}"
        )


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """X7/X8: `verify_directly_issued_by` compares the child's issuer and the issuer's subject as DER bytes
    (string types included; no case folding or RFC 5280 §7.1 string preparation), then the signature."""
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def verify_certificate_chain(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    what: str,
) -> VerifiedCertificateChain:
    """Verify leaf-first `chain` up to one of `roots`, as the module docstring says."""
    if not chain:
        raise MalformedError(f"{what}: the certificate chain is empty")
    if len(chain) > MAX_CHAIN_CERTIFICATES:
        raise TooLargeError(f"{what}: more than {MAX_CHAIN_CERTIFICATES} certificates")
    if any(certificate_to_der(chain[-1]) == certificate_to_der(root) for root in roots):
        # X2a: the root is the trust anchor the verifier holds, never a link the sender supplies. Dropping
        # it silently would make the chain's meaning (X2's count, X7's path lengths) depend on the roots.
        raise MalformedError(f"{what}: the chain includes the trusted root; send it without the root")
    leaf = chain[0]
    for cert in chain:
        certificate_public_key(cert)
        _check_critical_extensions(cert, what)
    leaf_constraints = _basic_constraints(leaf)
    if leaf_constraints is not None and leaf_constraints.ca:
        raise UntrustedManufacturerError(f"{what}: the signing certificate is a CA certificate")
    leaf_usage = _key_usage(leaf)
    if leaf_usage is not None and not leaf_usage.digital_signature:
        raise UntrustedManufacturerError(f"{what}: the signing certificate may not sign (keyUsage)")
    for position, cert in enumerate(chain):
        within_validity(cert, now, f"{what} certificate {position}")
    for position in range(1, len(chain)):
        if not _issued_by(chain[position - 1], chain[position]):
            raise UntrustedManufacturerError(
                f"{what}: certificate {position - 1} was not issued by certificate {position}"
            )
        _check_issuer(chain[position], position - 1, f"{what} certificate {position}")
    top = chain[-1]
    for root in roots:
        if _issued_by(top, root):
            within_validity(root, now, f"{what} root")
            _check_issuer(root, len(chain) - 1, f"{what} root")
            return VerifiedCertificateChain(leaf=leaf, root=root)
    if any(_claims(top, root) for root in roots):
        raise WrongManufacturerRootError(
            f"{what} names a trusted manufacturer's root as its issuer, but that root did not issue it"
        )
    raise UntrustedManufacturerError(f"{what} does not chain to a trusted manufacturer root")


def _claims(cert: x509.Certificate, root: x509.Certificate) -> bool:
    """Whether `cert` names `root` as its issuer, byte for byte (a look-alike copies the name exactly; a
    chain merely missing an intermediate names the intermediate, and stays untrusted_manufacturer)."""
    return cert.issuer.public_bytes() == root.subject.public_bytes()


def check_offered_root(cert: x509.Certificate) -> None:
    """O3-O5 (§14.7): a certificate a device offers as its manufacturer's root is one: its key is Ed25519 or
    P-256, its critical extensions are known, it is self-issued (issuer name = subject name, DER bytes)
    and self-signed, and it may issue certificates (cA TRUE, keyCertSign). Proves nothing about the
    device: only a proof that verifies under it (P1-P14) does."""
    what = "the offered root"
    certificate_public_key(cert)
    _check_critical_extensions(cert, what)
    if not _issued_by(cert, cert):
        raise UntrustedManufacturerError(f"{what} is not self-issued and self-signed")
    _check_issuer(cert, 0, what)


#: The body of `GET /autoadd/v1/root`: one CBOR byte string, a DER certificate (its head is 3 bytes).
MAX_ROOT_OFFER = MAX_CERTIFICATE_SIZE + 3


def encode_root_offer(cert: x509.Certificate) -> bytes:
    """The body a device answers `GET /autoadd/v1/root` with: its manufacturer's root, as a CBOR bstr."""
    return dumps(certificate_to_der(cert))


def read_root_offer(data: bytes) -> x509.Certificate:
    """O1-O5 (§14.7): a device's root offer, read and checked as a root (nothing it says is believed)."""
    value = loads(data, what="root offer", max_size=MAX_ROOT_OFFER)
    if not isinstance(value, bytes):
        raise MalformedError("a root offer is a byte string holding one DER certificate")
    cert = load_der_certificate(value, what="the offered root")
    check_offered_root(cert)
    return cert

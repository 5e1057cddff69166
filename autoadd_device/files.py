"""The device directory: what a device is shipped with and what it keeps, on disk (docs/protocol.md §16).

    idevid.key    the IDevID private key: one unencrypted PKCS#8 PEM block (`PRIVATE KEY`), mode 0600
    idevid.pem    the IDevID certificate chain: 1 to 3 `CERTIFICATE` blocks, leaf first, then the Device
                  CA(s) in issuing order, never the root
    invoice.cbor  the invoice chain as shipped: the chain array form (§4.2), link 0 the invoice; never a
                  bare COSE_Sign1
    root.pem      optional: the manufacturer's root certificate, offered at /autoadd/v1/root to a home that
                  does not trust the manufacturer yet (its owner is asked, §14.7)
    state.cbor    what the device has learnt since: its chain, its owner imprint and configuration

A file that breaks these rules stops the device at start with an error naming the file and the rule: a
device maker's mistake found on the bench, not a device that serves half an identity. Every write is
atomic (write a temporary file, fsync, rename, fsync the folder): a crash at any moment leaves the old
file or the new one, never a broken one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import os
from pathlib import Path
import re
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from custom_components.autoadd.protocol.certificates import (
    certificate_to_pem,
    check_offered_root,
    load_pem_certificates,
)
from custom_components.autoadd.protocol.chain import decode_chain, encode_chain
from custom_components.autoadd.protocol.const import MAX_CHAIN_ARRAY_SIZE
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import PrivateKey, private_key_from_pem, private_key_to_pem

IDEVID_KEY = "idevid.key"
IDEVID_CHAIN = "idevid.pem"
INVOICE = "invoice.cbor"
STATE = "state.cbor"
ROOT = "root.pem"
#: Certificates idevid.pem may hold: the leaf and at most two CAs (with the root a verifier adds, X2's 4).
MAX_IDEVID_CERTIFICATES: Final = 3
#: The label of each PEM block (RFC 7468): the text between `-----BEGIN ` and `-----`.
_PEM_LABEL: Final = re.compile(rb"-----BEGIN ([^\r\n]*?)-----")
_PRIVATE_KEY: Final = b"PRIVATE KEY"
_CERTIFICATE: Final = b"CERTIFICATE"
#: Labels named in errors; any other is "a PEM block of another kind" (a file's bytes are not echoed).
_KNOWN_LABELS: Final = frozenset(
    {
        b"PRIVATE KEY",
        b"ENCRYPTED PRIVATE KEY",
        b"EC PRIVATE KEY",
        b"RSA PRIVATE KEY",
        b"OPENSSH PRIVATE KEY",
        b"PUBLIC KEY",
        b"CERTIFICATE",
        b"X509 CRL",
        b"CERTIFICATE REQUEST",
    }
)
#: The first byte of a tag-18 item: how a COSE_Sign1 begins, and what a chain array never does.
_COSE_SIGN1_TAG: Final = 0xD2


class DeviceFileError(Exception):
    """A device directory file that is missing or unreadable, naming the file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        """Name the file and the problem."""
        self.path = path
        super().__init__(f"{path}: {problem}")


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise DeviceFileError(path, "missing") from err
    except OSError as err:
        raise DeviceFileError(path, f"cannot be read: {err.strerror}") from err


@dataclass(frozen=True, slots=True)
class DeviceIdentityFiles:
    """The IDevID key, its certificate chain and the shipped invoice chain."""

    key: PrivateKey
    certificates: tuple[x509.Certificate, ...]
    invoice: tuple[bytes, ...]
    #: The manufacturer root the device offers (root.pem), if it was shipped with one.
    root: x509.Certificate | None = None


def _labels(data: bytes) -> list[bytes]:
    return _PEM_LABEL.findall(data)


def _block(label: bytes) -> str:
    return (
        f"a PEM block labelled {label.decode()}" if label in _KNOWN_LABELS else "a PEM block of another kind"
    )


def read_idevid_key(path: Path) -> PrivateKey:
    """idevid.key: exactly one `PRIVATE KEY` block (unencrypted PKCS#8) of an Ed25519 or P-256 key."""
    data = _read(path)
    labels = _labels(data)
    if len(labels) != 1:
        raise DeviceFileError(path, f"holds {len(labels)} PEM blocks; it must hold one PRIVATE KEY block")
    if labels[0] != _PRIVATE_KEY:
        raise DeviceFileError(
            path,
            f"holds {_block(labels[0])}; it must hold an unencrypted PKCS#8 key "
            "(-----BEGIN PRIVATE KEY-----)",
        )
    try:
        return private_key_from_pem(data)
    except AutoAddError as err:
        raise DeviceFileError(path, err.detail) from err


def read_idevid_chain(path: Path, key: PrivateKey) -> tuple[x509.Certificate, ...]:
    """idevid.pem: 1 to 3 `CERTIFICATE` blocks, the first for `key`, each issued by the next, no root.

    "Issued by" and "a root" compare names' DER bytes (§6.2): the issuer of each is byte for byte the
    next one's subject, and no certificate's issuer is byte for byte its own subject."""
    data = _read(path)
    labels = _labels(data)
    for label in labels:
        if label != _CERTIFICATE:
            raise DeviceFileError(path, f"holds {_block(label)}; it must hold CERTIFICATE blocks only")
    if not 1 <= len(labels) <= MAX_IDEVID_CERTIFICATES:
        raise DeviceFileError(
            path,
            f"holds {len(labels)} certificates; it must hold 1 to {MAX_IDEVID_CERTIFICATES} "
            "(the IDevID, then its Device CAs; never the root)",
        )
    try:
        certificates = tuple(load_pem_certificates(data))
    except AutoAddError as err:
        raise DeviceFileError(path, err.detail) from err
    if certificates[0].public_key() != key.public_key():
        raise DeviceFileError(path, "the first certificate is not for the key in idevid.key")
    for position, cert in enumerate(certificates):
        if cert.issuer.public_bytes() == _subject(cert):
            raise DeviceFileError(
                path, f"certificate {position} is a root (its issuer is its subject); leave the root out"
            )
        if position + 1 < len(certificates) and cert.issuer.public_bytes() != _subject(
            certificates[position + 1]
        ):
            raise DeviceFileError(
                path,
                f"certificate {position} is not issued by certificate {position + 1}: not in issuing order",
            )
    return certificates


def _subject(cert: x509.Certificate) -> bytes:
    """A subject name's DER bytes: names are compared byte for byte, as §6.2's X7 compares them."""
    return cert.subject.public_bytes()


def read_invoice(path: Path) -> tuple[bytes, ...]:
    """invoice.cbor: the chain array form (§4.2), link 0 the invoice. A bare COSE_Sign1, tagged or not,
    is the likeliest mistake (it is what signing an invoice gives) and is named as such."""
    data = _read(path)
    bare = "holds a bare COSE_Sign1; it must hold the chain array form, a CBOR array of links: [invoice]"
    if data[:1] == bytes([_COSE_SIGN1_TAG]):
        raise DeviceFileError(path, bare)
    try:
        return decode_chain(data)
    except AutoAddError as err:
        if _is_untagged_cose_sign1(data):
            raise DeviceFileError(path, bare) from err
        raise DeviceFileError(path, err.detail) from err


def _is_untagged_cose_sign1(data: bytes) -> bool:
    """[protected, unprotected, payload, signature]: an array of 4 whose second item is a map."""
    try:
        value = loads(data, what="invoice file", max_size=MAX_CHAIN_ARRAY_SIZE)
    except AutoAddError:
        return False
    return isinstance(value, list) and len(value) == 4 and isinstance(value[1], dict)


def read_root(path: Path, top: x509.Certificate) -> x509.Certificate | None:
    """root.pem, if there is one: exactly one `CERTIFICATE` block, a root (self-issued and self-signed CA,
    O3-O5 of §14.7) that issued the last certificate of idevid.pem."""
    if not path.exists():
        return None
    data = _read(path)
    labels = _labels(data)
    if labels != [_CERTIFICATE]:
        raise DeviceFileError(path, f"holds {len(labels)} PEM blocks; it must hold one CERTIFICATE block")
    try:
        root = load_pem_certificates(data)[0]
        check_offered_root(root)
    except AutoAddError as err:
        raise DeviceFileError(path, err.detail) from err
    try:
        top.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as err:
        raise DeviceFileError(path, "it did not issue the last certificate of idevid.pem") from err
    return root


def load_identity(folder: Path) -> DeviceIdentityFiles:
    """Read a device directory's identity files, naming the file at fault."""
    key = read_idevid_key(folder / IDEVID_KEY)
    certificates = read_idevid_chain(folder / IDEVID_CHAIN, key)
    invoice = read_invoice(folder / INVOICE)
    root = read_root(folder / ROOT, certificates[-1])
    return DeviceIdentityFiles(key, certificates, invoice, root)


def write_identity(folder: Path, key: PrivateKey, certificates: Sequence[x509.Certificate]) -> None:
    """Write a new device's IDevID key and certificate chain."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / IDEVID_KEY, private_key_to_pem(key), mode=0o600)
    write_atomic(folder / IDEVID_CHAIN, b"".join(certificate_to_pem(cert) for cert in certificates))


def write_root(folder: Path, root: x509.Certificate) -> None:
    """Ship the manufacturer's root with a device, for it to offer (root.pem)."""
    write_atomic(folder / ROOT, certificate_to_pem(root))


def write_invoice(folder: Path, links: Sequence[bytes]) -> None:
    """Write the invoice chain a device is shipped with."""
    write_atomic(folder / INVOICE, encode_chain(links))

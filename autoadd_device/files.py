"""The device directory: what a device is shipped with and what it keeps, on disk.

    idevid.key    the IDevID private key (PEM, mode 0600)
    idevid.pem    the IDevID certificate chain, device certificate first (PEM)
    invoice.cbor  the invoice chain as shipped (a CBOR array of links), written by the vendor tool
    state.cbor    what the device has learnt since: its chain, its owner imprint and configuration

Every write is atomic (write a temporary file, fsync, rename, fsync the folder): a crash at any moment
leaves the old file or the new one, never a broken one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import os
from pathlib import Path

from cryptography import x509

from custom_components.autoadd.protocol.certificates import certificate_to_pem, load_pem_certificates
from custom_components.autoadd.protocol.chain import decode_chain, encode_chain
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import PrivateKey, private_key_from_pem, private_key_to_pem

IDEVID_KEY = "idevid.key"
IDEVID_CHAIN = "idevid.pem"
INVOICE = "invoice.cbor"
STATE = "state.cbor"


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


def load_identity(folder: Path) -> DeviceIdentityFiles:
    """Read a device directory's identity files, naming the file at fault."""
    key_path, chain_path, invoice_path = folder / IDEVID_KEY, folder / IDEVID_CHAIN, folder / INVOICE
    try:
        key = private_key_from_pem(_read(key_path))
    except AutoAddError as err:
        raise DeviceFileError(key_path, err.detail) from err
    try:
        certificates = tuple(load_pem_certificates(_read(chain_path)))
    except AutoAddError as err:
        raise DeviceFileError(chain_path, err.detail) from err
    if certificates[0].public_key() != key.public_key():
        raise DeviceFileError(chain_path, "the first certificate is not for the key in idevid.key")
    try:
        invoice = decode_chain(_read(invoice_path))
    except AutoAddError as err:
        raise DeviceFileError(invoice_path, err.detail) from err
    return DeviceIdentityFiles(key, certificates, invoice)


def write_identity(folder: Path, key: PrivateKey, certificates: Sequence[x509.Certificate]) -> None:
    """Write a new device's IDevID key and certificate chain."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / IDEVID_KEY, private_key_to_pem(key), mode=0o600)
    write_atomic(folder / IDEVID_CHAIN, b"".join(certificate_to_pem(cert) for cert in certificates))


def write_invoice(folder: Path, links: Sequence[bytes]) -> None:
    """Write the invoice chain a device is shipped with."""
    write_atomic(folder / INVOICE, encode_chain(links))

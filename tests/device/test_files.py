"""The provisioning files a device maker produces (docs/protocol.md §16), as the reference device reads
them: each rule a file breaks stops the device at start with an error naming the file and the rule, and
nothing in the directory is written (no state.cbor appears, no file changes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import pytest

from autoadd_device import files
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import DeviceFileError, write_identity, write_invoice
from custom_components.autoadd.protocol.certificates import certificate_to_pem
from custom_components.autoadd.protocol.chain import decode_chain
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from tests.factory import Manufacturer

from .conftest import RunningDevice


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _refused(folder: Path, match: str) -> None:
    """The device refuses to start with an error matching `match`, and writes nothing."""
    before = _snapshot(folder)
    with pytest.raises(DeviceFileError, match=match):
        ReferenceDevice(folder, clock=lambda: 0.0)
    assert _snapshot(folder) == before
    assert not (folder / files.STATE).exists()


@pytest.fixture
def folder(make_device: Callable[..., RunningDevice], home: PrivateKey) -> Path:
    """A device directory as the vendor tool writes it (no state.cbor yet)."""
    return make_device([home]).folder


def _p256_folder(tmp_path: Path, maker: Manufacturer, home: PrivateKey) -> Path:
    spec = maker.make_device("SN0256", KeyType.P256)
    folder = tmp_path / "SN0256"
    write_identity(folder, spec.key, [spec.cert])
    write_invoice(folder, [maker.invoice(spec, [home])])
    return folder


def test_the_files_as_written_are_read(
    folder: Path, tmp_path: Path, maker: Manufacturer, home: PrivateKey
) -> None:
    """The form §16 describes, for an Ed25519 and a P-256 device: idevid.key is one PRIVATE KEY block."""
    for directory in (folder, _p256_folder(tmp_path, maker, home)):
        key_pem = (directory / files.IDEVID_KEY).read_bytes()
        assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
        assert key_pem.count(b"-----BEGIN ") == 1
        assert (directory / files.IDEVID_KEY).stat().st_mode & 0o777 == 0o600
        assert isinstance(
            loads((directory / files.INVOICE).read_bytes(), what="invoice", max_size=1 << 20), list
        )
        device = ReferenceDevice(directory, clock=lambda: 0.0)
        assert len(device.chain.links) == 1


def test_a_bare_cose_sign1_invoice_is_refused_by_name(folder: Path) -> None:
    """invoice.cbor holding the invoice itself (tag 18), not the chain array [invoice], is named as such."""
    (invoice,) = decode_chain((folder / files.INVOICE).read_bytes())
    (folder / files.INVOICE).write_bytes(invoice)
    _refused(folder, r"invoice\.cbor: holds a bare COSE_Sign1; it must hold the chain array form")


def test_an_untagged_cose_sign1_invoice_is_refused_by_name(folder: Path) -> None:
    """The same without the tag: [protected, {}, payload, signature]."""
    (invoice,) = decode_chain((folder / files.INVOICE).read_bytes())
    untagged = loads(invoice, what="invoice", max_size=1 << 20).value
    (folder / files.INVOICE).write_bytes(dumps(untagged))
    _refused(folder, r"invoice\.cbor: holds a bare COSE_Sign1")


def test_a_certificate_in_idevid_key_is_refused(folder: Path) -> None:
    (folder / files.IDEVID_KEY).write_bytes((folder / files.IDEVID_CHAIN).read_bytes())
    _refused(
        folder, r"idevid\.key: holds a PEM block labelled CERTIFICATE; it must hold an unencrypted PKCS#8"
    )


def test_an_encrypted_idevid_key_is_refused(folder: Path) -> None:
    key = serialization.load_pem_private_key((folder / files.IDEVID_KEY).read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    (folder / files.IDEVID_KEY).write_bytes(encrypted)
    _refused(folder, r"idevid\.key: holds a PEM block labelled ENCRYPTED PRIVATE KEY")


def test_a_traditional_ec_private_key_is_refused(
    tmp_path: Path, maker: Manufacturer, home: PrivateKey
) -> None:
    """`openssl ecparam -genkey` writes `EC PRIVATE KEY`: not PKCS#8, so not what §16 says the file holds."""
    folder = _p256_folder(tmp_path, maker, home)
    key = serialization.load_pem_private_key((folder / files.IDEVID_KEY).read_bytes(), password=None)
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (folder / files.IDEVID_KEY).write_bytes(traditional)
    _refused(folder, r"idevid\.key: holds a PEM block labelled EC PRIVATE KEY")


def test_two_keys_in_idevid_key_are_refused(folder: Path) -> None:
    pem = (folder / files.IDEVID_KEY).read_bytes()
    (folder / files.IDEVID_KEY).write_bytes(pem + pem)
    _refused(folder, r"idevid\.key: holds 2 PEM blocks; it must hold one PRIVATE KEY block")


def test_an_rsa_idevid_key_is_refused(folder: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / files.IDEVID_KEY).write_bytes(pem)
    _refused(folder, r"idevid\.key: .*not an Ed25519 or P-256 key")


def test_a_root_in_idevid_pem_is_refused(folder: Path, maker: Manufacturer) -> None:
    """idevid.pem never holds the root, even as the last certificate."""
    pem = (folder / files.IDEVID_CHAIN).read_bytes()
    (folder / files.IDEVID_CHAIN).write_bytes(pem + certificate_to_pem(maker.root))
    _refused(folder, r"idevid\.pem: certificate 1 is a root")


def test_more_than_three_certificates_are_refused(folder: Path, maker: Manufacturer) -> None:
    pem = (folder / files.IDEVID_CHAIN).read_bytes()
    (folder / files.IDEVID_CHAIN).write_bytes(pem + certificate_to_pem(maker.signer) * 3)
    _refused(folder, r"idevid\.pem: holds 4 certificates; it must hold 1 to 3")


def test_certificates_out_of_issuing_order_are_refused(folder: Path, maker: Manufacturer) -> None:
    """After the leaf comes the CA that issued it: the invoice signer did not issue the IDevID."""
    pem = (folder / files.IDEVID_CHAIN).read_bytes()
    (folder / files.IDEVID_CHAIN).write_bytes(pem + certificate_to_pem(maker.signer))
    _refused(folder, r"idevid\.pem: certificate 0 is not issued by certificate 1")


def test_a_key_block_in_idevid_pem_is_refused(folder: Path) -> None:
    pem = (folder / files.IDEVID_CHAIN).read_bytes()
    (folder / files.IDEVID_CHAIN).write_bytes(pem + (folder / files.IDEVID_KEY).read_bytes())
    _refused(
        folder, r"idevid\.pem: holds a PEM block labelled PRIVATE KEY; it must hold CERTIFICATE blocks only"
    )


def test_an_empty_idevid_pem_is_refused(folder: Path) -> None:
    (folder / files.IDEVID_CHAIN).write_bytes(b"")
    _refused(folder, r"idevid\.pem: holds 0 certificates")

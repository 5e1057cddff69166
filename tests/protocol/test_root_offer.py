"""The root a device offers (`GET /autoadd/v1/root`, §14.7 O1-O5): one DER certificate in a CBOR byte
string, which must be a root (self-issued, self-signed CA that may issue certificates). Passing these
proves nothing about the device; the proof under that root does."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
import pytest

from custom_components.autoadd.protocol.certificates import (
    MAX_ROOT_OFFER,
    certificate_to_der,
    encode_root_offer,
    read_root_offer,
)
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    MalformedError,
    TooLargeError,
    UnsupportedAlgorithmError,
    UntrustedManufacturerError,
)
from tests.factory import NOW, Manufacturer, fixed_key
from tests.protocol.helpers import key_usage, make_certificate, make_intermediate, name


@pytest.fixture
def maker() -> Manufacturer:
    return Manufacturer.create("Initech")


def test_a_root_offer_round_trips(maker: Manufacturer) -> None:
    """O1-O5 pass for a manufacturer's root as autoadd-vendor makes it; the body is a CBOR bstr."""
    body = encode_root_offer(maker.root)
    assert body == dumps(certificate_to_der(maker.root))
    assert read_root_offer(body) == maker.root


def self_signed(**kwargs: object) -> x509.Certificate:
    key = fixed_key("offered root")
    subject = name("Initech AutoAdd Root CA", "Initech")
    return make_certificate(key, subject, key.public_key(), subject, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (dumps([b"not", b"a bstr"]), MalformedError),  # O1: a byte string
        (dumps("text"), MalformedError),
        (b"\x59\xff", MalformedError),  # O1: not well-formed CBOR
        (b"\x00" * (MAX_ROOT_OFFER + 1), TooLargeError),  # O1: over the limit, before parsing
        (dumps(b"\x30\x03garbage"), MalformedError),  # O2: not DER X.509
        (dumps(b"\x30" * 4097), TooLargeError),  # O2: a certificate over 4 096 bytes
    ],
)
def test_what_is_not_a_certificate_is_refused(body: bytes, error: type[AutoAddError]) -> None:
    with pytest.raises(error):
        read_root_offer(body)


def test_a_key_of_another_type_is_refused() -> None:
    """O3: the root's key is Ed25519 or P-256."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = name("RSA Root", "Initech")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(rsa_key, hashes.SHA256())
    )
    with pytest.raises(UnsupportedAlgorithmError):
        read_root_offer(encode_root_offer(cert))


def test_an_unknown_critical_extension_is_refused() -> None:
    """O3: as X3a."""
    cert = self_signed(
        ca=True,
        usage=key_usage(key_cert_sign=True),
        critical_extra=[x509.InhibitAnyPolicy(0)],
    )
    with pytest.raises(UntrustedManufacturerError):
        read_root_offer(encode_root_offer(cert))


def test_a_certificate_issued_by_another_is_no_root(maker: Manufacturer) -> None:
    """O4: an intermediate (issuer is another's subject), the device's own IDevID: not self-issued."""
    intermediate = make_intermediate(maker.root_key, maker.root, fixed_key("ca"))
    with pytest.raises(UntrustedManufacturerError, match="not self-issued"):
        read_root_offer(encode_root_offer(intermediate))
    with pytest.raises(UntrustedManufacturerError, match="not self-issued"):
        read_root_offer(encode_root_offer(maker.make_device().cert))


def test_a_self_issued_certificate_signed_by_another_key_is_no_root(maker: Manufacturer) -> None:
    """O4: issuer name = subject name, but the signature is not the certificate's own key's."""
    other = fixed_key("someone else")
    subject = name("Initech AutoAdd Root CA", "Initech")
    cert = make_certificate(
        other, subject, maker.root_key.public_key(), subject, ca=True, usage=key_usage(key_cert_sign=True)
    )
    with pytest.raises(UntrustedManufacturerError, match="not self-issued"):
        read_root_offer(encode_root_offer(cert))


@pytest.mark.parametrize(
    "profile",
    [
        {"ca": None, "usage": key_usage(key_cert_sign=True)},  # no basicConstraints
        {"ca": False, "usage": key_usage(key_cert_sign=True)},  # cA FALSE
        {"ca": True, "usage": key_usage(digital_signature=True)},  # no keyCertSign
        {"ca": True, "usage": None},  # no keyUsage
    ],
)
def test_a_root_must_be_a_ca_that_may_issue(profile: dict[str, object]) -> None:
    """O5: basicConstraints cA TRUE and keyUsage keyCertSign."""
    with pytest.raises(UntrustedManufacturerError):
        read_root_offer(encode_root_offer(self_signed(**profile)))


def test_an_extended_key_usage_does_not_matter() -> None:
    """Only the rules above: a non-critical extension the profile does not process is ignored."""
    cert = self_signed(
        ca=True,
        usage=key_usage(key_cert_sign=True),
        extra=[x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])],
    )
    assert read_root_offer(encode_root_offer(cert)) == cert

"""X.509 chains and IDevIDs: leaf first, every issuer a CA within its path length, up to a trusted root."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
import pytest

from custom_components.autoadd.protocol.certificates import (
    MAX_CERTIFICATE_SIZE,
    certificate_hash,
    certificate_public_key,
    certificate_to_der,
    certificate_to_pem,
    load_der_certificate,
    load_pem_certificates,
    subject_attribute,
    verify_certificate_chain,
)
from custom_components.autoadd.protocol.errors import (
    MalformedError,
    TooLargeError,
    UnsupportedAlgorithmError,
    UntrustedManufacturerError,
)
from custom_components.autoadd.protocol.idevid import device_id_for, verify_idevid
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint
from custom_components.autoadd.protocol.manufacturer import (
    NO_EXPIRY,
    make_device_ca_certificate,
    make_idevid_certificate,
    make_root_certificate,
)
from tests.factory import NOW, Manufacturer, fixed_key
from tests.protocol.helpers import key_usage, make_certificate, make_intermediate, name

DAY = dt.timedelta(days=1)


def _idevid(issuer_key: PrivateKey, issuer: x509.Certificate, device: PrivateKey) -> x509.Certificate:
    return make_idevid_certificate(
        issuer_key,
        issuer,
        device.public_key(),
        serial_number="SN42",
        model="Plug 2",
        now=NOW - DAY,
        serial=42,
    )


def _der(*certs: x509.Certificate) -> list[bytes]:
    return [certificate_to_der(cert) for cert in certs]


def _leaf(
    issuer_key: PrivateKey, issuer: x509.Certificate, *, ca: bool | None = False, usage: x509.KeyUsage | None
) -> x509.Certificate:
    return make_certificate(
        issuer_key,
        issuer.subject,
        fixed_key("leaf").public_key(),
        name("leaf"),
        ca=ca,
        usage=usage,
    )


def _refused(
    chain: list[x509.Certificate],
    roots: list[x509.Certificate],
    match: str,
    now: dt.datetime = NOW,
    code: str = "untrusted_manufacturer",
) -> None:
    with pytest.raises(UntrustedManufacturerError, match=match) as err:
        verify_certificate_chain(chain, roots, now, what="test")
    assert err.value.code == code


@pytest.fixture(params=list(KeyType), ids=[t.value for t in KeyType])
def maker(request: pytest.FixtureRequest) -> Manufacturer:
    """An Ed25519 and a P-256 manufacturer."""
    return Manufacturer.create("Acme", request.param)


# --- IDevIDs that verify ------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", list(KeyType))
def test_idevid_directly_under_root(maker: Manufacturer, device_type: KeyType) -> None:
    """An IDevID issued by the root verifies, and names the device, its key and its manufacturer."""
    device = maker.make_device("SN7", device_type)
    identity = verify_idevid(_der(device.cert), [maker.root], NOW)
    assert identity.device_id == device.device_id
    assert identity.certificate_hash == certificate_hash(device.cert)
    assert fingerprint(identity.public_key) == fingerprint(device.key.public_key())
    assert identity.serial_number == "SN7"
    assert identity.model == "Lamp 1"
    assert identity.manufacturer == "Acme"
    assert identity.issuer.root == maker.root
    assert identity.issuer.root_fingerprint == fingerprint(maker.root_key.public_key())


def test_idevid_below_an_intermediate(maker: Manufacturer) -> None:
    """An IDevID issued by an intermediate CA verifies with the intermediate sent after it."""
    inter_key = fixed_key("intermediate", KeyType.P256)
    inter = make_intermediate(maker.root_key, maker.root, inter_key)
    device_key = fixed_key("device", KeyType.ED25519)
    identity = verify_idevid(_der(_idevid(inter_key, inter, device_key), inter), [maker.root], NOW)
    assert identity.device_id == device_id_for(device_key.public_key())
    assert identity.manufacturer == "Acme"
    assert identity.serial_number == "SN42"
    assert identity.model == "Plug 2"


@pytest.mark.parametrize("ca_type", list(KeyType))
def test_idevid_below_a_manufacturer_device_ca(maker: Manufacturer, ca_type: KeyType) -> None:
    """An IDevID issued by the manufacturer's device CA (the vendor tool's intermediate) verifies."""
    ca_key = fixed_key("device ca", ca_type)
    device_ca = make_device_ca_certificate(
        maker.root_key, maker.root, ca_key.public_key(), now=NOW - 30 * DAY, serial=3
    )
    device_key = fixed_key("device", KeyType.P256)
    leaf = _idevid(ca_key, device_ca, device_key)
    identity = verify_idevid(_der(leaf, device_ca), [maker.root], NOW)
    assert identity.device_id == device_id_for(device_key.public_key())
    assert identity.issuer.root == maker.root
    # The device CA has path length 0: it may not issue another CA.
    sub_key = fixed_key("sub ca")
    sub = make_intermediate(ca_key, device_ca, sub_key, common_name="Sub CA")
    _refused([_idevid(sub_key, sub, device_key), sub, device_ca], [maker.root], "allows 0 CAs below it")


def test_root_is_found_among_several(maker: Manufacturer) -> None:
    """The chain may end at any of the trusted roots."""
    other = Manufacturer.create("Other")
    device = maker.make_device()
    identity = verify_idevid(_der(device.cert), [other.root, maker.root], NOW)
    assert identity.issuer.root == maker.root


def test_idevid_chain_that_includes_the_root_is_malformed(maker: Manufacturer) -> None:
    """X2a: an IDevID chain never carries the trusted root; one that does is `malformed`, not repaired."""
    device = maker.make_device()
    with pytest.raises(MalformedError, match="includes the trusted root") as err:
        verify_idevid(_der(device.cert, maker.root), [maker.root], NOW)
    assert err.value.code == "malformed"
    assert verify_idevid(_der(device.cert), [maker.root], NOW).device_id == device.device_id


def test_idevid_never_expires(maker: Manufacturer) -> None:
    """An IDevID's notAfter is 9999-12-31 23:59:59 UTC (IEEE 802.1AR)."""
    device = maker.make_device()
    assert device.cert.not_valid_after_utc == NO_EXPIRY


def test_device_id_is_the_key_fingerprint(maker: Manufacturer) -> None:
    """The device identifier is the SHA-256 of the IDevID key, not of the certificate."""
    device = maker.make_device()
    reissued = make_idevid_certificate(
        maker.root_key,
        maker.root,
        device.key.public_key(),
        serial_number="SN0001",
        model="Lamp 1 rev B",
        now=NOW - DAY,
        serial=9999,
    )
    first = verify_idevid(_der(device.cert), [maker.root], NOW)
    second = verify_idevid(_der(reissued), [maker.root], NOW)
    assert first.device_id == second.device_id == device_id_for(device.key.public_key())
    assert first.certificate_hash != second.certificate_hash


def test_verified_chain_is_immutable(maker: Manufacturer) -> None:
    """A verified chain and identity cannot be changed after the fact."""
    identity = verify_idevid(_der(maker.make_device().cert), [maker.root], NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.device_id = bytes(32)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.issuer.root = identity.certificate  # type: ignore[misc]


def test_manufacturer_name_falls_back_to_common_name() -> None:
    """A root without an organisation is named by its common name, and one without either 'unknown'."""
    key = fixed_key("bare root")
    for subject, expected in ((name("Bare Root CA", None), "Bare Root CA"), (x509.Name([]), "unknown")):
        root = make_certificate(
            key, subject, key.public_key(), subject, ca=True, usage=key_usage(key_cert_sign=True)
        )
        leaf = _leaf(key, root, usage=None)
        assert verify_certificate_chain([leaf], [root], NOW, what="test").manufacturer == expected


def test_leaf_without_extensions_may_sign() -> None:
    """A leaf without basicConstraints and keyUsage is not a CA and may sign."""
    maker = Manufacturer.create()
    leaf = _leaf(maker.root_key, maker.root, ca=None, usage=None)
    assert verify_certificate_chain([leaf], [maker.root], NOW, what="test").leaf == leaf


# --- Refusals -----------------------------------------------------------------------------------------------


def test_unknown_root(maker: Manufacturer) -> None:
    """A chain that ends at a root nobody trusts is refused."""
    stranger = Manufacturer.create("Stranger", KeyType.P256)
    _refused([maker.make_device().cert], [stranger.root], "does not chain to a trusted")
    _refused([maker.make_device().cert], [], "does not chain to a trusted")


def test_same_name_different_key_is_not_the_root(maker: Manufacturer) -> None:
    """A root with the same name but another key is not the issuer: the chain claims a trusted root that
    did not issue it (a counterfeit, from the home's side), which has a code of its own (X8)."""
    impostor_key = fixed_key("impostor", KeyType.ED25519)
    impostor = make_root_certificate(impostor_key, "Acme", now=NOW - 30 * DAY, serial=1)
    assert impostor.subject == maker.root.subject
    _refused([maker.make_device().cert], [impostor], "did not issue it", code="wrong_manufacturer_root")


def test_only_a_claimed_root_gives_the_counterfeit_code(maker: Manufacturer) -> None:
    """Another manufacturer's root is plain untrusted_manufacturer; so is an issuer with the trusted
    root's O under another name (a chain missing its intermediate looks like that): X8."""
    other = Manufacturer.create("Other")
    _refused([maker.make_device().cert], [other.root], "does not chain to a trusted")
    fake_root = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Acme Root CA 2"),
        ]
    )
    _refused([_signed_under(maker, fake_root)], [maker.root], "does not chain to a trusted")


def test_not_yet_valid_idevid(maker: Manufacturer) -> None:
    """A certificate is refused before its notBefore."""
    _refused([maker.make_device().cert], [maker.root], "certificate 0 is valid from", now=NOW - 2 * DAY)


def test_expired_leaf(maker: Manufacturer) -> None:
    """A certificate is refused after its notAfter."""
    leaf = make_certificate(
        maker.root_key,
        maker.root.subject,
        fixed_key("old").public_key(),
        name("old"),
        ca=False,
        usage=key_usage(digital_signature=True),
        not_before=NOW - 20 * DAY,
        not_after=NOW - DAY,
    )
    _refused([leaf], [maker.root], "certificate 0 is valid from")


def test_expired_intermediate(maker: Manufacturer) -> None:
    """Every certificate in the chain must be valid, intermediates included."""
    inter_key = fixed_key("inter")
    inter = make_intermediate(maker.root_key, maker.root, inter_key, not_after=NOW - DAY)
    _refused([_idevid(inter_key, inter, fixed_key("d")), inter], [maker.root], "certificate 1 is valid")


def test_expired_root(maker: Manufacturer) -> None:
    """The trusted root must itself be valid at the time of verification."""
    short = make_certificate(
        maker.root_key,
        maker.root.subject,
        maker.root_key.public_key(),
        maker.root.subject,
        ca=True,
        path_length=1,
        usage=key_usage(key_cert_sign=True),
        not_after=NOW + DAY,
    )
    device = maker.make_device()
    _refused([device.cert], [short], "root is valid from", now=NOW + 2 * DAY)


def test_manufacturer_certificates_never_expire(maker: Manufacturer) -> None:
    """Roots, Device CAs and IDevIDs carry 9999-12-31: a device can be onboarded however old it is."""
    device = maker.make_device()
    assert maker.root.not_valid_after_utc == NO_EXPIRY
    assert device.cert.not_valid_after_utc == NO_EXPIRY
    verify_certificate_chain([device.cert], [maker.root], NOW + 365 * 80 * DAY, what="old device")


def test_unknown_critical_extension_is_refused(maker: Manufacturer) -> None:
    """A certificate with a critical extension this validation does not understand fails (RFC 5280)."""
    leaf = make_certificate(
        maker.root_key,
        maker.root.subject,
        fixed_key("critical").public_key(),
        name("critical"),
        ca=False,
        usage=key_usage(digital_signature=True),
        critical_extra=[x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05")],
    )
    _refused([leaf], [maker.root], "unknown critical extension")


def _malformed(chain: list[x509.Certificate], roots: list[x509.Certificate]) -> None:
    with pytest.raises(MalformedError, match="includes the trusted root") as err:
        verify_certificate_chain(chain, roots, NOW, what="test")
    assert err.value.code == "malformed"


def test_trailing_trusted_root_is_refused_before_anything_else(maker: Manufacturer) -> None:
    """X2a runs after the X2 count: a root after a Device CA, or a root alone, is `malformed`; a fifth
    certificate that is the root is still `too_large` (the root is never dropped to fit the limit)."""
    ca_key = fixed_key("device ca")
    device_ca = make_device_ca_certificate(
        maker.root_key, maker.root, ca_key.public_key(), now=NOW - DAY, serial=3
    )
    leaf = _idevid(ca_key, device_ca, fixed_key("device"))
    assert verify_certificate_chain([leaf, device_ca], [maker.root], NOW, what="test").root == maker.root
    _malformed([leaf, device_ca, maker.root], [maker.root])
    _malformed([maker.root], [maker.root])
    other = Manufacturer.create("Other")
    _malformed([leaf, device_ca, maker.root], [other.root, maker.root])  # any trusted root, in any position
    with pytest.raises(TooLargeError):
        verify_certificate_chain(
            [leaf, device_ca, device_ca, device_ca, maker.root], [maker.root], NOW, what="t"
        )


def test_trailing_root_that_is_not_trusted_is_just_an_untrusted_link(maker: Manufacturer) -> None:
    """Only a byte-identical trusted root is X2a; another self-signed certificate fails X7 as a link."""
    other = Manufacturer.create("Other")
    _refused(
        [maker.make_device().cert, other.root], [maker.root], "certificate 0 was not issued by certificate 1"
    )


def _signed_under(maker: Manufacturer, issuer_name: x509.Name) -> x509.Certificate:
    return make_certificate(
        maker.root_key,
        issuer_name,
        fixed_key("named leaf").public_key(),
        name("named leaf"),
        ca=False,
        usage=key_usage(digital_signature=True),
    )


def _text(value: str | bytes) -> str:
    """A name attribute's value: str | bytes to the type checker (cryptography 50), text in these names."""
    assert isinstance(value, str)
    return value


def _as_type(subject: x509.Name, kind: _ASN1Type) -> x509.Name:
    return x509.Name([x509.NameAttribute(a.oid, _text(a.value), kind) for a in subject])


def test_issuer_names_are_compared_as_der_bytes(maker: Manufacturer) -> None:
    """X8 (and X7, the same check): the leaf's issuer must be the root's subject byte for byte. The same
    text in another string type, another case, or with an extra space names someone else."""
    subject = maker.root.subject
    assert (
        verify_certificate_chain([_signed_under(maker, subject)], [maker.root], NOW, what="t").root
        == maker.root
    )
    printable = _as_type(subject, _ASN1Type.PrintableString)
    assert printable == subject  # cryptography's Name equality ignores the string type; X8 does not
    variants = [
        printable,
        x509.Name([x509.NameAttribute(a.oid, _text(a.value).lower()) for a in subject]),
        x509.Name([x509.NameAttribute(a.oid, f"{_text(a.value)} ") for a in subject]),
        x509.Name(list(reversed(list(subject)))),
    ]
    for issuer_name in variants:
        _refused([_signed_under(maker, issuer_name)], [maker.root], "does not chain to a trusted")


def test_intermediate_names_are_compared_as_der_bytes(maker: Manufacturer) -> None:
    """X7: an IDevID whose issuer is its CA's subject in upper case is not issued by that CA."""
    ca_key = fixed_key("device ca")
    device_ca = make_device_ca_certificate(
        maker.root_key, maker.root, ca_key.public_key(), now=NOW - DAY, serial=3
    )
    shouted = x509.Name([x509.NameAttribute(a.oid, str(a.value).upper()) for a in device_ca.subject])
    leaf = make_certificate(
        ca_key,
        shouted,
        fixed_key("device").public_key(),
        name("device"),
        ca=False,
        usage=key_usage(digital_signature=True),
    )
    _refused([leaf, device_ca], [maker.root], "certificate 0 was not issued by certificate 1")


def test_validity_bounds_are_inclusive(maker: Manufacturer) -> None:
    """A certificate is valid at exactly its notBefore and exactly its notAfter."""
    leaf = make_certificate(
        maker.root_key,
        maker.root.subject,
        fixed_key("bounds").public_key(),
        name("bounds"),
        ca=False,
        usage=key_usage(digital_signature=True),
        not_before=NOW - DAY,
        not_after=NOW + DAY,
    )
    for when in (NOW - DAY, NOW + DAY):
        assert verify_certificate_chain([leaf], [maker.root], when, what="test").leaf == leaf
    _refused([leaf], [maker.root], "valid from", now=NOW + DAY + dt.timedelta(seconds=1))


def test_first_matching_root_decides(maker: Manufacturer) -> None:
    """The first trusted root that issued the chain decides: if it fails, later roots are not tried."""
    expired = make_certificate(
        maker.root_key,
        maker.root.subject,
        maker.root_key.public_key(),
        maker.root.subject,
        ca=True,
        path_length=1,
        usage=key_usage(key_cert_sign=True),
        not_before=NOW - 60 * DAY,
        not_after=NOW - DAY,
    )
    device = maker.make_device()
    _refused([device.cert], [expired, maker.root], "root is valid from")
    assert verify_certificate_chain([device.cert], [maker.root, expired], NOW, what="t").root == maker.root


def test_issuer_not_a_ca(maker: Manufacturer) -> None:
    """An intermediate whose basicConstraints say it is not a CA may not issue certificates."""
    inter_key = fixed_key("inter")
    inter = make_intermediate(maker.root_key, maker.root, inter_key, ca=False)
    _refused([_idevid(inter_key, inter, fixed_key("d")), inter], [maker.root], "is not a CA")


def test_issuer_without_basic_constraints(maker: Manufacturer) -> None:
    """An intermediate without basicConstraints is not a CA."""
    inter_key = fixed_key("inter")
    inter = make_intermediate(maker.root_key, maker.root, inter_key, ca=None)
    _refused([_idevid(inter_key, inter, fixed_key("d")), inter], [maker.root], "is not a CA")


def test_root_not_a_ca() -> None:
    """A trusted root that is not a CA issues nothing."""
    key = fixed_key("leafy root")
    subject = name("Leafy Root")
    root = make_certificate(key, subject, key.public_key(), subject, ca=False, usage=None)
    _refused([_leaf(key, root, usage=None)], [root], "root is not a CA")


@pytest.mark.parametrize(
    "usage", [key_usage(digital_signature=True), None], ids=["digital-signature-only", "no-key-usage"]
)
def test_issuer_without_key_cert_sign(maker: Manufacturer, usage: x509.KeyUsage | None) -> None:
    """A CA whose keyUsage lacks keyCertSign (or has no keyUsage) may not sign certificates."""
    inter_key = fixed_key("inter")
    inter = make_certificate(
        maker.root_key, maker.root.subject, inter_key.public_key(), name("inter"), ca=True, usage=usage
    )
    _refused([_idevid(inter_key, inter, fixed_key("d")), inter], [maker.root], "may not sign certificates")


def test_root_path_length_exceeded(maker: Manufacturer) -> None:
    """The root allows one CA below it: two intermediates are refused."""
    first_key, second_key = fixed_key("first"), fixed_key("second")
    first = make_intermediate(maker.root_key, maker.root, first_key, common_name="First CA", path_length=1)
    second = make_intermediate(first_key, first, second_key, common_name="Second CA")
    leaf = _idevid(second_key, second, fixed_key("d"))
    _refused([leaf, second, first], [maker.root], r"root allows 1 CAs below it, not 2")


def test_intermediate_path_length_exceeded(maker: Manufacturer) -> None:
    """An intermediate with path length 0 may not issue another CA."""
    key = fixed_key("top")
    root = make_certificate(
        key, name("Top"), key.public_key(), name("Top"), ca=True, usage=key_usage(key_cert_sign=True)
    )
    first_key, second_key = fixed_key("first"), fixed_key("second")
    first = make_intermediate(key, root, first_key, common_name="First CA", path_length=0)
    second = make_intermediate(first_key, first, second_key, common_name="Second CA")
    leaf = _idevid(second_key, second, fixed_key("d"))
    _refused([leaf, second, first], [root], r"certificate 2 allows 0 CAs below it, not 1")


def test_unlimited_path_length_is_honoured(maker: Manufacturer) -> None:
    """Without a path length, a CA may have any number of CAs below it (within the chain limit)."""
    key = fixed_key("top")
    root = make_certificate(
        key, name("Top"), key.public_key(), name("Top"), ca=True, usage=key_usage(key_cert_sign=True)
    )
    first_key, second_key = fixed_key("first"), fixed_key("second")
    first = make_intermediate(key, root, first_key, common_name="First CA", path_length=None)
    second = make_intermediate(first_key, first, second_key, common_name="Second CA")
    leaf = _idevid(second_key, second, fixed_key("d"))
    assert verify_certificate_chain([leaf, second, first], [root], NOW, what="test").root == root


def test_leaf_that_is_a_ca(maker: Manufacturer) -> None:
    """The signing certificate may not be a CA certificate."""
    inter = make_intermediate(maker.root_key, maker.root, fixed_key("inter"))
    _refused([inter], [maker.root], "signing certificate is a CA")


def test_leaf_without_digital_signature(maker: Manufacturer) -> None:
    """A leaf whose keyUsage lacks digitalSignature may not sign."""
    leaf = _leaf(maker.root_key, maker.root, usage=key_usage(content_commitment=True))
    _refused([leaf], [maker.root], r"may not sign \(keyUsage\)")


def test_chain_out_of_order(maker: Manufacturer) -> None:
    """Each certificate must be issued by the next one in the chain."""
    inter_key = fixed_key("inter")
    inter = make_intermediate(maker.root_key, maker.root, inter_key)
    unrelated = make_intermediate(maker.root_key, maker.root, fixed_key("unrelated"), common_name="Other CA")
    leaf = _idevid(inter_key, inter, fixed_key("d"))
    _refused([leaf, unrelated], [maker.root], "certificate 0 was not issued by certificate 1")


def test_chain_too_long(maker: Manufacturer) -> None:
    """More than four certificates are refused before any is checked."""
    device = maker.make_device()
    with pytest.raises(TooLargeError) as err:
        verify_certificate_chain([device.cert] * 5, [maker.root], NOW, what="test")
    assert err.value.code == "too_large"
    with pytest.raises(TooLargeError):
        verify_idevid(_der(device.cert) * 5, [maker.root], NOW)


def test_empty_chain(maker: Manufacturer) -> None:
    """An empty chain is malformed."""
    with pytest.raises(MalformedError) as err:
        verify_certificate_chain([], [maker.root], NOW, what="test")
    assert err.value.code == "malformed"
    with pytest.raises(MalformedError):
        verify_idevid([], [maker.root], NOW)


def test_certificate_too_large(maker: Manufacturer) -> None:
    """A certificate of more than 4096 bytes is refused before it is parsed."""
    big = make_certificate(
        maker.root_key,
        maker.root.subject,
        fixed_key("big").public_key(),
        name("big"),
        ca=False,
        usage=key_usage(digital_signature=True),
        extra=[x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), bytes(5000))],
    )
    assert len(certificate_to_der(big)) > MAX_CERTIFICATE_SIZE
    with pytest.raises(TooLargeError) as err:
        load_der_certificate(certificate_to_der(big))
    assert err.value.code == "too_large"
    with pytest.raises(TooLargeError, match="IDevID certificate 0"):
        verify_idevid(_der(big), [maker.root], NOW)


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x01", b"garbage"], ids=["empty", "short", "text"])
def test_malformed_der(maker: Manufacturer, data: bytes) -> None:
    """Bytes that are not a DER certificate are malformed."""
    with pytest.raises(MalformedError) as err:
        verify_idevid([data], [maker.root], NOW)
    assert err.value.code == "malformed"


def _with_broken_extension(cert: x509.Certificate) -> x509.Certificate:
    """The certificate with its subjectKeyIdentifier's inner OCTET STRING tag changed: DER that loads, but
    whose extensions do not parse."""
    der = certificate_to_der(cert)
    at = der.index(bytes.fromhex("0603551d0e0416")) + 7
    assert der[at : at + 2] == bytes.fromhex("0414")
    return x509.load_der_x509_certificate(der[:at] + b"\x05" + der[at + 1 :])


def test_leaf_with_unparsable_extension(maker: Manufacturer) -> None:
    """A certificate whose extensions do not parse is malformed (not a crash)."""
    broken = _with_broken_extension(maker.make_device().cert)
    with pytest.raises(MalformedError) as err:
        verify_idevid(_der(broken), [maker.root], NOW)
    assert err.value.code == "malformed"


def test_intermediate_with_unparsable_extension(maker: Manufacturer) -> None:
    """An intermediate whose extensions do not parse is malformed."""
    inter_key = fixed_key("inter")
    inter = _with_broken_extension(
        make_device_ca_certificate(
            maker.root_key, maker.root, inter_key.public_key(), now=NOW - DAY, serial=5
        )
    )
    with pytest.raises(MalformedError):
        verify_certificate_chain(
            [_idevid(inter_key, inter, fixed_key("d")), inter], [maker.root], NOW, what="test"
        )


def test_root_with_unparsable_extension(maker: Manufacturer) -> None:
    """A trusted root whose extensions do not parse is reported as malformed, not a crash."""
    with pytest.raises(MalformedError):
        verify_idevid(_der(maker.make_device().cert), [_with_broken_extension(maker.root)], NOW)


def test_truncated_der(maker: Manufacturer) -> None:
    """A real certificate cut short is malformed."""
    with pytest.raises(MalformedError):
        load_der_certificate(certificate_to_der(maker.root)[:-1])


def test_rsa_certificate_is_refused() -> None:
    """A certificate for an RSA key is outside the allow-list, wherever it is in the chain."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    maker = Manufacturer.create()
    leaf = make_certificate(
        maker.root_key, maker.root.subject, rsa_key.public_key(), name("rsa"), ca=False, usage=None
    )
    with pytest.raises(UnsupportedAlgorithmError) as err:
        verify_certificate_chain([leaf], [maker.root], NOW, what="test")
    assert err.value.code == "unsupported_algorithm"
    with pytest.raises(UnsupportedAlgorithmError):
        certificate_public_key(leaf)


# --- Forms --------------------------------------------------------------------------------------------------


def test_pem_round_trip(maker: Manufacturer) -> None:
    """Certificates written as PEM read back unchanged, several in one text."""
    device = maker.make_device()
    pem = certificate_to_pem(maker.root) + certificate_to_pem(device.cert)
    assert load_pem_certificates(pem) == [maker.root, device.cert]
    assert load_der_certificate(certificate_to_der(device.cert)) == device.cert


@pytest.mark.parametrize("data", [b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_malformed_pem(data: bytes) -> None:
    """Text that holds no PEM certificate is malformed."""
    with pytest.raises(MalformedError) as err:
        load_pem_certificates(data)
    assert err.value.code == "malformed"


def test_subject_attribute(maker: Manufacturer) -> None:
    """Subject attributes are read as text, or None when absent."""
    assert subject_attribute(maker.root, NameOID.ORGANIZATION_NAME) == "Acme"
    assert subject_attribute(maker.root, NameOID.SERIAL_NUMBER) is None


# --- Certificates that load but do not decode ---------------------------------------------------------------

_UNDECODABLE = {
    # notAfter 0000-12-31: the DER is fine, but no datetime holds year 0
    "year-0": (b"99991231235959Z", b"00001231235959Z"),
    # the model (title) and CN are UTF8Strings that are not UTF-8
    "non-utf8-name": (b"Lamp 1", b"\xff\xfe\xfd\xfc\xfb\xfa"),
    # O is tagged 13 (RELATIVE-OID), no string type: cryptography raised KeyError (found by
    # test_load_der_certificate at AUTOADD_FUZZ_SCALE=4)
    "unknown-string-type": (b"\x06\x03U\x04\n\x0c\x04Acme", b"\x06\x03U\x04\n\x0d\x04Acme"),
}


@pytest.mark.parametrize("kind", list(_UNDECODABLE))
def test_certificate_whose_fields_do_not_decode_is_malformed(kind: str) -> None:
    """cryptography loads such a certificate and raises ValueError only when its validity or subject is read
    (in the path check, or when a record reads the model): reading it as DER or PEM says `malformed` (X0)."""
    old, new = _UNDECODABLE[kind]
    der = certificate_to_der(Manufacturer.create().make_device().cert).replace(old, new)
    assert x509.load_der_x509_certificate(der)  # cryptography itself takes it
    with pytest.raises(MalformedError, match="does not decode"):
        load_der_certificate(der, what="IDevID certificate 0")
    pem = certificate_to_pem(x509.load_der_x509_certificate(der))
    with pytest.raises(MalformedError, match="does not decode"):
        load_pem_certificates(pem)

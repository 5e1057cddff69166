"""Hand-crafted objects for the protocol tests: tampered COSE, payloads signed as-is, certificates.

Every tampered object is re-encoded deterministically (`canonical=True`), so a test breaks exactly the rule
it names and not, by accident, the deterministic-encoding rule as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import datetime as dt
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from cwt import COSE
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.chain import ChainHead
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import (
    PrivateKey,
    PublicKey,
    algorithm_for,
    fingerprint,
    private_key_to_pem,
    public_key_to_bytes,
)
from tests.factory import NOW, NOW_TS

COSE_SIGN1_TAG = 18


def encode(value: Any) -> bytes:
    """Deterministic CBOR, as the core writes it."""
    return cbor2.dumps(value, canonical=True)


# --- COSE_Sign1 surgery ---------------------------------------------------------------------------------


def cose_parts(data: bytes) -> list[Any]:
    """The four parts of a tagged COSE_Sign1: protected (bytes), unprotected, payload, signature."""
    outer = cbor2.loads(data)
    assert isinstance(outer, cbor2.CBORTag)
    assert outer.tag == COSE_SIGN1_TAG
    parts = outer.value
    assert isinstance(parts, list)
    return list(parts)


def cose_build(parts: Sequence[Any], *, tag: int | None = COSE_SIGN1_TAG) -> bytes:
    """Encode parts back into a COSE_Sign1 (untagged with `tag=None`)."""
    body = list(parts)
    return encode(body if tag is None else cbor2.CBORTag(tag, body))


def protected_of(data: bytes) -> dict[int, Any]:
    """The decoded protected header."""
    header = cbor2.loads(cose_parts(data)[0])
    assert isinstance(header, dict)
    return header


def payload_of(data: bytes) -> dict[int, Any]:
    """The decoded payload."""
    payload = cbor2.loads(cose_parts(data)[2])
    assert isinstance(payload, dict)
    return payload


def with_protected(data: bytes, change: Callable[[dict[int, Any]], None]) -> bytes:
    """The same object with its protected header changed in place by `change` (the signature is kept)."""
    parts = cose_parts(data)
    header = protected_of(data)
    change(header)
    parts[0] = encode(header)
    return cose_build(parts)


def with_payload(data: bytes, change: Callable[[dict[int, Any]], None]) -> bytes:
    """The same object with its payload changed in place by `change` (the signature is kept)."""
    parts = cose_parts(data)
    payload = payload_of(data)
    change(payload)
    parts[2] = encode(payload)
    return cose_build(parts)


def with_part(data: bytes, position: int, value: Any) -> bytes:
    """The same object with one of its four parts replaced as is."""
    parts = cose_parts(data)
    parts[position] = value
    return cose_build(parts)


def flip_signature(data: bytes, byte: int = 0) -> bytes:
    """The same object with one bit of its signature flipped."""
    parts = cose_parts(data)
    signature = bytearray(parts[3])
    signature[byte] ^= 0x01
    parts[3] = bytes(signature)
    return cose_build(parts)


def sign_raw(
    payload: bytes,
    content_type: str,
    key: PrivateKey,
    *,
    kid: bytes | None = None,
    x5chain: Sequence[bytes] = (),
) -> bytes:
    """Sign payload bytes exactly as given (for payloads the core's encoder would never write)."""
    protected: dict[int, Any] = {cose.HEADER_ALG: algorithm_for(key), cose.HEADER_CONTENT_TYPE: content_type}
    if kid is not None:
        protected[cose.HEADER_KID] = kid
    if x5chain:
        protected[cose.HEADER_X5CHAIN] = list(x5chain)
    cose_key = cose._cose_key(key, private_key_to_pem(key))
    message = COSE.new(deterministic_header=True).encode_and_sign(
        payload, cose_key, protected=protected, unprotected={}
    )
    assert isinstance(message, bytes)
    return encode(cbor2.loads(message))


def non_canonical_map(value: dict[int, Any]) -> bytes:
    """A CBOR map with its keys in descending order: well formed, but not deterministic."""
    assert len(value) < 24
    items = sorted(value.items(), reverse=True)
    return bytes([0xA0 + len(items)]) + b"".join(encode(k) + encode(v) for k, v in items)


# --- Payloads -------------------------------------------------------------------------------------------


def link_payload(
    head: ChainHead,
    owners: Sequence[PublicKey],
    *,
    reason: str = "rotate",
    issued_at: int = NOW_TS,
) -> dict[int, Any]:
    """The payload a correct link extending `head` would carry."""
    return {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: head.device_id,
        Label.PREVIOUS: head.digest,
        Label.SEQUENCE: head.sequence + 1,
        Label.OWNERS: [public_key_to_bytes(owner) for owner in owners],
        Label.REASON: reason,
        Label.ISSUED_AT: issued_at,
    }


def sign_link(payload: dict[int, Any], signer: PrivateKey, *, kid: bytes | None = None) -> bytes:
    """Sign a link payload as is, with the signer's fingerprint as kid unless told otherwise."""
    return cose.sign(
        payload, ContentType.LINK, signer, kid=kid if kid is not None else fingerprint(signer.public_key())
    )


# --- Certificates ---------------------------------------------------------------------------------------


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def name(common_name: str, organization: str | None = "Acme") -> x509.Name:
    """A subject or issuer name."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, content_commitment: bool = False
) -> x509.KeyUsage:
    """A keyUsage extension with only the named bits."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_certificate(
    issuer_key: PrivateKey,
    issuer_name: x509.Name,
    subject: Any,
    subject_name: x509.Name,
    *,
    ca: bool | None,
    path_length: int | None = None,
    usage: x509.KeyUsage | None = None,
    not_before: dt.datetime = NOW - dt.timedelta(days=30),
    not_after: dt.datetime = NOW + dt.timedelta(days=365),
    serial: int = 7,
    extra: Sequence[x509.ExtensionType] = (),
    critical_extra: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    """A certificate made with `cryptography` directly, so any profile rule can be broken on purpose.

    `ca=None` leaves basicConstraints out; `usage=None` leaves keyUsage out.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(subject)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    for extension in critical_extra:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def make_intermediate(
    issuer_key: PrivateKey,
    issuer: x509.Certificate,
    key: PrivateKey,
    *,
    common_name: str = "Acme Intermediate CA",
    path_length: int | None = 0,
    ca: bool | None = True,
    usage: x509.KeyUsage | None = None,
    not_before: dt.datetime = NOW - dt.timedelta(days=30),
    not_after: dt.datetime = NOW + dt.timedelta(days=365),
) -> x509.Certificate:
    """An intermediate CA below `issuer` (a proper one unless told otherwise)."""
    return make_certificate(
        issuer_key,
        issuer.subject,
        key.public_key(),
        name(common_name),
        ca=ca,
        path_length=path_length,
        usage=usage if usage is not None else key_usage(key_cert_sign=True),
        not_before=not_before,
        not_after=not_after,
    )


# --- Expecting errors -----------------------------------------------------------------------------------


def expect_error(
    error: type[AutoAddError], code: str, index: int | None, call: Callable[[], object]
) -> AutoAddError:
    """Run `call`, which must raise exactly `error` with this code and link index; return the error."""
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.index == index, str(caught.value)
    return caught.value

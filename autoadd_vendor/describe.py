"""Readable descriptions of AutoAdd artifacts: chains, signed messages, bundles and certificates."""

from __future__ import annotations

from collections.abc import Sequence
import datetime as dt
from typing import Any

import cbor2
from cryptography import x509

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import (
    certificate_public_key,
    load_der_certificate,
    load_pem_certificates,
    verify_certificate_chain,
)
from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE, ContentType, Label
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.idevid import device_id_for
from custom_components.autoadd.protocol.keys import fingerprint, format_fingerprint, public_key_from_bytes

_NAMES = {value: name.lower() for name, value in vars(Label).items() if isinstance(value, int)}


def _value(label: int, value: Any) -> str:
    if label == Label.OWNERS:
        return ", ".join(format_fingerprint(fingerprint(public_key_from_bytes(o))) for o in value)
    if label == Label.REGISTRAR_KEY:
        return format_fingerprint(fingerprint(public_key_from_bytes(value)))
    if label == Label.ISSUED_AT:
        return f"{dt.datetime.fromtimestamp(value, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    if label == Label.LINKS:
        return f"{len(value)} link(s)"
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def _signed(data: bytes, lines: list[str], indent: str = "  ") -> None:
    tag = cbor2.loads(data)
    protected = cbor2.loads(tag.value[0])
    kind = protected.get(3)
    obj = cose.parse(data, ContentType(kind), max_size=MAX_BUNDLE_SIZE, what="object")
    lines.append(f"{indent}content type: {obj.content_type}")
    lines.append(f"{indent}algorithm: {'EdDSA' if obj.algorithm == -8 else 'ES256'}")
    if obj.kid is not None:
        lines.append(f"{indent}signer (kid): {format_fingerprint(obj.kid)}")
    for der in obj.x5chain:
        cert = load_der_certificate(der)
        lines.append(f"{indent}signer certificate: {cert.subject.rfc4514_string()}")
    fields = loads(obj.payload, what="payload", max_size=MAX_BUNDLE_SIZE)
    for label, value in sorted(fields.items()):
        lines.append(f"{indent}{_NAMES.get(label, str(label))}: {_value(label, value)}")


def _certificates(
    certs: Sequence[x509.Certificate], roots: Sequence[x509.Certificate] | None, now: dt.datetime
) -> list[str]:
    lines = []
    for index, cert in enumerate(certs):
        key = certificate_public_key(cert)
        lines += [
            f"certificate {index}: {cert.subject.rfc4514_string()}",
            f"  issuer: {cert.issuer.rfc4514_string()}",
            f"  serial: {cert.serial_number:x}",
            f"  valid: {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}",
            f"  key fingerprint (device id for an IDevID): {fingerprint(key).hex()}",
        ]
    if roots is not None:
        try:
            verify_certificate_chain(list(certs), roots, now, what="certificate chain")
            lines.append("verifies against the given root: yes")
        except AutoAddError as err:
            lines.append(f"verifies against the given root: NO ({err})")
    return lines


def describe(data: bytes, *, roots: Sequence[x509.Certificate] | None, now: dt.datetime) -> str:
    """Describe `data`, whatever artifact it is; verify it against `roots` where that applies."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return "\n".join(_certificates(load_pem_certificates(data), roots, now))
    try:
        value = loads(data, what="file", max_size=MAX_BUNDLE_SIZE)
    except AutoAddError as err:
        return f"not an AutoAdd artifact: {err}"
    lines: list[str] = []
    try:
        if isinstance(value, list):
            lines.append(f"invoice chain of {len(value)} link(s)")
            for index, link in enumerate(value):
                lines.append(f"link {index}:")
                _signed(link, lines)
            if roots is not None:
                chain = verify_chain(value, roots=roots, now=now)
                owners = ", ".join(format_fingerprint(fp) for fp in chain.head.owner_fingerprints)
                lines.append(f"verifies against the given root: yes; current owners: {owners}")
        elif isinstance(value, dict):
            lines.append("proof bundle")
            _signed(value[1], lines)
            idevid = load_der_certificate(value[2][0])
            lines.append(f"  IDevID: {idevid.subject.rfc4514_string()}")
            lines.append(f"  device id: {device_id_for(certificate_public_key(idevid)).hex()}")
            lines.append(f"  chain: {len(value[3])} link(s)")
        else:
            lines.append("signed object")
            _signed(data, lines)
    except AutoAddError as err:
        lines.append(f"verification FAILED: {err}")
    except (KeyError, IndexError, TypeError, ValueError, cbor2.CBORError) as err:
        lines.append(f"not a well-formed AutoAdd artifact: {err}")
    return "\n".join(lines)

"""The faster chain verify refuses exactly what the 0.1.0 one refused, with the same code, index and detail.

The reference is the 0.1.0 code kept here verbatim: signatures checked through cwt (the key exported to
PEM and parsed again, the object decoded again), and every key exported to DER on each use. The chain
walk itself is unchanged, so the reference runs it with those old functions patched in. Random valid
chains (both key types, mixed owners, one to six links) are verified whole and as a verified prefix
extended by the rest, as they are and after a mutation: a flipped byte, a dropped, repeated or reordered
link, signatures swapped between links, a flipped signature bit, a high-S ES256 twin, a non-shortest
length in the outer encoding, a validly signed non-deterministic payload, a changed alg header, or an
owner key in a non-canonical or broken encoding, validly signed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
import hashlib
from typing import Any
from unittest import mock

import cbor2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cwt import COSE
from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.autoadd.protocol import certificates, chain as chains, cose, encoding, keys
from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.chain import VerifiedChain
from custom_components.autoadd.protocol.const import ContentType, Label, LinkReason
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    BadSignatureError,
    InvalidKeyError,
    MalformedError,
    UnsupportedAlgorithmError,
    describe,
)
from custom_components.autoadd.protocol.idevid import verify_idevid
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, PublicKey
from tests.factory import NOW, NOW_TS, Manufacturer, fixed_key
from tests.protocol.helpers import (
    cose_build,
    cose_parts,
    encode,
    flip_signature,
    non_canonical_map,
    payload_of,
    sign_raw,
    with_protected,
)

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# --- The 0.1.0 reference ----------------------------------------------------------------------------------


def _old_public_key_to_bytes(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _old_public_key_from_bytes(data: bytes) -> PublicKey:
    if len(data) > 1024:
        raise InvalidKeyError("public key is larger than any Ed25519 or P-256 key")
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidKeyError(f"not a DER SubjectPublicKeyInfo ({describe(err)})") from err
    checked = keys._checked_public(key)
    if _old_public_key_to_bytes(checked) != data:
        raise InvalidKeyError("public key is not in canonical DER form")
    return checked


def _old_fingerprint(key: PublicKey) -> bytes:
    return hashlib.sha256(_old_public_key_to_bytes(key)).digest()


def _old_verify(obj: cose.SignedObject, key: PublicKey, *, what: str) -> None:
    names = cose._ALG_NAMES
    if keys.algorithm_for(key) != obj.algorithm:
        raise UnsupportedAlgorithmError(
            f"{what} says algorithm {names[obj.algorithm]} but its signer's key signs with "
            f"{names[keys.algorithm_for(key)]}"
        )
    if len(obj.signature) != cose.SIGNATURE_SIZE:
        raise MalformedError(
            f"{what}: an {names[obj.algorithm]} signature is {cose.SIGNATURE_SIZE} bytes, "
            f"not {describe(obj.signature)}"
        )
    if obj.algorithm == keys.ALG_ES256 and int.from_bytes(obj.signature[32:]) > _P256_ORDER // 2:
        raise MalformedError(f"{what}: an ES256 signature must be in low-S form")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        COSE.new().decode_with_headers(obj.raw, cose._cose_key(key, pem, obj.kid))
    except Exception as err:
        raise BadSignatureError(f"the signature on {what} does not verify") from err


@contextmanager
def _old_code() -> Iterator[None]:
    with (
        mock.patch.object(cose, "verify", _old_verify),
        mock.patch.object(chains, "fingerprint", _old_fingerprint),
        mock.patch.object(chains, "public_key_from_bytes", _old_public_key_from_bytes),
        mock.patch.object(chains, "public_key_to_bytes", _old_public_key_to_bytes),
        mock.patch.object(certificates, "fingerprint", _old_fingerprint),
    ):
        yield


# --- Fixtures: keys, manufacturers, chains ----------------------------------------------------------------

_POOL: dict[KeyType, list[PrivateKey]] = {
    kind: [fixed_key(f"equivalence owner {n}", kind) for n in range(4)] for kind in KeyType
}
_MAKERS = {kind: Manufacturer.create(f"Equal{kind.value}", kind) for kind in KeyType}
_DEVICES = {kind: _MAKERS[kind].make_device("SN-EQ", kind) for kind in KeyType}
_IDENTITIES = {
    kind: verify_idevid([certificate_to_der(_DEVICES[kind].cert)], [_MAKERS[kind].root], NOW)
    for kind in KeyType
}

_owner = st.tuples(st.sampled_from(list(KeyType)), st.integers(0, 3)).map(lambda t: _POOL[t[0]][t[1]])
_owner_sets = st.lists(_owner, min_size=1, max_size=3, unique_by=id)


@st.composite
def _chains(draw: st.DrawFn) -> tuple[KeyType, list[bytes], list[list[PrivateKey]]]:
    """A valid chain: its maker's key type, the links, and the owners each link names."""
    kind = draw(st.sampled_from(list(KeyType)))
    maker, device = _MAKERS[kind], _DEVICES[kind]
    owners = [draw(_owner_sets)]
    links = [maker.invoice(device, owners[0])]
    head = chains.read_invoice(links[0], roots=[maker.root], now=NOW).head
    for n in range(draw(st.integers(0, 5))):
        signer = draw(st.sampled_from(owners[-1]))
        owners.append(draw(_owner_sets))
        link = chains.issue_link(
            signer=signer,
            head=head,
            owners=[o.public_key() for o in owners[-1]],
            reason=draw(st.sampled_from([LinkReason.ROTATE, LinkReason.HANDOVER])),
            issued_at=NOW_TS + n,
        )
        links.append(link)
        head, _ = chains.read_link(link, head)
    return kind, links, owners


def _variant_keys(key: PublicKey) -> list[bytes]:
    """Other encodings of an owner key: compressed and hybrid points, trailing or missing bytes."""
    der = _old_public_key_to_bytes(key)
    found = [der + b"\x00", der[:-1], der[:5] + bytes([der[5] ^ 1]) + der[6:], b"\x30\x00"]
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        compressed = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        prefix = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")
        found.append(prefix + compressed)
        found.append(der[:-65] + bytes([6 + (point[-1] & 1)]) + point[1:])
    return found


def _mutate(draw: st.DrawFn, links: list[bytes], owners: list[list[PrivateKey]]) -> list[bytes]:
    out = list(links)
    at = draw(st.integers(0, len(out) - 1))
    kind = draw(st.integers(0, 11))
    if kind == 0:
        data = bytearray(out[at])
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        out[at] = bytes(data)
    elif kind == 1 and len(out) > 1:
        del out[at]
    elif kind == 2:
        out.insert(at, out[at])
    elif kind == 3 and len(out) > 1:
        other = draw(st.integers(0, len(out) - 1))
        out[at], out[other] = out[other], out[at]
    elif kind == 4 and len(out) > 1:
        other = draw(st.integers(0, len(out) - 1))
        a, b = cose_parts(out[at]), cose_parts(out[other])
        a[3], b[3] = b[3], a[3]
        out[at], out[other] = cose_build(a), cose_build(b)
    elif kind == 5:
        out[at] = flip_signature(out[at], draw(st.integers(0, 63)))
    elif kind == 6:
        parts = cose_parts(out[at])
        parts[3] = parts[3][:32] + (_P256_ORDER - int.from_bytes(parts[3][32:])).to_bytes(32)
        out[at] = cose_build(parts)
    elif kind == 7:
        assert out[at][-66:-64] == b"\x58\x40"
        out[at] = out[at][:-66] + b"\x59\x00\x40" + out[at][-64:]
    elif kind == 8 and at > 0:
        signer = owners[at - 1][0]
        kid = keys.fingerprint(signer.public_key())
        out[at] = sign_raw(non_canonical_map(payload_of(out[at])), ContentType.LINK, signer, kid=kid)
    elif kind == 9:
        algorithm = draw(st.sampled_from([keys.ALG_EDDSA, keys.ALG_ES256, -35, 0]))
        out[at] = with_protected(out[at], lambda header: header.__setitem__(1, algorithm))
    elif kind == 10 and at > 0:
        signer = owners[at - 1][0]
        payload = payload_of(out[at])
        variants = _variant_keys(draw(st.sampled_from(owners[at])).public_key())
        payload[Label.OWNERS] = [*payload[Label.OWNERS][:-1], draw(st.sampled_from(variants))]
        out[at] = sign_raw(
            encode(payload), ContentType.LINK, signer, kid=keys.fingerprint(signer.public_key())
        )
    else:
        out[at] = out[at][: draw(st.integers(0, len(out[at]) - 1))]
    return out


def _mutations(links: list[bytes], owners: list[list[PrivateKey]]) -> st.SearchStrategy[list[bytes]]:
    return st.composite(lambda draw: _mutate(draw, links, owners))()


def _result(call: Callable[[], VerifiedChain]) -> tuple[Any, ...]:
    """What a verify decided, in a comparable form: the error's kind, code, index and detail, or the chain."""
    try:
        found = call()
    except AutoAddError as err:
        return ("refused", type(err), err.code, err.index, err.detail)
    return (
        "accepted",
        found.links,
        found.digests,
        tuple((step.owner_fingerprints, step.signer, step.reason, step.issued_at) for step in found.history),
        found.manufacturer.root_fingerprint if found.manufacturer else None,
        found.idevid_hash,
    )


def _both(call: Callable[[], VerifiedChain]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    new = _result(call)
    with _old_code():
        old = _result(call)
    return new, old


_settings = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@_settings
@given(data=st.data(), case=_chains(), mutated=st.booleans())
def test_verify_chain_decides_as_before(
    data: st.DataObject, case: tuple[KeyType, list[bytes], list[list[PrivateKey]]], mutated: bool
) -> None:
    """Whole chains, valid or mutated once: the same verdict, error code, index and detail as 0.1.0."""
    kind, links, owners = case
    if mutated:
        links = data.draw(_mutations(links, owners))
    roots, device = [_MAKERS[kind].root], _IDENTITIES[kind]
    new, old = _both(lambda: chains.verify_chain(links, roots=roots, now=NOW, device=device))
    assert new == old
    if not mutated:
        assert new[0] == "accepted"


@_settings
@given(data=st.data(), case=_chains())
def test_extending_a_verified_prefix_decides_as_before(
    data: st.DataObject, case: tuple[KeyType, list[bytes], list[list[PrivateKey]]]
) -> None:
    """A verified prefix extended by mutated links: the same outcome as 0.1.0 gives."""
    kind, links, owners = case
    split = data.draw(st.integers(1, len(links)))
    prefix = chains.verify_chain(links[:split], roots=[_MAKERS[kind].root], now=NOW)
    rest = data.draw(_mutations(links, owners))[split:]
    new, old = _both(lambda: chains.extend(prefix, rest))
    assert new == old


@settings(max_examples=300, deadline=None, database=None)
@given(key=_owner, variant=st.integers(0, 6), flip=st.tuples(st.integers(0, 90), st.integers(0, 255)))
def test_reading_an_owner_key_decides_as_before(key: PrivateKey, variant: int, flip: tuple[int, int]) -> None:
    """The cheap canonical-form check accepts and refuses the same key encodings as the full export."""
    encodings = [_old_public_key_to_bytes(key.public_key()), *_variant_keys(key.public_key())]
    data = bytearray(encodings[variant % len(encodings)])
    position, value = flip
    if position < len(data):
        data[position] ^= value
    outcomes: list[tuple[Any, ...]] = []
    for read in (keys.public_key_from_bytes, _old_public_key_from_bytes):
        try:
            outcomes.append(("accepted", _old_public_key_to_bytes(read(bytes(data)))))
        except AutoAddError as err:
            outcomes.append(("refused", type(err), err.detail))
    assert outcomes[0] == outcomes[1]
    if outcomes[0][0] == "accepted":
        loaded = keys.public_key_from_bytes(bytes(data))
        assert keys.public_key_to_bytes(loaded) == _old_public_key_to_bytes(loaded) == bytes(data)
        assert keys.fingerprint(loaded) == _old_fingerprint(loaded)


@settings(max_examples=200, deadline=None, database=None)
@given(
    protected=st.one_of(st.binary(max_size=300), st.integers(0, 70000).map(bytes)),
    payload=st.one_of(st.binary(max_size=300), st.integers(0, 70000).map(bytes)),
)
def test_the_signed_bytes_are_those_cwt_signs(protected: bytes, payload: bytes) -> None:
    """The Sig_structure built by hand is the CBOR cwt builds (RFC 9052 §4.4), at every length boundary."""
    assert cose.sig_structure(protected, payload) == cbor2.dumps(["Signature1", protected, b"", payload])


_cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20) | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.integers() | st.text(max_size=5), inner, max_size=4)
        | st.builds(cbor2.CBORTag, st.integers(6, 2**20), inner)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, database=None)
@given(values=st.lists(st.one_of(_cbor_values, st.just(object()), st.just(2**70)), min_size=1, max_size=4))
def test_the_kept_encoder_writes_what_cbor2_writes(values: list[Any]) -> None:
    """`dumps` with its kept encoder gives `cbor2.dumps(canonical=True)`'s bytes or error, even right after
    an encoding that failed part way (an unencodable object inside a container)."""
    for value in [*values, [1, object()], *values]:
        try:
            expected: object = cbor2.dumps(value, canonical=True)
        except Exception as err:
            expected = type(err)
        try:
            found: object = encoding.dumps(value)
        except Exception as err:
            found = type(err)
        assert found == expected


def test_the_reference_is_the_old_code() -> None:
    """The patched names are the ones the chain walk calls, so the reference really runs the old path."""
    with _old_code():
        assert cose.verify is _old_verify
        assert vars(chains)["fingerprint"] is _old_fingerprint
        assert vars(chains)["public_key_from_bytes"] is _old_public_key_from_bytes
    assert cose.verify is not _old_verify

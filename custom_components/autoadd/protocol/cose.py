"""COSE_Sign1, as AutoAdd uses it: one signer, a content type per message kind, nothing optional left open.

Every signed object is a tagged COSE_Sign1 (RFC 9052, CBOR tag 18) with

- a protected header holding `alg` (1: EdDSA or ES256), `content type` (3: one per message kind), and
  optionally `kid` (4: the signer's key fingerprint) and `x5chain` (33: the signer's certificate chain);
- an empty unprotected header, so nothing outside the signature can change how the object is read;
- an embedded payload: a deterministic CBOR map.

`parse` checks the structure and headers without trusting anything; `verify` checks the signature with a
key the caller chose from trusted context; only then does the caller read the payload. Signing goes
through cwt; verifying checks the parsed parts directly with `cryptography` over the Sig_structure of RFC
9052 §4.4 (what cwt computes from the same bytes), so an object is decoded once, not again per check.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cwt import COSE, COSEKey
from cwt.cose_key_interface import COSEKeyInterface

from .const import ContentType
from .encoding import dumps, loads
from .errors import (
    BadSignatureError,
    MalformedError,
    UnsupportedAlgorithmError,
    WrongContentTypeError,
    describe,
)
from .keys import (
    ALG_EDDSA,
    ALLOWED_ALGORITHMS,
    PrivateKey,
    PublicKey,
    algorithm_for,
    derived,
    private_key_to_pem,
)

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3
HEADER_KID = 4
HEADER_X5CHAIN = 33
_KNOWN_HEADERS = frozenset({HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, HEADER_X5CHAIN})
_ALG_NAMES = {ALG_EDDSA: "EdDSA", -7: "ES256"}
_MAX_X5CHAIN = 4
#: Both algorithms' signatures are 64 bytes: Ed25519's R || S (RFC 8032), ES256's r || s (RFC 9053).
SIGNATURE_SIZE = 64
#: The order of P-256's base point. ES256 signatures are kept in low-S form (s <= n/2): for any ECDSA
#: signature (r, s), (r, n - s) verifies too, so without this rule a third party could make a second,
#: different encoding of a signed object, and with it a different digest.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ES256 = -7


@dataclass(frozen=True, slots=True)
class SignedObject:
    """A parsed, not yet verified, COSE_Sign1."""

    raw: bytes
    content_type: str
    algorithm: int
    kid: bytes | None
    x5chain: tuple[bytes, ...]
    payload: bytes
    signature: bytes
    #: The protected header exactly as received: the signature covers these bytes, not a re-encoding.
    protected: bytes

    @property
    def digest(self) -> bytes:
        """SHA-256 over the exact bytes received: how links and notes are referred to."""
        return hashlib.sha256(self.raw).digest()


def _cose_key(key: PrivateKey | PublicKey, pem: bytes, kid: bytes | None = None) -> COSEKeyInterface:
    return COSEKey.from_pem(pem, alg=_ALG_NAMES[algorithm_for(key)], kid=kid or b"")


def sign(
    payload: dict[int, Any],
    content_type: str,
    key: PrivateKey,
    *,
    kid: bytes | None = None,
    x5chain: tuple[bytes, ...] = (),
) -> bytes:
    """Sign a payload map as a tagged COSE_Sign1 of the given content type."""
    protected: dict[int, Any] = {HEADER_ALG: algorithm_for(key), HEADER_CONTENT_TYPE: content_type}
    if kid is not None:
        protected[HEADER_KID] = kid
    if x5chain:
        protected[HEADER_X5CHAIN] = list(x5chain)
    message = COSE.new(deterministic_header=True).encode_and_sign(
        dumps(payload),
        derived(key, "cose", lambda: _cose_key(key, private_key_to_pem(key))),
        protected=protected,
        unprotected={},
    )
    assert isinstance(message, bytes)
    # cwt encodes headers deterministically; re-encode once so the whole object is, byte for byte.
    tag = cbor2.loads(message)
    if protected[HEADER_ALG] == _ES256:
        tag.value[3] = _low_s(tag.value[3])
    return dumps(tag)


def _low_s(signature: bytes) -> bytes:
    r, s = signature[:32], int.from_bytes(signature[32:])
    return r + (_P256_ORDER - s).to_bytes(32) if s > _P256_ORDER // 2 else signature


def parse(data: bytes, content_type: str, *, max_size: int, what: str) -> SignedObject:
    """Check a COSE_Sign1's structure and headers; the signature is not checked here."""
    outer = loads(data, what=what, max_size=max_size)
    if not isinstance(outer, cbor2.CBORTag) or outer.tag != COSE_SIGN1_TAG:
        raise MalformedError(f"{what} is not a tagged COSE_Sign1")
    body = outer.value
    if not isinstance(body, list) or len(body) != 4:
        raise MalformedError(f"{what} is not a four-element COSE_Sign1")
    protected_raw, unprotected, payload, signature = body
    if (
        not isinstance(protected_raw, bytes)
        or not isinstance(payload, bytes)
        or not isinstance(signature, bytes)
    ):
        raise MalformedError(f"{what}: protected header, payload and signature must be byte strings")
    if unprotected != {}:
        raise MalformedError(f"{what}: the unprotected header must be empty")
    protected = loads(protected_raw, what=f"{what} protected header", max_size=max_size)
    if not isinstance(protected, dict) or not set(protected) <= _KNOWN_HEADERS:
        raise MalformedError(
            f"{what}: the protected header has labels outside alg, content type, kid, x5chain"
        )
    alg = protected.get(HEADER_ALG)
    if not isinstance(alg, int) or isinstance(alg, bool) or alg not in ALLOWED_ALGORITHMS:
        raise UnsupportedAlgorithmError(
            f"{what} is signed with algorithm {describe(alg)}; only EdDSA and ES256 are allowed"
        )
    found_type = protected.get(HEADER_CONTENT_TYPE)
    if found_type != content_type:
        raise WrongContentTypeError(
            f"{what} has content type {_kind_of(found_type)}, expected {_kind_of(content_type)}"
        )
    kid = protected.get(HEADER_KID)
    if kid is not None and not isinstance(kid, bytes):
        raise MalformedError(f"{what}: kid must be a byte string")
    chain = protected.get(HEADER_X5CHAIN, [])
    if (
        not isinstance(chain, list)
        or len(chain) > _MAX_X5CHAIN
        or not all(isinstance(cert, bytes) for cert in chain)
        or (HEADER_X5CHAIN in protected and not chain)
    ):
        raise MalformedError(f"{what}: x5chain must be 1 to {_MAX_X5CHAIN} DER certificates")
    return SignedObject(
        raw=data,
        content_type=found_type,
        algorithm=alg,
        kid=kid,
        x5chain=tuple(chain),
        payload=payload,
        signature=signature,
        protected=protected_raw,
    )


def _kind_of(content_type: object) -> str:
    """The message kind a content type names (one of ours), or a safe description of something else."""
    kinds = {kind.value: kind.name.lower() for kind in ContentType}
    found = kinds.get(content_type) if isinstance(content_type, str) else None
    return found if found is not None else describe(content_type)


def verify(obj: SignedObject, key: PublicKey, *, what: str) -> None:
    """Check the signature with `key`, which must be of the type the header's algorithm names."""
    if algorithm_for(key) != obj.algorithm:
        raise UnsupportedAlgorithmError(
            f"{what} says algorithm {_ALG_NAMES[obj.algorithm]} but its signer's key signs with "
            f"{_ALG_NAMES[algorithm_for(key)]}"
        )
    # V1a: a signature of another length, or a high-S twin, is not an encoding of a signature at all.
    if len(obj.signature) != SIGNATURE_SIZE:
        raise MalformedError(
            f"{what}: an {_ALG_NAMES[obj.algorithm]} signature is {SIGNATURE_SIZE} bytes, "
            f"not {describe(obj.signature)}"
        )
    if obj.algorithm == _ES256 and int.from_bytes(obj.signature[32:]) > _P256_ORDER // 2:
        raise MalformedError(f"{what}: an ES256 signature must be in low-S form")
    try:
        _check_signature(obj, key)
    except Exception as err:  # InvalidSignature, or anything else the backend raises: it does not verify
        raise BadSignatureError(f"the signature on {what} does not verify") from err


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
#: A four-element array (0x84), then the text "Signature1" (0x6a: text of 10 bytes).
_SIG_STRUCTURE_START = b"\x84\x6aSignature1"


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The CBOR of ["Signature1", protected, h'', payload]: the bytes a COSE_Sign1 signature covers."""
    return b"".join(
        (
            _SIG_STRUCTURE_START,
            _bstr_head(len(protected)),
            protected,
            b"\x40",
            _bstr_head(len(payload)),
            payload,
        )
    )


def _bstr_head(length: int) -> bytes:
    """The shortest head of a byte string of `length` bytes (RFC 8949 §3, as deterministic CBOR has it)."""
    if length < 24:
        return bytes([0x40 + length])
    if length < 0x100:
        return bytes([0x58, length])
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2)
    if length < 0x100000000:
        return b"\x5a" + length.to_bytes(4)
    return b"\x5b" + length.to_bytes(8)


def _check_signature(obj: SignedObject, key: PublicKey) -> None:
    """Verify over Sig_structure = ["Signature1", protected, external_aad = h'', payload] (RFC 9052 §4.4).

    The protected header is non-empty (it always holds alg), so it goes in as received. An ES256 signature
    is r || s (RFC 9053 §2.1); `cryptography` takes ECDSA signatures DER-encoded.
    """
    to_be_signed = sig_structure(obj.protected, obj.payload)
    if isinstance(key, ec.EllipticCurvePublicKey):
        half = SIGNATURE_SIZE // 2
        r, s = int.from_bytes(obj.signature[:half]), int.from_bytes(obj.signature[half:])
        key.verify(encode_dss_signature(r, s), to_be_signed, _ECDSA_SHA256)
    else:
        key.verify(obj.signature, to_be_signed)

"""COSE_Sign1, as AutoAdd uses it: one signer, a content type per message kind, nothing optional left open.

Every signed object is a tagged COSE_Sign1 (RFC 9052, CBOR tag 18) with

- a protected header holding `alg` (1: EdDSA or ES256), `content type` (3: one per message kind), and
  optionally `kid` (4: the signer's key fingerprint) and `x5chain` (33: the signer's certificate chain);
- an empty unprotected header, so nothing outside the signature can change how the object is read;
- an embedded payload: a deterministic CBOR map.

`parse` checks the structure and headers without trusting anything; `verify` checks the signature with a
key the caller chose from trusted context; only then does the caller read the payload.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from typing import Any

import cbor2
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
    private_key_to_pem,
    public_key_to_pem,
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
        dumps(payload), _cose_key(key, private_key_to_pem(key)), protected=protected, unprotected={}
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
        COSE.new().decode_with_headers(obj.raw, _cose_key(key, public_key_to_pem(key), obj.kid))
    except Exception as err:  # cwt reports a bad signature through several exception types
        raise BadSignatureError(f"the signature on {what} does not verify") from err

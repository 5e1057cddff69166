"""Which rule speaks first, and the codes the spec used to leave open (§3.2, §3.3, §7, points 6-8).

- E1-E6 always come before any field check: a payload of version 2 that is not deterministically encoded
  is `malformed`, not `unsupported_version`, for every message kind; so is one whose COSE envelope or
  protected header is not deterministic. (The code already did this: these tests pin it.)
- A hello or note without `kid` is `malformed` (before: `bad_signature`, `not_owner`).
- A signature of the wrong length for its algorithm is `malformed`, checked before verifying (V1a; before,
  an Ed25519 one was `bad_signature`).
- A key on the wire (owners, the hello's registrar key) over 128 bytes is `malformed` by the schema; one of
  128 bytes that does not load is `invalid_owners` in an owner list (I10) and `invalid_key` in a hello (H3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.chain import read_link, verify_chain
from custom_components.autoadd.protocol.const import ContentType, Label, LinkReason
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    BadSignatureError,
    InvalidKeyError,
    MalformedError,
    OwnersError,
    SignerNotOwnerError,
    UnknownSessionError,
    UnsupportedVersionError,
)
from custom_components.autoadd.protocol.handshake import make_hello, read_hello
from custom_components.autoadd.protocol.keys import KeyType
from tests.factory import NOW, NOW_TS
from tests.protocol.helpers import (
    cose_parts,
    encode,
    expect_error,
    link_payload,
    non_canonical_map,
    payload_of,
    with_part,
)
from tests.protocol.stage import Stage, bundle_with_proof

NONCE = bytes([0xA1]) * 32


@pytest.fixture
def stage() -> Stage:
    return Stage.create()


# --- E1-E6 before the version, for every message kind -----------------------------------------------------

#: For each kind: (payload of a correct object, how to sign payload bytes, how the receiver reads it).
type Reader = Callable[[bytes], object]
type Kind = tuple[dict[int, Any], Callable[[bytes], bytes], Reader]


def _invoice(stage: Stage) -> Kind:
    def read(data: bytes) -> object:
        return verify_chain([data], roots=stage.roots, now=NOW)

    return payload_of(stage.device.links[0]), stage.sign_invoice, read


def _link(stage: Stage) -> Kind:
    head = stage.chain().head

    def read(data: bytes) -> object:
        return read_link(data, head)

    payload = link_payload(head, [stage.home.public_key()], reason=LinkReason.ROTATE)
    return payload, lambda raw: stage.sign_as_home(raw, ContentType.LINK), read


def _hello(stage: Stage) -> Kind:
    payload = payload_of(make_hello(stage.home, NONCE, NOW_TS))
    return payload, lambda raw: stage.sign_as_home(raw, ContentType.HELLO), read_hello


def _proof(stage: Stage) -> Kind:
    session, bundle = stage.open()

    def read(data: bytes) -> object:
        return session.read_proof(bundle_with_proof(bundle, data), roots=stage.roots, now=NOW)

    payload = payload_of(cbor2.loads(bundle)[1])
    return payload, lambda raw: stage.sign_as_device(raw, ContentType.PROOF), read


def _note(stage: Stage) -> Kind:
    session = stage.prove()
    payload = stage.note_payload(session)
    return payload, lambda raw: stage.sign_as_home(raw, ContentType.NOTE), stage.accept


def _receipt(stage: Stage) -> Kind:
    session = stage.prove()
    stage.accept(session.make_note(signer=stage.home, issued_at=NOW_TS))
    payload = stage.receipt_payload(session)
    return payload, lambda raw: stage.sign_as_device(raw, ContentType.RECEIPT), session.read_receipt


_KINDS = {
    "invoice": _invoice,
    "link": _link,
    "hello": _hello,
    "proof": _proof,
    "note": _note,
    "receipt": _receipt,
}


def _code(read: Reader, data: bytes) -> str:
    with pytest.raises(AutoAddError) as caught:
        read(data)
    return caught.value.code


def _long_tag(data: bytes) -> bytes:
    """The same COSE_Sign1 with tag 18 written in two bytes (0xd8 0x12): well formed, not deterministic."""
    assert data[0] == 0xD2
    return b"\xd8\x12" + data[1:]


@pytest.mark.parametrize("kind", list(_KINDS))
def test_deterministic_encoding_comes_before_the_version(stage: Stage, kind: str) -> None:
    """Version 2 deterministically encoded is unsupported_version; not deterministic, it is malformed."""
    payload, sign, read = _KINDS[kind](stage)
    payload[Label.VERSION] = 2
    assert _code(read, sign(encode(payload))) == "unsupported_version"
    assert _code(read, sign(non_canonical_map(payload))) == "malformed"
    canonical = encode(payload)
    assert canonical[1:3] == b"\x01\x02"  # label 1 comes first: version 2
    padded = canonical[:2] + b"\x18\x02" + canonical[3:]  # the same 2 in two bytes
    assert _code(read, sign(padded)) == "malformed"


@pytest.mark.parametrize("kind", list(_KINDS))
def test_the_envelope_comes_before_the_payload(stage: Stage, kind: str) -> None:
    """A version-2 payload in a non-deterministic envelope or protected header is malformed (S1, S6)."""
    payload, sign, read = _KINDS[kind](stage)
    payload[Label.VERSION] = 2
    signed = sign(encode(payload))
    assert _code(read, _long_tag(signed)) == "malformed"
    header = cbor2.loads(cose_parts(signed)[0])
    assert _code(read, with_part(signed, 0, non_canonical_map(header))) == "malformed"


# --- kid: absent on a hello or a note is malformed (H4, N10) ------------------------------------------------


def test_a_hello_without_kid_is_malformed(stage: Stage) -> None:
    """H4: no kid is malformed (it was bad_signature); a wrong kid stays bad_signature."""
    payload = payload_of(make_hello(stage.home, NONCE, NOW_TS))
    hello = cose.sign(payload, ContentType.HELLO, stage.home)
    expect_error(MalformedError, "malformed", None, lambda: read_hello(hello))
    expect_error(
        MalformedError, "malformed", None, lambda: stage.responder.answer_hello(hello, stage.chain(), now=0)
    )


def test_a_note_without_kid_is_malformed(stage: Stage) -> None:
    """N10: no kid is malformed (it was not_owner); the session stays open for the right note."""
    session = stage.prove()
    note = cose.sign(stage.note_payload(session), ContentType.NOTE, stage.home)
    expect_error(MalformedError, "malformed", None, lambda: stage.accept(note))
    stage.good_note_still_accepted(session)


def test_a_note_without_kid_for_no_session_is_unknown_session(stage: Stage) -> None:
    """N4 comes before N10: the missing kid is not looked at when no session has the nonces."""
    session = stage.prove()
    note = cose.sign(stage.note_payload(session), ContentType.NOTE, stage.home)
    stage.good_note_still_accepted(session)
    expect_error(UnknownSessionError, "unknown_session", None, lambda: stage.accept(note))


def test_a_missing_kid_elsewhere_keeps_the_code_of_the_rule_that_reads_it(stage: Stage) -> None:
    """§3.1: a link without kid matches no owner (L3); a proof or receipt without one is not the device's."""
    link = cose.sign(
        link_payload(stage.chain().head, [stage.home.public_key()]), ContentType.LINK, stage.home
    )
    expect_error(
        SignerNotOwnerError,
        "signer_not_owner",
        1,
        lambda: verify_chain([stage.device.links[0], link], roots=stage.roots, now=NOW),
    )
    session, bundle = stage.open()
    proof = cose.sign(payload_of(cbor2.loads(bundle)[1]), ContentType.PROOF, stage.device.key)
    expect_error(
        BadSignatureError,
        "bad_signature",
        None,
        lambda: session.read_proof(bundle_with_proof(bundle, proof), roots=stage.roots, now=NOW),
    )
    session.read_proof(bundle, roots=stage.roots, now=NOW)
    accepted = stage.accept(session.make_note(signer=stage.home, issued_at=NOW_TS))
    receipt = cose.sign(stage.receipt_payload(session), ContentType.RECEIPT, stage.device.key)
    expect_error(BadSignatureError, "bad_signature", None, lambda: session.read_receipt(receipt))
    session.read_receipt(accepted.receipt)


# --- Signature lengths (V1a) --------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256], ids=["ed25519", "p256"])
@pytest.mark.parametrize("size", [0, 63, 65, 128])
def test_a_signature_of_the_wrong_length_is_malformed(key_type: KeyType, size: int) -> None:
    """Both algorithms sign in 64 bytes; any other length is not a signature's encoding (V1a)."""
    stage = Stage.create(key_type)
    hello = make_hello(stage.home, NONCE, NOW_TS)
    signature = cose_parts(hello)[3]
    wrong = (signature * 3)[:size]
    expect_error(MalformedError, "malformed", None, lambda: read_hello(with_part(hello, 3, wrong)))
    read_hello(hello)


def test_a_short_signature_on_a_link_names_the_link(stage: Stage) -> None:
    """V1a in a chain (L4): malformed, at the link's index."""
    link = cose.sign(
        link_payload(stage.chain().head, [stage.home.public_key()]),
        ContentType.LINK,
        stage.home,
        kid=stage.home_kid,
    )
    short = with_part(link, 3, cose_parts(link)[3][:63])
    expect_error(
        MalformedError,
        "malformed",
        1,
        lambda: verify_chain([stage.device.links[0], short], roots=stage.roots, now=NOW),
    )


# --- Key sizes on the wire (§2.3, §4.3, I10, H3) -----------------------------------------------------------


def _invoice_with_owners(stage: Stage, owners: list[bytes]) -> bytes:
    payload = payload_of(stage.device.links[0])
    payload[Label.OWNERS] = owners
    return stage.sign_invoice(encode(payload))


def test_an_owner_key_over_128_bytes_is_malformed(stage: Stage) -> None:
    """The schema caps each owner entry at 128 bytes (I7) before any key is loaded."""
    invoice = _invoice_with_owners(stage, [bytes(129)])
    expect_error(MalformedError, "malformed", 0, lambda: verify_chain([invoice], roots=stage.roots, now=NOW))


def test_an_owner_key_of_128_bytes_that_does_not_load_is_invalid_owners(stage: Stage) -> None:
    """Within the cap, a key that does not load makes the owner list invalid (I10)."""
    invoice = _invoice_with_owners(stage, [bytes(128)])
    expect_error(
        OwnersError, "invalid_owners", 0, lambda: verify_chain([invoice], roots=stage.roots, now=NOW)
    )


def test_a_registrar_key_over_128_bytes_is_malformed_and_within_it_invalid_key(stage: Stage) -> None:
    """The hello's label 12: over 128 bytes malformed (H2), 128 bytes that do not load invalid_key (H3)."""
    cases: list[tuple[int, type[AutoAddError], str]] = [
        (129, MalformedError, "malformed"),
        (128, InvalidKeyError, "invalid_key"),
    ]
    for size, error, code in cases:
        payload = payload_of(make_hello(stage.home, NONCE, NOW_TS))
        payload[Label.REGISTRAR_KEY] = bytes(size)
        hello = cose.sign(payload, ContentType.HELLO, stage.home, kid=stage.home_kid)
        expect_error(error, code, None, lambda: read_hello(hello))  # noqa: B023 (called at once)


def test_version_of_a_non_map_payload_is_malformed(stage: Stage) -> None:
    """A payload that is not a map never reaches the version check."""
    _, sign, read = _hello(stage)
    assert _code(read, sign(encode([2]))) == "malformed"
    expect_error(UnsupportedVersionError, "unsupported_version", None, lambda: read(sign(encode({1: 2}))))

"""The handshake: hello, proof, note, receipt, each bound to both nonces, checked on both sides.

A refused message never changes state: the registrar can still read the right proof or receipt, and the
device's session stays open for the right note.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
import hashlib
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.chain import ChainHead, VerifiedChain, issue_link
from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_CHAIN_LINKS,
    MAX_CONFIG_SIZE,
    MAX_LINK_SIZE,
    MAX_MESSAGE_SIZE,
    NONCE_SIZE,
    PROTOCOL_VERSION,
    ContentType,
    Label,
    LinkReason,
)
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    BadSignatureError,
    ChainHeadMismatchError,
    HandshakeStateError,
    IDevIDMismatchError,
    InvalidKeyError,
    MalformedError,
    NonceMismatchError,
    NotOwnerError,
    SignerNotOwnerError,
    TooLargeError,
    UnknownSessionError,
    UnsupportedAlgorithmError,
    UnsupportedVersionError,
    UntrustedManufacturerError,
    WrongContentTypeError,
    WrongDeviceError,
)
from custom_components.autoadd.protocol.handshake import (
    DeviceResponder,
    RegistrarHandshake,
    make_hello,
    new_nonce,
    read_hello,
)
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    fingerprint,
    public_key_to_bytes,
)
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key
from tests.protocol.helpers import (
    encode,
    expect_error,
    flip_signature,
    payload_of,
    with_payload,
    with_protected,
)

STRANGER = fixed_key("stranger")
NONCE_A = bytes([0xA1]) * NONCE_SIZE
NONCE_B = bytes([0xB2]) * NONCE_SIZE


@dataclass
class Scene:
    """A device whose invoice names `home`, answering through `responder`."""

    maker: Manufacturer
    device: Device
    home: PrivateKey
    responder: DeviceResponder

    @property
    def roots(self) -> list[Any]:
        return [self.maker.root]

    def chain(self) -> VerifiedChain:
        return self.device.chain()

    def open(
        self, home: PrivateKey | None = None, *, now: float = 0.0, nonce: bytes | None = None
    ) -> tuple[RegistrarHandshake, bytes]:
        """A new registrar session and the device's answer to its hello."""
        session = RegistrarHandshake(home or self.home, issued_at=NOW_TS, nonce=nonce)
        return session, self.responder.answer_hello(session.hello, self.chain(), now=now)

    def prove(self, home: PrivateKey | None = None, *, now: float = 0.0) -> RegistrarHandshake:
        """A registrar session that has read a good proof."""
        session, bundle = self.open(home, now=now)
        session.read_proof(bundle, roots=self.roots, now=NOW)
        return session

    def accept(self, note: bytes, *, now: float = 1.0, chain: VerifiedChain | None = None) -> Any:
        return self.responder.accept_note(note, chain or self.chain(), now=now)

    def note_payload(self, session: RegistrarHandshake, **changes: Any) -> dict[int, Any]:
        """The payload of a correct note without links for `session`, with `changes` by label name."""
        assert session.device is not None
        payload: dict[int, Any] = {
            Label.VERSION: PROTOCOL_VERSION,
            Label.DEVICE_ID: self.device.device_id,
            Label.REGISTRAR_NONCE: session.registrar_nonce,
            Label.DEVICE_NONCE: session.device.device_nonce,
            Label.CHAIN_HEAD: self.chain().head.digest,
            Label.LINKS: [],
            Label.ISSUED_AT: NOW_TS,
        }
        for label, value in changes.items():
            payload[getattr(Label, label.upper())] = value
        return payload


def _scene(
    maker_type: KeyType = KeyType.ED25519,
    device_type: KeyType = KeyType.ED25519,
    home_type: KeyType = KeyType.ED25519,
    *,
    extra_owners: int = 0,
    **responder: Any,
) -> Scene:
    maker = Manufacturer.create("Acme", maker_type)
    device = maker.make_device("SN0001", device_type)
    home = fixed_key("home", home_type)
    owners = [home, *(fixed_key(f"co-owner {i}") for i in range(extra_owners))]
    device.links.append(maker.invoice(device, owners))
    return Scene(maker, device, home, DeviceResponder(device.key, [device.cert], **responder))


@pytest.fixture
def scene() -> Scene:
    """An all-Ed25519 scene."""
    return _scene()


def _owned_by(chain: VerifiedChain, owner: PrivateKey) -> ChainHead:
    """The chain's head as if `owner` owned it (to make a link a stranger signs)."""
    return dataclasses.replace(chain.head, owners=(owner.public_key(),))


def _sign_note(payload: dict[int, Any], signer: PrivateKey, kid: bytes | None = None) -> bytes:
    return cose.sign(payload, ContentType.NOTE, signer, kid=kid or fingerprint(signer.public_key()))


def _receipt(scene: Scene, session: RegistrarHandshake, **changes: Any) -> bytes:
    """A receipt for `session`'s note as the device would sign it, with `changes` by label name."""
    assert session.device is not None
    assert session.note is not None
    key: PrivateKey = changes.pop("key", scene.device.key)
    kid: bytes = changes.pop("kid", scene.device.device_id)
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: scene.device.device_id,
        Label.REGISTRAR_NONCE: session.registrar_nonce,
        Label.DEVICE_NONCE: session.device.device_nonce,
        Label.NOTE_HASH: hashlib.sha256(session.note).digest(),
        Label.CHAIN_HEAD: payload_of(session.note)[Label.CHAIN_HEAD],
    }
    for label, value in changes.items():
        payload[getattr(Label, label.upper())] = value
    return cose.sign(payload, ContentType.RECEIPT, key, kid=kid)


def _proof_bundle(scene: Scene, session: RegistrarHandshake, bundle: bytes, **changes: Any) -> bytes:
    """`bundle` with its proof re-signed by the device with `changes` (by label name) to its payload."""
    value = _decode(bundle)
    proof = payload_of(value[1])
    key: PrivateKey = changes.pop("key", scene.device.key)
    kid: bytes = changes.pop("kid", scene.device.device_id)
    for label, item in changes.items():
        proof[getattr(Label, label.upper())] = item
    value[1] = cose.sign(proof, ContentType.PROOF, key, kid=kid)
    return encode(value)


def _decode(data: bytes) -> dict[int, Any]:
    value = cbor2.loads(data)
    assert isinstance(value, dict)
    return value


# --- Whole onboardings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker_type", "device_type", "home_type"),
    [
        (KeyType.ED25519, KeyType.ED25519, KeyType.ED25519),
        (KeyType.P256, KeyType.P256, KeyType.P256),
        (KeyType.ED25519, KeyType.P256, KeyType.P256),
        (KeyType.P256, KeyType.ED25519, KeyType.ED25519),
    ],
    ids=["all-ed25519", "all-p256", "p256-device-and-home", "p256-maker"],
)
def test_full_onboarding(maker_type: KeyType, device_type: KeyType, home_type: KeyType) -> None:
    """Hello, proof, note and receipt: the registrar learns the device, the device learns its owner."""
    scene = _scene(maker_type, device_type, home_type)
    session, bundle = scene.open()
    proven = session.read_proof(bundle, roots=scene.roots, now=NOW)
    assert proven.device_id == scene.device.device_id
    assert proven.identity.manufacturer == "Acme"
    assert proven.identity.serial_number == "SN0001"
    assert proven.chain == scene.chain()
    assert len(proven.device_nonce) == NONCE_SIZE
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    assert session.note == note
    accepted = scene.accept(note)
    assert accepted.chain == scene.chain()
    assert fingerprint(accepted.owner) == fingerprint(scene.home.public_key())
    assert accepted.note_digest == hashlib.sha256(note).digest()
    assert accepted.config == {}
    assert not session.done
    session.read_receipt(accepted.receipt)
    assert session.done


def test_hello_names_and_proves_the_registrar_key(scene: Scene) -> None:
    """A hello carries the registrar's nonce and key, and is signed by that key."""
    session = RegistrarHandshake(scene.home, issued_at=NOW_TS, nonce=NONCE_A)
    hello = read_hello(session.hello)
    assert hello.registrar_nonce == NONCE_A == session.registrar_nonce
    assert hello.registrar_fingerprint == fingerprint(scene.home.public_key())
    assert hello.issued_at == NOW_TS


def test_nonces_are_fresh() -> None:
    """Nonces are 32 random bytes, new every time; a session makes its own unless given one."""
    assert len(new_nonce()) == NONCE_SIZE
    assert new_nonce() != new_nonce()
    home = fixed_key("home")
    first = RegistrarHandshake(home, issued_at=NOW_TS)
    second = RegistrarHandshake(home, issued_at=NOW_TS)
    assert first.registrar_nonce != second.registrar_nonce


def test_fixed_device_nonce_is_used(scene: Scene) -> None:
    """The device nonce given for test vectors is the one the proof carries."""
    session = RegistrarHandshake(scene.home, issued_at=NOW_TS)
    bundle = scene.responder.answer_hello(session.hello, scene.chain(), now=0.0, nonce=NONCE_B)
    assert session.read_proof(bundle, roots=scene.roots, now=NOW).device_nonce == NONCE_B


def test_proof_bundle_layout(scene: Scene) -> None:
    """The bundle is {1: proof, 2: IDevID chain, 3: the device's chain}."""
    session, bundle = scene.open()
    value = _decode(bundle)
    assert set(value) == {1, 2, 3}
    assert value[2] == [certificate_to_der(scene.device.cert)]
    assert value[3] == scene.device.links
    proof = payload_of(value[1])
    assert proof[Label.REGISTRAR_NONCE] == session.registrar_nonce
    assert proof[Label.REGISTRAR_FINGERPRINT] == fingerprint(scene.home.public_key())
    assert proof[Label.CHAIN_LENGTH] == 1


@pytest.mark.parametrize("home_type", list(KeyType))
def test_note_with_rotation_link_signed_by_new_key(home_type: KeyType) -> None:
    """A note may append a rotation; it is then signed by the new owner key, not the one that said hello."""
    scene = _scene(home_type=home_type)
    session = scene.prove()
    assert session.device is not None
    rotated = fixed_key("rotated", home_type)
    link = issue_link(
        signer=scene.home,
        head=session.device.chain.head,
        owners=[rotated.public_key()],
        reason=LinkReason.ROTATE,
        issued_at=NOW_TS,
    )
    note = session.make_note(signer=rotated, issued_at=NOW_TS, links=[link])
    accepted = scene.accept(note)
    assert accepted.chain.links == (*scene.device.links, link)
    assert accepted.chain.reasons == (LinkReason.ROTATE,)
    assert fingerprint(accepted.owner) == fingerprint(rotated.public_key())
    assert [public_key_to_bytes(o) for o in accepted.chain.head.owners] == [
        public_key_to_bytes(rotated.public_key())
    ]
    session.read_receipt(accepted.receipt)
    assert session.done


def test_note_with_handover_to_another_home(scene: Scene) -> None:
    """A note may hand the device over; the buyer's key signs it."""
    session = scene.prove()
    assert session.device is not None
    buyer = fixed_key("buyer", KeyType.P256)
    link = issue_link(
        signer=scene.home,
        head=session.device.chain.head,
        owners=[buyer.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    accepted = scene.accept(session.make_note(signer=buyer, issued_at=NOW_TS, links=[link]))
    assert accepted.chain.reasons == (LinkReason.HANDOVER,)
    session.read_receipt(accepted.receipt)


def test_note_with_config(scene: Scene) -> None:
    """The note carries the registrar's configuration to the device, unchanged."""
    config = {"name": "Kitchen lamp", "area": "kitchen", "brightness": 80, "tags": ["a", "b"]}
    session = scene.prove()
    accepted = scene.accept(session.make_note(signer=scene.home, issued_at=NOW_TS, config=config))
    assert accepted.config == config
    session.read_receipt(accepted.receipt)


def test_empty_config_is_left_out(scene: Scene) -> None:
    """An empty configuration is not sent."""
    session = scene.prove()
    note = session.make_note(signer=scene.home, issued_at=NOW_TS, config={})
    assert Label.CONFIG not in payload_of(note)


def test_two_owners_onboard_in_parallel() -> None:
    """Two owners' sessions are independent: each gets its own note accepted."""
    scene = _scene(extra_owners=1)
    other = fixed_key("co-owner 0")
    first, second = scene.prove(), scene.prove(other)
    note_two = second.make_note(signer=other, issued_at=NOW_TS)
    note_one = first.make_note(signer=scene.home, issued_at=NOW_TS)
    second.read_receipt(scene.accept(note_two).receipt)
    first.read_receipt(scene.accept(note_one).receipt)
    assert first.done
    assert second.done


# --- Hello --------------------------------------------------------------------------------------------------


def _hello_refused(scene: Scene, hello: bytes, error: type[AutoAddError], code: str) -> None:
    expect_error(error, code, None, lambda: read_hello(hello))
    expect_error(error, code, None, lambda: scene.responder.answer_hello(hello, scene.chain(), now=0.0))


def test_hello_tampered(scene: Scene) -> None:
    """A hello changed after signing (another nonce) is refused."""
    hello = make_hello(scene.home, NONCE_A, NOW_TS)
    tampered = with_payload(hello, lambda p: p.__setitem__(Label.REGISTRAR_NONCE, NONCE_B))
    _hello_refused(scene, tampered, BadSignatureError, "bad_signature")
    _hello_refused(scene, flip_signature(hello), BadSignatureError, "bad_signature")


def test_hello_kid_mismatch(scene: Scene) -> None:
    """A hello whose kid is not the fingerprint of the key it names is refused."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    hello = cose.sign(payload, ContentType.HELLO, scene.home, kid=fingerprint(STRANGER.public_key()))
    _hello_refused(scene, hello, BadSignatureError, "bad_signature")


def test_hello_naming_a_key_it_does_not_hold(scene: Scene) -> None:
    """A hello naming the home's key (and its kid) but signed by another key proves nothing."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    hello = cose.sign(payload, ContentType.HELLO, STRANGER, kid=fingerprint(scene.home.public_key()))
    _hello_refused(scene, hello, BadSignatureError, "bad_signature")


def test_hello_wrong_content_type(scene: Scene) -> None:
    """A proof, note or chain link is never a hello."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    for content_type in (ContentType.NOTE, ContentType.PROOF, ContentType.LINK, ContentType.RECEIPT):
        hello = cose.sign(payload, content_type, scene.home, kid=fingerprint(scene.home.public_key()))
        _hello_refused(scene, hello, WrongContentTypeError, "wrong_content_type")
    _hello_refused(scene, scene.device.links[0], WrongContentTypeError, "wrong_content_type")


def test_hello_key_garbage(scene: Scene) -> None:
    """A registrar key that does not load is an invalid key."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    payload[Label.REGISTRAR_KEY] = b"garbage"
    hello = cose.sign(payload, ContentType.HELLO, scene.home, kid=fingerprint(scene.home.public_key()))
    _hello_refused(scene, hello, InvalidKeyError, "invalid_key")


def test_hello_key_of_another_type(scene: Scene) -> None:
    """A registrar key that is not Ed25519 or P-256 is an unsupported algorithm."""
    other = x25519.X25519PrivateKey.generate().public_key()
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    payload[Label.REGISTRAR_KEY] = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hello = cose.sign(payload, ContentType.HELLO, scene.home, kid=fingerprint(scene.home.public_key()))
    _hello_refused(scene, hello, UnsupportedAlgorithmError, "unsupported_algorithm")


@pytest.mark.parametrize(
    ("label", "value"),
    [
        (Label.REGISTRAR_NONCE, bytes(31)),
        (Label.REGISTRAR_KEY, bytes(129)),
        (Label.ISSUED_AT, None),
        (Label.DEVICE_ID, bytes(32)),
    ],
    ids=["short-nonce", "long-key", "no-time", "extra-label"],
)
def test_hello_payload_schema(scene: Scene, label: int, value: Any) -> None:
    """A hello payload has exactly the contract's fields."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    if value is None:
        del payload[label]
    else:
        payload[label] = value
    hello = cose.sign(payload, ContentType.HELLO, scene.home, kid=fingerprint(scene.home.public_key()))
    _hello_refused(scene, hello, MalformedError, "malformed")


def test_hello_of_another_version_is_unsupported(scene: Scene) -> None:
    """A hello of protocol version 2 is refused as unsupported_version."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    payload[Label.VERSION] = 2
    hello = cose.sign(payload, ContentType.HELLO, scene.home, kid=fingerprint(scene.home.public_key()))
    _hello_refused(scene, hello, UnsupportedVersionError, "unsupported_version")


def test_note_of_another_version_is_unsupported(scene: Scene) -> None:
    """A note of protocol version 2 is refused as unsupported_version, and the session stays usable."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session, version=2), scene.home)
    _note_refused(scene, note, UnsupportedVersionError, "unsupported_version")
    _good_note_still_accepted(scene, session)


def test_hello_too_large(scene: Scene) -> None:
    """A hello over 8 KiB is refused before it is decoded."""
    payload = payload_of(make_hello(scene.home, NONCE_A, NOW_TS))
    payload[99] = bytes(MAX_MESSAGE_SIZE)
    hello = cose.sign(payload, ContentType.HELLO, scene.home, kid=fingerprint(scene.home.public_key()))
    _hello_refused(scene, hello, TooLargeError, "too_large")


@pytest.mark.parametrize("data", ["text", None, bytearray(b"x")], ids=["str", "none", "bytearray"])
def test_hello_not_bytes(scene: Scene, data: Any) -> None:
    """A hello that is not a byte string is malformed."""
    _hello_refused(scene, data, MalformedError, "malformed")


def test_invalid_hello_opens_no_session() -> None:
    """A refused hello does not take a session slot: with one slot, the open session survives it."""
    scene = _scene(max_sessions=1)
    session = scene.prove()
    with pytest.raises(BadSignatureError):
        scene.responder.answer_hello(flip_signature(session.hello), scene.chain(), now=0.5)
    scene.accept(session.make_note(signer=scene.home, issued_at=NOW_TS))


# --- Proof --------------------------------------------------------------------------------------------------


def _proof_refused(
    scene: Scene,
    session: RegistrarHandshake,
    bundle: bytes,
    error: type[AutoAddError],
    code: str,
    index: int | None = None,
) -> None:
    expect_error(error, code, index, lambda: session.read_proof(bundle, roots=scene.roots, now=NOW))
    assert session.device is None


def test_replayed_proof_from_another_session(scene: Scene) -> None:
    """A proof answering another session's hello is refused, and this session can still read its own."""
    first, first_bundle = scene.open()
    second, second_bundle = scene.open()
    _proof_refused(scene, second, first_bundle, NonceMismatchError, "nonce_mismatch")
    assert second.read_proof(second_bundle, roots=scene.roots, now=NOW).device_id == scene.device.device_id
    first.read_proof(first_bundle, roots=scene.roots, now=NOW)


def test_proof_for_another_registrar_key(scene: Scene) -> None:
    """A proof for another registrar's hello is refused, even with the same registrar nonce."""
    _, bundle = scene.open(nonce=NONCE_A)
    other = RegistrarHandshake(fixed_key("other home"), issued_at=NOW_TS, nonce=NONCE_A)
    _proof_refused(scene, other, bundle, NonceMismatchError, "nonce_mismatch")


def test_proof_head_does_not_match_chain_sent(scene: Scene) -> None:
    """A proof bound to one chain, sent with another, is refused."""
    session, bundle = scene.open()
    longer = list(scene.device.links)
    longer.append(
        issue_link(
            signer=scene.home,
            head=scene.chain().head,
            owners=[scene.home.public_key()],
            reason=LinkReason.ROTATE,
            issued_at=NOW_TS,
        )
    )
    value = _decode(bundle)
    value[3] = longer
    _proof_refused(scene, session, encode(value), ChainHeadMismatchError, "chain_head_mismatch")
    session.read_proof(bundle, roots=scene.roots, now=NOW)


def test_proof_length_does_not_match_chain_sent(scene: Scene) -> None:
    """A proof naming the right head but another chain length is refused."""
    session, bundle = scene.open()
    forged = _proof_bundle(scene, session, bundle, chain_length=2)
    _proof_refused(scene, session, forged, ChainHeadMismatchError, "chain_head_mismatch")


def test_proof_from_a_clone_without_the_device_key(scene: Scene) -> None:
    """A clone serving the device's certificate and chain cannot sign the proof with the IDevID key."""
    clone_key = fixed_key("clone")
    clone = DeviceResponder(clone_key, [scene.device.cert])
    session = RegistrarHandshake(scene.home, issued_at=NOW_TS)
    bundle = clone.answer_hello(session.hello, scene.chain(), now=0.0)
    _proof_refused(scene, session, bundle, BadSignatureError, "bad_signature")
    forged = _proof_bundle(scene, session, bundle, key=clone_key, kid=scene.device.device_id)
    _proof_refused(scene, session, forged, BadSignatureError, "bad_signature")


def test_proof_tampered(scene: Scene) -> None:
    """A proof with a flipped signature bit is refused."""
    session, bundle = scene.open()
    value = _decode(bundle)
    value[1] = flip_signature(value[1])
    _proof_refused(scene, session, encode(value), BadSignatureError, "bad_signature")


def test_proof_naming_another_device(scene: Scene) -> None:
    """A proof signed by the device but naming another device id is refused."""
    session, bundle = scene.open()
    forged = _proof_bundle(scene, session, bundle, device_id=bytes(32))
    _proof_refused(scene, session, forged, WrongDeviceError, "wrong_device")


def test_proof_payload_schema(scene: Scene) -> None:
    """A proof payload has exactly the contract's fields."""
    session, bundle = scene.open()
    forged = _proof_bundle(scene, session, bundle, device_nonce=bytes(8))
    _proof_refused(scene, session, forged, MalformedError, "malformed")


def test_proof_wrong_content_type(scene: Scene) -> None:
    """Something else than a proof in the proof's place is refused, even signed by the device."""
    session, bundle = scene.open()
    value = _decode(bundle)
    value[1] = cose.sign(
        payload_of(value[1]), ContentType.RECEIPT, scene.device.key, kid=scene.device.device_id
    )
    _proof_refused(scene, session, encode(value), WrongContentTypeError, "wrong_content_type")


def test_proof_from_untrusted_manufacturer(scene: Scene) -> None:
    """A device whose IDevID does not chain to a trusted root is refused."""
    session, bundle = scene.open()
    other = Manufacturer.create("Other")
    expect_error(
        UntrustedManufacturerError,
        "untrusted_manufacturer",
        None,
        lambda: session.read_proof(bundle, roots=[other.root], now=NOW),
    )


def test_proof_with_invoice_of_another_device(scene: Scene) -> None:
    """A genuine device serving another device's invoice is refused (the invoice names another IDevID)."""
    other = scene.maker.make_device("SN0002")
    other.links.append(scene.maker.invoice(other, [scene.home]))
    session = RegistrarHandshake(scene.home, issued_at=NOW_TS)
    bundle = scene.responder.answer_hello(session.hello, other.chain(), now=0.0)
    _proof_refused(scene, session, bundle, IDevIDMismatchError, "idevid_mismatch", index=0)


def test_proof_with_broken_chain(scene: Scene) -> None:
    """A bundle whose chain has a bad link is refused naming the link."""
    session, bundle = scene.open()
    value = _decode(bundle)
    stranger_link = issue_link(
        signer=STRANGER,
        head=_owned_by(scene.chain(), STRANGER),
        owners=[STRANGER.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    value[3] = [*value[3], stranger_link]
    _proof_refused(scene, session, encode(value), SignerNotOwnerError, "signer_not_owner", index=1)


@pytest.mark.parametrize(
    "change",
    [
        lambda v: b"\xff",
        lambda v: encode([v[1], v[2], v[3]]),
        lambda v: encode({1: v[1], 2: v[2]}),
        lambda v: encode({**v, 4: b""}),
        lambda v: encode({**v, 1: "proof"}),
        lambda v: encode({**v, 2: v[2][0]}),
        lambda v: encode({**v, 2: ["cert"]}),
        lambda v: encode({**v, 3: []}),
        lambda v: encode({**v, 3: v[3][0]}),
    ],
    ids=[
        "not-cbor",
        "array",
        "missing-chain",
        "extra-key",
        "proof-not-bytes",
        "idevid-not-array",
        "idevid-text-entry",
        "empty-chain",
        "chain-not-array",
    ],
)
def test_proof_bundle_malformed(scene: Scene, change: Callable[[dict[int, Any]], bytes]) -> None:
    """A bundle is a map of exactly {1: proof, 2: [certificates], 3: [links]}."""
    session, bundle = scene.open()
    _proof_refused(scene, session, change(_decode(bundle)), MalformedError, "malformed")
    session.read_proof(bundle, roots=scene.roots, now=NOW)


def test_proof_bundle_too_large(scene: Scene) -> None:
    """A bundle over its limit is refused before it is decoded."""
    session, _ = scene.open()
    _proof_refused(scene, session, encode({1: bytes(MAX_BUNDLE_SIZE)}), TooLargeError, "too_large")


def test_proof_read_twice(scene: Scene) -> None:
    """A session reads one proof."""
    session, bundle = scene.open()
    session.read_proof(bundle, roots=scene.roots, now=NOW)
    expect_error(
        HandshakeStateError,
        "handshake_state",
        None,
        lambda: session.read_proof(bundle, roots=scene.roots, now=NOW),
    )


# --- Making the note (registrar) ----------------------------------------------------------------------------


def test_stranger_home_cannot_make_a_note(scene: Scene) -> None:
    """A home that does not own the device can read its proof but cannot sign a note for it."""
    stranger_home = fixed_key("neighbour")
    session = scene.prove(stranger_home)
    expect_error(
        NotOwnerError, "not_owner", None, lambda: session.make_note(signer=stranger_home, issued_at=NOW_TS)
    )
    assert session.note is None


def test_previous_owner_cannot_sign_after_handover_links(scene: Scene) -> None:
    """A note appending a hand-over cannot be signed by the key that handed the device over."""
    session = scene.prove()
    assert session.device is not None
    buyer = fixed_key("buyer")
    link = issue_link(
        signer=scene.home,
        head=session.device.chain.head,
        owners=[buyer.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    expect_error(
        NotOwnerError,
        "not_owner",
        None,
        lambda: session.make_note(signer=scene.home, issued_at=NOW_TS, links=[link]),
    )
    assert session.note is None
    session.make_note(signer=buyer, issued_at=NOW_TS, links=[link])


def test_note_with_bad_link_is_refused_by_registrar(scene: Scene) -> None:
    """The registrar checks the links it appends, and names the bad one."""
    session = scene.prove()
    assert session.device is not None
    bad = issue_link(
        signer=STRANGER,
        head=_owned_by(session.device.chain, STRANGER),
        owners=[STRANGER.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    expect_error(
        SignerNotOwnerError,
        "signer_not_owner",
        1,
        lambda: session.make_note(signer=STRANGER, issued_at=NOW_TS, links=[bad]),
    )
    assert session.note is None


def test_device_refuses_a_config_over_limit_or_with_other_keys(scene: Scene) -> None:
    """The device checks the configuration too: at most 4 KiB, text keys only; the session stays usable."""
    session = scene.prove()
    big = _sign_note(scene.note_payload(session, config={"blob": "x" * MAX_CONFIG_SIZE}), scene.home)
    _note_refused(scene, big, TooLargeError, "too_large")
    odd = _sign_note(scene.note_payload(session, config={1: "one"}), scene.home)
    _note_refused(scene, odd, MalformedError, "malformed")
    _good_note_still_accepted(scene, session)


def test_config_over_limit(scene: Scene) -> None:
    """A configuration over 4 KiB is refused, and a smaller one can still be sent."""
    session = scene.prove()
    expect_error(
        TooLargeError,
        "too_large",
        None,
        lambda: session.make_note(
            signer=scene.home, issued_at=NOW_TS, config={"blob": "x" * MAX_CONFIG_SIZE}
        ),
    )
    assert session.note is None
    session.make_note(signer=scene.home, issued_at=NOW_TS, config={"blob": "x"})


def test_note_before_proof() -> None:
    """A note follows a proof."""
    session = RegistrarHandshake(fixed_key("home"), issued_at=NOW_TS)
    expect_error(
        HandshakeStateError,
        "handshake_state",
        None,
        lambda: session.make_note(signer=fixed_key("home"), issued_at=0),
    )


def test_note_made_twice(scene: Scene) -> None:
    """A session makes one note."""
    session = scene.prove()
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    expect_error(
        HandshakeStateError,
        "handshake_state",
        None,
        lambda: session.make_note(signer=scene.home, issued_at=NOW_TS),
    )
    assert session.note == note


# --- Accepting the note (device) ----------------------------------------------------------------------------


def _note_refused(
    scene: Scene,
    note: bytes,
    error: type[AutoAddError],
    code: str,
    *,
    index: int | None = None,
    now: float = 1.0,
    chain: VerifiedChain | None = None,
) -> None:
    expect_error(error, code, index, lambda: scene.accept(note, now=now, chain=chain))


def _good_note_still_accepted(scene: Scene, session: RegistrarHandshake) -> None:
    note = session.note or session.make_note(signer=scene.home, issued_at=NOW_TS)
    session.read_receipt(scene.accept(note).receipt)
    assert session.done


def test_note_replayed_after_success(scene: Scene) -> None:
    """A session is used up by its note: the same note again finds no session."""
    session = scene.prove()
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    scene.accept(note)
    _note_refused(scene, note, UnknownSessionError, "unknown_session")


def test_note_for_expired_session(scene: Scene) -> None:
    """A session lives 60 seconds: a note at or after that finds no session."""
    session = scene.prove(now=100.0)
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    _note_refused(scene, note, UnknownSessionError, "unknown_session", now=160.0)


def test_note_just_before_expiry(scene: Scene) -> None:
    """A note a moment before the session expires is accepted."""
    session = scene.prove(now=100.0)
    scene.accept(session.make_note(signer=scene.home, issued_at=NOW_TS), now=159.99)


def test_session_lifetime_is_configurable() -> None:
    """The session lifetime is the responder's setting."""
    scene = _scene(session_ttl=5.0)
    session = scene.prove(now=0.0)
    _note_refused(
        scene,
        session.make_note(signer=scene.home, issued_at=NOW_TS),
        UnknownSessionError,
        "unknown_session",
        now=5.0,
    )


def test_expired_sessions_dropped_when_hello_answered() -> None:
    """An expired session is gone for good, while live ones survive the hellos that follow it."""
    scene = _scene(max_sessions=2)
    old = scene.prove(now=0.0)
    live = scene.prove(now=50.0)
    newest = scene.prove(now=70.0)  # the old session expired at 60
    _good_note_still_accepted(scene, live)
    _good_note_still_accepted(scene, newest)
    _note_refused(
        scene, old.make_note(signer=scene.home, issued_at=NOW_TS), UnknownSessionError, "unknown_session"
    )


def test_note_for_unknown_device_nonce(scene: Scene) -> None:
    """A note naming a device nonce the device never gave finds no session."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session, device_nonce=NONCE_B), scene.home)
    _note_refused(scene, note, UnknownSessionError, "unknown_session")
    _good_note_still_accepted(scene, session)


def test_note_with_wrong_registrar_nonce(scene: Scene) -> None:
    """A note whose registrar nonce is not the one of its session's hello is refused."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session, registrar_nonce=NONCE_B), scene.home)
    _note_refused(scene, note, NonceMismatchError, "nonce_mismatch")
    _good_note_still_accepted(scene, session)


def test_note_for_another_device(scene: Scene) -> None:
    """A note naming another device id is refused."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session, device_id=bytes(32)), scene.home)
    _note_refused(scene, note, WrongDeviceError, "wrong_device")
    _good_note_still_accepted(scene, session)


def test_note_signed_by_non_owner(scene: Scene) -> None:
    """A note signed by a key that does not own the device is refused."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session), STRANGER)
    _note_refused(scene, note, NotOwnerError, "not_owner")
    _good_note_still_accepted(scene, session)


def test_note_with_owner_kid_but_stranger_signature(scene: Scene) -> None:
    """A note naming an owner as kid but signed by another key is refused."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session), STRANGER, kid=fingerprint(scene.home.public_key()))
    _note_refused(scene, note, BadSignatureError, "bad_signature")
    _note_refused(
        scene,
        flip_signature(session.make_note(signer=scene.home, issued_at=NOW_TS)),
        BadSignatureError,
        "bad_signature",
    )
    _good_note_still_accepted(scene, session)


def test_note_algorithm_not_matching_owner_key(scene: Scene) -> None:
    """A note claiming ES256 but signed by an Ed25519 owner is refused."""
    session = scene.prove()
    note = with_protected(
        session.make_note(signer=scene.home, issued_at=NOW_TS), lambda h: h.__setitem__(1, -7)
    )
    _note_refused(scene, note, UnsupportedAlgorithmError, "unsupported_algorithm")
    _good_note_still_accepted(scene, session)


def test_note_signed_by_previous_owner_after_handover(scene: Scene) -> None:
    """A note appending a hand-over must be signed by the new owner, not the old one."""
    session = scene.prove()
    assert session.device is not None
    buyer = fixed_key("buyer")
    link = issue_link(
        signer=scene.home,
        head=session.device.chain.head,
        owners=[buyer.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    new_head = hashlib.sha256(link).digest()
    note = _sign_note(scene.note_payload(session, links=[link], chain_head=new_head), scene.home)
    _note_refused(scene, note, NotOwnerError, "not_owner")
    accepted = scene.accept(session.make_note(signer=buyer, issued_at=NOW_TS, links=[link]))
    assert accepted.chain.head.digest == new_head


def test_note_with_head_that_does_not_match(scene: Scene) -> None:
    """A note bound to another chain head than its links produce is refused."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session, chain_head=bytes(32)), scene.home)
    _note_refused(scene, note, ChainHeadMismatchError, "chain_head_mismatch")
    _good_note_still_accepted(scene, session)


def test_note_after_device_chain_changed(scene: Scene) -> None:
    """If the device's chain moved on since the hello, the session's note is refused."""
    session = scene.prove()
    old_chain = scene.chain()
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    scene.device.links.append(
        issue_link(
            signer=scene.home,
            head=old_chain.head,
            owners=[scene.home.public_key()],
            reason=LinkReason.ROTATE,
            issued_at=NOW_TS,
        )
    )
    _note_refused(scene, note, ChainHeadMismatchError, "chain_head_mismatch")
    _note_refused(scene, note, ChainHeadMismatchError, "chain_head_mismatch")  # still open, still refused
    session.read_receipt(scene.accept(note, chain=old_chain).receipt)


def test_note_with_bad_link(scene: Scene) -> None:
    """A note whose links do not extend the device's chain is refused, naming the link."""
    session = scene.prove()
    bad = issue_link(
        signer=STRANGER,
        head=_owned_by(scene.chain(), STRANGER),
        owners=[STRANGER.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )
    note = _sign_note(
        scene.note_payload(session, links=[bad], chain_head=hashlib.sha256(bad).digest()), STRANGER
    )
    _note_refused(scene, note, SignerNotOwnerError, "signer_not_owner", index=1)
    _good_note_still_accepted(scene, session)


@pytest.mark.parametrize(
    "changes",
    [
        {"links": [b"x"] * (MAX_CHAIN_LINKS + 1)},
        {"links": [bytes(MAX_LINK_SIZE + 1)]},
        {"links": ["text"]},
        {"config": ["not", "a", "map"]},
        {"device_nonce": bytes(31)},
        {"note_hash": bytes(32)},
    ],
    ids=[
        "65-links",
        "oversized-link",
        "text-link",
        "config-not-map",
        "short-nonce",
        "extra-label",
    ],
)
def test_note_payload_schema(scene: Scene, changes: dict[str, Any]) -> None:
    """A note payload has exactly the contract's fields: up to 64 links of up to 16 KiB, a map config."""
    session = scene.prove()
    note = _sign_note(scene.note_payload(session, **changes), scene.home)
    _note_refused(scene, note, MalformedError, "malformed")
    _good_note_still_accepted(scene, session)


def test_note_too_large(scene: Scene) -> None:
    """A note over its limit is refused before it is decoded."""
    session = scene.prove()
    payload = scene.note_payload(session, config={"blob": bytes(MAX_BUNDLE_SIZE)})
    _note_refused(scene, _sign_note(payload, scene.home), TooLargeError, "too_large")
    _good_note_still_accepted(scene, session)


def test_note_wrong_content_type(scene: Scene) -> None:
    """A link, a hello or a receipt is never a note, even signed by an owner."""
    session = scene.prove()
    payload = scene.note_payload(session)
    for content_type in (ContentType.LINK, ContentType.HELLO, ContentType.RECEIPT):
        forged = cose.sign(payload, content_type, scene.home, kid=fingerprint(scene.home.public_key()))
        _note_refused(scene, forged, WrongContentTypeError, "wrong_content_type")
    _good_note_still_accepted(scene, session)


def test_session_table_is_bounded() -> None:
    """At most `max_sessions` sessions are open: the oldest is dropped first."""
    scene = _scene(max_sessions=2)
    oldest = scene.prove(now=0.0)
    middle = scene.prove(now=1.0)
    newest = scene.prove(now=2.0)
    _note_refused(
        scene, oldest.make_note(signer=scene.home, issued_at=NOW_TS), UnknownSessionError, "unknown_session"
    )
    _good_note_still_accepted(scene, middle)
    _good_note_still_accepted(scene, newest)


def test_default_session_table_holds_eight() -> None:
    """By default eight sessions are open at once; a ninth drops the first."""
    scene = _scene()
    sessions = [scene.prove(now=float(i)) for i in range(9)]
    _note_refused(
        scene,
        sessions[0].make_note(signer=scene.home, issued_at=NOW_TS),
        UnknownSessionError,
        "unknown_session",
    )
    for session in sessions[1:]:
        _good_note_still_accepted(scene, session)


def test_rejected_notes_leave_the_session_usable(scene: Scene) -> None:
    """After any number of refused notes, the session's right note is still accepted, once."""
    session = scene.prove()
    refused = [
        _sign_note(scene.note_payload(session, registrar_nonce=NONCE_B), scene.home),
        _sign_note(scene.note_payload(session), STRANGER),
        _sign_note(scene.note_payload(session, chain_head=bytes(32)), scene.home),
        _sign_note(scene.note_payload(session, device_id=bytes(32)), scene.home),
    ]
    for note in refused:
        with pytest.raises(AutoAddError):
            scene.accept(note)
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    session.read_receipt(scene.accept(note).receipt)
    _note_refused(scene, note, UnknownSessionError, "unknown_session")


# --- Receipt ------------------------------------------------------------------------------------------------


def _noted(scene: Scene) -> tuple[RegistrarHandshake, bytes]:
    session = scene.prove()
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    return session, scene.accept(note).receipt


def _receipt_refused(
    session: RegistrarHandshake, receipt: bytes, error: type[AutoAddError], code: str
) -> None:
    expect_error(error, code, None, lambda: session.read_receipt(receipt))
    assert not session.done


def test_receipt_from_another_session(scene: Scene) -> None:
    """A receipt for another session's note is refused; this session's own receipt is then accepted."""
    first, first_receipt = _noted(scene)
    second, second_receipt = _noted(scene)
    _receipt_refused(second, first_receipt, NonceMismatchError, "nonce_mismatch")
    _receipt_refused(first, second_receipt, NonceMismatchError, "nonce_mismatch")
    first.read_receipt(first_receipt)
    second.read_receipt(second_receipt)


def test_receipt_over_another_note(scene: Scene) -> None:
    """A receipt with this session's nonces but another note's hash is refused."""
    session, receipt = _noted(scene)
    _receipt_refused(
        session,
        _receipt(scene, session, note_hash=hashlib.sha256(b"other").digest()),
        NonceMismatchError,
        "nonce_mismatch",
    )
    session.read_receipt(receipt)


def test_receipt_with_wrong_device_nonce(scene: Scene) -> None:
    """A receipt with another device nonce is refused."""
    session, receipt = _noted(scene)
    _receipt_refused(
        session, _receipt(scene, session, device_nonce=NONCE_B), NonceMismatchError, "nonce_mismatch"
    )
    session.read_receipt(receipt)


def test_receipt_signed_by_another_key(scene: Scene) -> None:
    """A receipt not signed by the IDevID key is refused, whatever kid it names."""
    session, receipt = _noted(scene)
    _receipt_refused(session, _receipt(scene, session, key=STRANGER), BadSignatureError, "bad_signature")
    _receipt_refused(
        session,
        _receipt(scene, session, key=STRANGER, kid=fingerprint(STRANGER.public_key())),
        BadSignatureError,
        "bad_signature",
    )
    _receipt_refused(session, flip_signature(receipt), BadSignatureError, "bad_signature")
    session.read_receipt(receipt)


def test_receipt_naming_another_device(scene: Scene) -> None:
    """A receipt signed by the device but naming another device id is refused."""
    session, receipt = _noted(scene)
    _receipt_refused(session, _receipt(scene, session, device_id=bytes(32)), WrongDeviceError, "wrong_device")
    session.read_receipt(receipt)


def test_receipt_with_another_head(scene: Scene) -> None:
    """A receipt reporting another chain head than the note's is refused."""
    session, receipt = _noted(scene)
    _receipt_refused(
        session, _receipt(scene, session, chain_head=bytes(32)), ChainHeadMismatchError, "chain_head_mismatch"
    )
    session.read_receipt(receipt)


def test_receipt_payload_schema(scene: Scene) -> None:
    """A receipt payload has exactly the contract's fields."""
    session, receipt = _noted(scene)
    _receipt_refused(session, _receipt(scene, session, note_hash=b"short"), MalformedError, "malformed")
    session.read_receipt(receipt)


def test_receipt_too_large(scene: Scene) -> None:
    """A receipt over 8 KiB is refused before it is decoded."""
    session, receipt = _noted(scene)
    _receipt_refused(
        session, _receipt(scene, session, model=bytes(MAX_MESSAGE_SIZE)), TooLargeError, "too_large"
    )
    session.read_receipt(receipt)


def test_receipt_wrong_content_type(scene: Scene) -> None:
    """The device's proof is never a receipt, though the same key signs both."""
    session, bundle = scene.open()
    session.read_proof(bundle, roots=scene.roots, now=NOW)
    note = session.make_note(signer=scene.home, issued_at=NOW_TS)
    receipt = scene.accept(note).receipt
    _receipt_refused(session, _decode(bundle)[1], WrongContentTypeError, "wrong_content_type")
    session.read_receipt(receipt)


def test_receipt_before_note(scene: Scene) -> None:
    """A receipt follows the note."""
    session = scene.prove()
    expect_error(HandshakeStateError, "handshake_state", None, lambda: session.read_receipt(b""))
    fresh = RegistrarHandshake(scene.home, issued_at=NOW_TS)
    expect_error(HandshakeStateError, "handshake_state", None, lambda: fresh.read_receipt(b""))


def test_receipt_read_twice(scene: Scene) -> None:
    """A session reads one receipt."""
    session, receipt = _noted(scene)
    session.read_receipt(receipt)
    expect_error(HandshakeStateError, "handshake_state", None, lambda: session.read_receipt(receipt))

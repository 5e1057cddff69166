"""Invoice chains: link 0 from a trusted manufacturer, each later link signed by an owner of the one before.

Every refusal names the link at fault (`index`), and every tampered object is re-encoded deterministically,
so each test breaks exactly the one rule it names.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
import datetime as dt
import hashlib
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import certificate_hash, certificate_to_der
from custom_components.autoadd.protocol.chain import (
    CLOCK_SKEW,
    ChainHead,
    VerifiedChain,
    chain_links,
    compare_with_known,
    decode_chain,
    encode_chain,
    extend,
    issue_invoice,
    issue_link,
    read_invoice,
    read_link,
    verify_chain,
)
from custom_components.autoadd.protocol.const import (
    MAX_CHAIN_LINKS,
    MAX_CHAIN_SIZE,
    MAX_LINK_SIZE,
    PROTOCOL_VERSION,
    ContentType,
    Label,
    LinkReason,
)
from custom_components.autoadd.protocol.errors import (
    BadSignatureError,
    ForkError,
    IDevIDMismatchError,
    MalformedError,
    ManufacturerMismatchError,
    OwnersError,
    PreviousHashError,
    RollbackError,
    SequenceError,
    SignerNotOwnerError,
    TooLargeError,
    UnsupportedAlgorithmError,
    UnsupportedVersionError,
    UntrustedManufacturerError,
    WrongContentTypeError,
    WrongDeviceError,
    WrongManufacturerRootError,
)
from custom_components.autoadd.protocol.handshake import make_hello
from custom_components.autoadd.protocol.idevid import DeviceIdentity, verify_idevid
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    fingerprint,
    public_key_to_bytes,
)
from custom_components.autoadd.protocol.manufacturer import (
    make_idevid_certificate,
    make_root_certificate,
    make_signer_certificate,
)
from tests.factory import NOW, NOW_TS, Device, Manufacturer, add_link, fixed_key
from tests.protocol.helpers import (
    cose_build,
    cose_parts,
    encode,
    expect_error,
    flip_signature,
    key_usage,
    link_payload,
    make_certificate,
    make_intermediate,
    name,
    non_canonical_map,
    payload_of,
    sign_link,
    sign_raw,
    with_part,
    with_payload,
    with_protected,
)


@dataclass
class World:
    """A manufacturer, one of its devices, and the device's chain (the invoice names `home`)."""

    maker: Manufacturer
    device: Device
    home: PrivateKey
    links: list[bytes]

    @property
    def roots(self) -> list[Any]:
        return [self.maker.root]

    def verify(self, links: list[bytes] | None = None, **kwargs: Any) -> VerifiedChain:
        kwargs.setdefault("roots", self.roots)
        kwargs.setdefault("now", NOW)
        return verify_chain(self.links if links is None else links, **kwargs)

    def head(self) -> ChainHead:
        return self.verify().head

    def add(
        self, signer: PrivateKey, owners: list[PrivateKey], reason: LinkReason = LinkReason.ROTATE
    ) -> bytes:
        return add_link(self.links, signer, owners, reason, self.roots)

    def identity(self) -> DeviceIdentity:
        return verify_idevid([certificate_to_der(self.device.cert)], self.roots, NOW)

    def refuse(
        self, error: type[Any], code: str, index: int | None, links: list[bytes], **kwargs: Any
    ) -> Any:
        return expect_error(error, code, index, lambda: self.verify(links, **kwargs))


def _world(key_type: KeyType = KeyType.ED25519, owners: int = 1) -> World:
    maker = Manufacturer.create("Acme", key_type)
    device = maker.make_device("SN0001", key_type)
    homes = [fixed_key(f"home {i}", key_type) for i in range(owners)]
    return World(maker, device, homes[0], [maker.invoice(device, homes)])


@pytest.fixture
def world() -> World:
    """An Ed25519 world with a one-owner invoice."""
    return _world()


def _owners(chain: VerifiedChain) -> list[bytes]:
    return [public_key_to_bytes(owner) for owner in chain.head.owners]


def _pub(*keys: PrivateKey) -> list[bytes]:
    return [public_key_to_bytes(key.public_key()) for key in keys]


STRANGER = fixed_key("stranger")


# --- Good chains -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", list(KeyType))
def test_invoice_alone_is_a_chain(key_type: KeyType) -> None:
    """An invoice from a trusted manufacturer is a chain of one link, owned by the homes it names."""
    world = _world(key_type)
    chain = world.verify()
    assert chain.links == tuple(world.links)
    assert chain.digests == (hashlib.sha256(world.links[0]).digest(),)
    assert chain.head.sequence == 0
    assert chain.head.digest == chain.digests[0]
    assert chain.head.issued_at == NOW_TS
    assert chain.device_id == world.device.device_id
    assert _owners(chain) == _pub(world.home)
    assert chain.head.is_owner(world.home.public_key())
    assert not chain.head.is_owner(STRANGER.public_key())
    assert chain.head.owner_fingerprints == (fingerprint(world.home.public_key()),)
    assert chain.manufacturer is not None
    assert chain.manufacturer.manufacturer == "Acme"
    assert chain.model == "Lamp 1"
    assert chain.order_ref is None
    assert chain.reasons == ()


def test_invoice_with_order_reference(world: World) -> None:
    """An invoice may carry an order reference, which the verified chain reports."""
    invoice = world.maker.invoice(world.device, [world.home], order_ref="PO-1234")
    assert world.verify([invoice]).order_ref == "PO-1234"


def test_invoice_without_model() -> None:
    """The model is optional."""
    world = _world()
    invoice = issue_invoice(
        signer=world.maker.signer_key,
        signer_chain=[world.maker.signer],
        device_id=world.device.device_id,
        idevid_hash=certificate_hash(world.device.cert),
        owners=[world.home.public_key()],
        issued_at=NOW_TS,
    )
    assert world.verify([invoice]).model is None


def test_invoice_matches_its_device(world: World) -> None:
    """An invoice naming the device's IDevID, from the IDevID's manufacturer, verifies against it."""
    chain = world.verify(device=world.identity())
    assert chain.device_id == world.identity().device_id


def test_invoice_as_provisioned_without_roots(world: World) -> None:
    """Without roots (the device's view), the invoice is checked against its own x5chain only."""
    chain = read_invoice(world.links[0], roots=None, now=NOW, device=world.identity())
    assert chain.manufacturer is None
    assert chain.head.owners[0] == world.home.public_key()


@pytest.mark.parametrize("key_type", list(KeyType))
def test_rotate_and_handover(key_type: KeyType) -> None:
    """A rotation then a hand-over: each link signed by an owner of the one before it."""
    world = _world(key_type)
    rotated, buyer = fixed_key("rotated", key_type), fixed_key("buyer", KeyType.P256)
    world.add(world.home, [rotated])
    world.add(rotated, [buyer], LinkReason.HANDOVER)
    chain = world.verify()
    assert chain.reasons == (LinkReason.ROTATE, LinkReason.HANDOVER)
    assert chain.head.sequence == 2
    assert _owners(chain) == _pub(buyer)
    assert chain.digests == tuple(hashlib.sha256(link).digest() for link in world.links)
    assert chain.head.digest == chain.digests[-1]
    assert chain.head.issued_at == NOW_TS + 2
    signers = [step.signer for step in chain.history]
    assert signers == [None, fingerprint(world.home.public_key()), fingerprint(rotated.public_key())]
    assert [step.reason for step in chain.history] == [None, LinkReason.ROTATE, LinkReason.HANDOVER]
    assert chain.device_id == world.device.device_id


def test_multiple_owners_any_can_sign() -> None:
    """With several owners, any one of them may sign the next link."""
    world = _world(owners=3)
    first, second, third = (fixed_key(f"home {i}") for i in range(3))
    assert _owners(world.verify()) == _pub(first, second, third)
    world.add(third, [second, first])
    world.add(first, [second])
    world.add(second, [second, third], LinkReason.HANDOVER)
    chain = world.verify()
    assert _owners(chain) == _pub(second, third)
    assert len(chain.links) == 4


def test_eight_owners_is_the_limit() -> None:
    """Eight owners are allowed."""
    world = _world(owners=8)
    assert len(world.verify().head.owners) == 8


def test_extend_continues_a_verified_chain(world: World) -> None:
    """Extending a verified chain with verified links gives the same result as verifying the whole."""
    start = world.verify()
    new = fixed_key("new")
    world.add(world.home, [new])
    longer = extend(start, world.links[1:])
    assert longer == world.verify()
    assert start.links == (world.links[0],)  # the original is untouched
    assert extend(start, []) == start


def test_read_link_returns_new_head_and_reason(world: World) -> None:
    """One link read against the head it extends gives the new head and why it was added."""
    head = world.head()
    link = issue_link(
        signer=world.home, head=head, owners=[STRANGER.public_key()], reason=LinkReason.HANDOVER, issued_at=5
    )
    new_head, reason = read_link(link, head)
    assert reason is LinkReason.HANDOVER
    assert new_head.sequence == 1
    assert new_head.digest == hashlib.sha256(link).digest()
    assert new_head.owners[0] == STRANGER.public_key()
    assert new_head.issued_at == 5


def test_verified_chain_is_immutable(world: World) -> None:
    """A verified chain, and its head, cannot be changed after verification."""
    chain = world.verify()
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.links = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.head.owners = ()  # type: ignore[misc]
    assert isinstance(chain.links, tuple)
    assert isinstance(chain.head.owners, tuple)


def test_refused_extension_leaves_the_chain_unchanged(world: World) -> None:
    """A refused extension raises and the chain it started from is exactly as it was."""
    chain = world.verify()
    before = (chain.links, chain.digests, chain.head, chain.reasons)
    bad = sign_link(link_payload(chain.head, [STRANGER.public_key()]), STRANGER)
    expect_error(SignerNotOwnerError, "signer_not_owner", 1, lambda: extend(chain, [bad]))
    assert (chain.links, chain.digests, chain.head, chain.reasons) == before


def test_longest_chain_and_one_more() -> None:
    """A chain of 64 links verifies; a 65th link is refused as too large."""
    world = _world()
    chain = world.verify()
    links = list(world.links)
    head = chain.head
    while len(links) < MAX_CHAIN_LINKS:
        link = issue_link(
            signer=world.home,
            head=head,
            owners=[world.home.public_key()],
            reason=LinkReason.ROTATE,
            issued_at=1,
        )
        head, _ = read_link(link, head)
        links.append(link)
    full = world.verify(links)
    assert len(full.links) == MAX_CHAIN_LINKS
    extra = issue_link(
        signer=world.home, head=head, owners=[world.home.public_key()], reason=LinkReason.ROTATE, issued_at=1
    )
    expect_error(TooLargeError, "too_large", None, lambda: extend(full, [extra]))
    world.refuse(TooLargeError, "too_large", None, [*links, extra])


# --- Issuing refuses what verifying would refuse ------------------------------------------------------------


def test_issue_link_by_non_owner(world: World) -> None:
    """Only an owner of the head may issue the next link."""
    expect_error(
        SignerNotOwnerError,
        "signer_not_owner",
        None,
        lambda: issue_link(
            signer=STRANGER,
            head=world.head(),
            owners=[STRANGER.public_key()],
            reason=LinkReason.ROTATE,
            issued_at=0,
        ),
    )


@pytest.mark.parametrize("count", [0, 9])
def test_issue_with_bad_owner_count(world: World, count: int) -> None:
    """Issuing with no owners, or more than eight, is refused."""
    owners = [fixed_key(f"o{i}").public_key() for i in range(count)]
    expect_error(
        OwnersError,
        "invalid_owners",
        None,
        lambda: issue_link(
            signer=world.home, head=world.head(), owners=owners, reason=LinkReason.ROTATE, issued_at=0
        ),
    )


def test_issue_invoice_with_duplicate_owner(world: World) -> None:
    """Issuing an invoice that names a key twice is refused."""
    expect_error(
        OwnersError,
        "invalid_owners",
        None,
        lambda: world.maker.invoice(world.device, [world.home, world.home]),
    )


# --- Signatures and signers ---------------------------------------------------------------------------------


def test_invoice_bad_signature(world: World) -> None:
    """An invoice with one signature bit flipped is refused at link 0."""
    world.refuse(BadSignatureError, "bad_signature", 0, [flip_signature(world.links[0])])


def test_invoice_payload_changed_after_signing(world: World) -> None:
    """An invoice whose owners were swapped after signing is refused at link 0."""
    forged = with_payload(world.links[0], lambda p: p.__setitem__(Label.OWNERS, _pub(STRANGER)))
    world.refuse(BadSignatureError, "bad_signature", 0, [forged])


def test_link_bad_signature(world: World) -> None:
    """A later link with a flipped signature bit is refused at its position."""
    world.add(world.home, [world.home])
    world.add(world.home, [STRANGER])
    world.refuse(
        BadSignatureError, "bad_signature", 2, [*world.links[:2], flip_signature(world.links[2], 10)]
    )


def test_link_signed_by_another_key_than_its_kid(world: World) -> None:
    """A link whose kid names an owner but whose signature is a stranger's is refused."""
    head = world.head()
    forged = sign_link(
        link_payload(head, [STRANGER.public_key()]), STRANGER, kid=fingerprint(world.home.public_key())
    )
    world.refuse(BadSignatureError, "bad_signature", 1, [world.links[0], forged])


def test_invoice_without_x5chain(world: World) -> None:
    """An invoice without the signer's certificate chain cannot be traced to a manufacturer."""
    payload = payload_of(world.links[0])
    bare = cose.sign(payload, ContentType.INVOICE, world.maker.signer_key)
    world.refuse(UntrustedManufacturerError, "untrusted_manufacturer", 0, [bare])


def test_invoice_signer_not_under_trusted_roots(world: World) -> None:
    """An invoice whose signer does not chain to a trusted root is refused at link 0."""
    other = Manufacturer.create("Other")
    world.refuse(UntrustedManufacturerError, "untrusted_manufacturer", 0, world.links, roots=[other.root])


def test_invoice_from_a_look_alike_manufacturer(world: World) -> None:
    """An invoice under a root with the trusted manufacturer's name but another key is refused."""
    forger_root_key = fixed_key("forger root")
    forger_root = make_root_certificate(forger_root_key, "Acme", now=NOW - dt.timedelta(days=30), serial=1)
    assert forger_root.subject == world.maker.root.subject
    forger_signer = make_signer_certificate(
        forger_root_key,
        forger_root,
        world.maker.signer_key.public_key(),
        now=NOW - dt.timedelta(days=30),
        serial=2,
    )
    forged = issue_invoice(
        signer=world.maker.signer_key,
        signer_chain=[forger_signer],
        device_id=world.device.device_id,
        idevid_hash=certificate_hash(world.device.cert),
        owners=[STRANGER.public_key()],
        issued_at=NOW_TS,
    )
    world.refuse(WrongManufacturerRootError, "wrong_manufacturer_root", 0, [forged])


def test_invoice_signed_by_another_key_than_its_certificate(world: World) -> None:
    """An invoice carrying the manufacturer's certificate but signed by another key is refused."""
    payload = payload_of(world.links[0])
    forged = cose.sign(
        payload, ContentType.INVOICE, STRANGER, x5chain=(certificate_to_der(world.maker.signer),)
    )
    world.refuse(BadSignatureError, "bad_signature", 0, [forged])


def test_invoice_signer_certificate_is_not_a_certificate(world: World) -> None:
    """An x5chain entry that is not DER is malformed, at link 0."""
    forged = cose.sign(
        payload_of(world.links[0]), ContentType.INVOICE, world.maker.signer_key, x5chain=(b"junk",)
    )
    world.refuse(MalformedError, "malformed", 0, [forged])


def test_invoice_signer_certificate_too_large(world: World) -> None:
    """An x5chain certificate over 4096 bytes is refused, at link 0."""
    forged = cose.sign(
        payload_of(world.links[0]), ContentType.INVOICE, world.maker.signer_key, x5chain=(bytes(4097),)
    )
    world.refuse(TooLargeError, "too_large", 0, [forged])


def test_invoice_signer_certificate_with_rsa_key(world: World) -> None:
    """An invoice signer certificate for an RSA key is outside the allow-list, at link 0."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = make_certificate(
        world.maker.root_key, world.maker.root.subject, rsa_key.public_key(), name("rsa"), ca=False
    )
    forged = cose.sign(
        payload_of(world.links[0]),
        ContentType.INVOICE,
        world.maker.signer_key,
        x5chain=(certificate_to_der(cert),),
    )
    world.refuse(UnsupportedAlgorithmError, "unsupported_algorithm", 0, [forged])


def test_invoice_signer_below_an_intermediate(world: World) -> None:
    """The invoice signer may sit below an intermediate CA carried in x5chain."""
    inter_key = fixed_key("invoice ca")
    inter = make_intermediate(world.maker.root_key, world.maker.root, inter_key, common_name="Invoice CA")
    signer = make_certificate(
        inter_key,
        inter.subject,
        world.maker.signer_key.public_key(),
        name("signer"),
        ca=False,
        usage=key_usage(digital_signature=True),
    )
    invoice = cose.sign(
        payload_of(world.links[0]),
        ContentType.INVOICE,
        world.maker.signer_key,
        x5chain=(certificate_to_der(signer), certificate_to_der(inter)),
    )
    assert world.verify([invoice], device=world.identity()).manufacturer is not None


def test_kid_on_invoice_and_x5chain_on_link_are_ignored(world: World) -> None:
    """A receiver ignores a kid on an invoice and an x5chain on a link (senders must not send them)."""
    invoice = cose.sign(
        payload_of(world.links[0]),
        ContentType.INVOICE,
        world.maker.signer_key,
        kid=b"anything",
        x5chain=(certificate_to_der(world.maker.signer),),
    )
    link = cose.sign(
        link_payload(world.verify([invoice]).head, [world.home.public_key()]),
        ContentType.LINK,
        world.home,
        kid=fingerprint(world.home.public_key()),
        x5chain=(b"not even a certificate",),
    )
    assert world.verify([invoice, link]).head.sequence == 1


def test_invoice_issued_before_signer_certificate(world: World) -> None:
    """The signer's certificate must be valid when the invoice says it was issued."""
    old = world.maker.invoice(world.device, [world.home])
    payload = payload_of(old)
    payload[Label.ISSUED_AT] = NOW_TS - 365 * 86400
    forged = cose.sign(
        payload,
        ContentType.INVOICE,
        world.maker.signer_key,
        x5chain=(certificate_to_der(world.maker.signer),),
    )
    world.refuse(UntrustedManufacturerError, "untrusted_manufacturer", 0, [forged])


def _invoice_at(world: World, issued_at: int) -> bytes:
    payload = payload_of(world.links[0])
    payload[Label.ISSUED_AT] = issued_at
    return cose.sign(
        payload,
        ContentType.INVOICE,
        world.maker.signer_key,
        x5chain=(certificate_to_der(world.maker.signer),),
    )


def test_invoice_issued_in_the_future(world: World) -> None:
    """An invoice issued more than a day after the verifier's clock is refused."""
    skew = int(CLOCK_SKEW.total_seconds())
    world.refuse(
        UntrustedManufacturerError, "untrusted_manufacturer", 0, [_invoice_at(world, NOW_TS + skew + 60)]
    )
    world.refuse(UntrustedManufacturerError, "untrusted_manufacturer", 0, [_invoice_at(world, 2**63)])


def test_invoice_within_clock_skew(world: World) -> None:
    """An invoice up to a day ahead of the verifier's clock is accepted."""
    skew = int(CLOCK_SKEW.total_seconds())
    assert world.verify([_invoice_at(world, NOW_TS + skew)]).head.issued_at == NOW_TS + skew


def test_future_invoice_accepted_as_provisioned(world: World) -> None:
    """Without roots (the device's own invoice), there is no clock to compare with."""
    invoice = _invoice_at(world, NOW_TS + 10 * 86400)
    assert read_invoice(invoice, roots=None, now=NOW).head.issued_at == NOW_TS + 10 * 86400


def test_signer_is_a_stranger(world: World) -> None:
    """A link signed by a key the previous link does not name is refused."""
    link = sign_link(link_payload(world.head(), [STRANGER.public_key()]), STRANGER)
    world.refuse(SignerNotOwnerError, "signer_not_owner", 1, [world.links[0], link])


def test_signer_without_kid(world: World) -> None:
    """A link without a kid names no owner, so it is refused."""
    link = cose.sign(link_payload(world.head(), [STRANGER.public_key()]), ContentType.LINK, world.home)
    world.refuse(SignerNotOwnerError, "signer_not_owner", 1, [world.links[0], link])


def test_previous_owner_after_handover(world: World) -> None:
    """After a hand-over, the previous owner may no longer sign: its link is refused."""
    buyer = fixed_key("buyer")
    world.add(world.home, [buyer], LinkReason.HANDOVER)
    link = sign_link(link_payload(world.head(), [world.home.public_key()]), world.home)
    world.refuse(SignerNotOwnerError, "signer_not_owner", 2, [*world.links, link])


def test_skipped_link(world: World) -> None:
    """Dropping a link in the middle breaks the chain at the link after it."""
    rotated = fixed_key("rotated")
    world.add(world.home, [rotated])
    world.add(rotated, [STRANGER])
    world.refuse(SignerNotOwnerError, "signer_not_owner", 1, [world.links[0], world.links[2]])


# --- Link fields --------------------------------------------------------------------------------------------


def test_wrong_previous_hash(world: World) -> None:
    """A link must carry the SHA-256 of the exact bytes of the link before it."""
    payload = link_payload(world.head(), [STRANGER.public_key()])
    payload[Label.PREVIOUS] = hashlib.sha256(b"another link").digest()
    world.refuse(
        PreviousHashError, "wrong_previous_hash", 1, [world.links[0], sign_link(payload, world.home)]
    )


def test_previous_hash_of_a_re_encoded_link(world: World) -> None:
    """The previous hash is over the bytes received, not over a decoded-and-re-encoded value."""
    head = world.head()
    link = sign_link(link_payload(head, [world.home.public_key()]), world.home)
    world.links.append(link)
    payload = link_payload(world.verify().head, [STRANGER.public_key()])
    payload[Label.PREVIOUS] = hashlib.sha256(payload_of(link)[Label.PREVIOUS]).digest()
    world.refuse(PreviousHashError, "wrong_previous_hash", 2, [*world.links, sign_link(payload, world.home)])


@pytest.mark.parametrize("sequence", [0, 2, 5])
def test_wrong_sequence(world: World, sequence: int) -> None:
    """A link's sequence number must be its position in the chain."""
    payload = link_payload(world.head(), [STRANGER.public_key()])
    payload[Label.SEQUENCE] = sequence
    world.refuse(SequenceError, "wrong_sequence", 1, [world.links[0], sign_link(payload, world.home)])


def test_link_for_another_device(world: World) -> None:
    """A link naming another device than the chain's is refused."""
    payload = link_payload(world.head(), [STRANGER.public_key()])
    payload[Label.DEVICE_ID] = world.maker.make_device("SN0002").device_id
    world.refuse(WrongDeviceError, "wrong_device", 1, [world.links[0], sign_link(payload, world.home)])


def test_link_from_another_device_chain(world: World) -> None:
    """A genuine link from another device's chain, signed by the same home, does not fit this chain."""
    other = Manufacturer.create("Acme").make_device("SN0002")
    other_links = [world.maker.invoice(other, [world.home])]
    add_link(other_links, world.home, [STRANGER], LinkReason.HANDOVER, world.roots)
    world.refuse(WrongDeviceError, "wrong_device", 1, [world.links[0], other_links[1]])


# --- Headers and algorithms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", [-35, -36, -257, 0, 1, "EdDSA", None, True, [-8], {1: -8}, b"\xf8"])
def test_algorithm_outside_allow_list(world: World, alg: Any) -> None:
    """Only EdDSA (-8) and ES256 (-7) are allowed in the protected header, whatever the value's type."""
    link = world.add(world.home, [world.home])
    forged = with_protected(link, lambda h: h.__setitem__(cose.HEADER_ALG, alg))
    world.refuse(UnsupportedAlgorithmError, "unsupported_algorithm", 1, [world.links[0], forged])


def test_algorithm_missing(world: World) -> None:
    """A protected header without alg is refused as an unsupported algorithm."""
    forged = with_protected(world.links[0], lambda h: h.pop(cose.HEADER_ALG))
    world.refuse(UnsupportedAlgorithmError, "unsupported_algorithm", 0, [forged])


def test_es256_header_with_ed25519_signer(world: World) -> None:
    """A link claiming ES256 but signed by an Ed25519 owner is refused: the key fixes the algorithm."""
    link = world.add(world.home, [world.home])
    forged = with_protected(link, lambda h: h.__setitem__(cose.HEADER_ALG, -7))
    world.refuse(UnsupportedAlgorithmError, "unsupported_algorithm", 1, [world.links[0], forged])


def test_eddsa_header_with_p256_manufacturer() -> None:
    """An invoice claiming EdDSA but signed by a P-256 manufacturer key is refused at link 0."""
    world = _world(KeyType.P256)
    forged = with_protected(world.links[0], lambda h: h.__setitem__(cose.HEADER_ALG, -8))
    world.refuse(UnsupportedAlgorithmError, "unsupported_algorithm", 0, [forged])


def test_invoice_placed_as_a_later_link(world: World) -> None:
    """An invoice where link n > 0 belongs is the wrong content type."""
    world.add(world.home, [world.home])
    world.refuse(WrongContentTypeError, "wrong_content_type", 2, [*world.links, world.links[0]])


def test_link_placed_as_link_zero(world: World) -> None:
    """A link where the invoice belongs is the wrong content type."""
    link = world.add(world.home, [world.home])
    world.refuse(WrongContentTypeError, "wrong_content_type", 0, [link])


def test_note_placed_in_a_chain(world: World) -> None:
    """A signed note (or hello) is never a chain link, even signed by an owner."""
    payload = link_payload(world.head(), [world.home.public_key()])
    note = cose.sign(payload, ContentType.NOTE, world.home, kid=fingerprint(world.home.public_key()))
    world.refuse(WrongContentTypeError, "wrong_content_type", 1, [world.links[0], note])
    hello = make_hello(world.home, bytes(32), NOW_TS)
    world.refuse(WrongContentTypeError, "wrong_content_type", 0, [hello])


def test_content_type_missing(world: World) -> None:
    """A link without a content type is refused as the wrong content type."""
    forged = with_protected(world.links[0], lambda h: h.pop(cose.HEADER_CONTENT_TYPE))
    world.refuse(WrongContentTypeError, "wrong_content_type", 0, [forged])


@pytest.mark.parametrize("label", [2, 5, 6, 34, -1, "x"])
def test_extra_protected_header_label(world: World, label: Any) -> None:
    """The protected header holds only alg, content type, kid and x5chain."""
    link = world.add(world.home, [world.home])
    forged = with_protected(link, lambda h: h.__setitem__(label, b""))
    world.refuse(MalformedError, "malformed", 1, [world.links[0], forged])


@pytest.mark.parametrize("header", [{4: b"kid"}, {1: -8}, {"x": 1}])
def test_non_empty_unprotected_header(world: World, header: dict[Any, Any]) -> None:
    """The unprotected header must be empty: nothing outside the signature may change how a link reads."""
    link = world.add(world.home, [world.home])
    world.refuse(MalformedError, "malformed", 1, [world.links[0], with_part(link, 1, header)])


def test_untagged_cose(world: World) -> None:
    """A COSE_Sign1 without its tag 18 is refused."""
    untagged = cose_build(cose_parts(world.links[0]), tag=None)
    world.refuse(MalformedError, "malformed", 0, [untagged])


@pytest.mark.parametrize("tag", [98, 17, 61])
def test_other_cose_tags(world: World, tag: int) -> None:
    """Only tag 18 (COSE_Sign1) is accepted: not COSE_Sign, COSE_Mac0 or a CWT wrapper."""
    world.refuse(MalformedError, "malformed", 0, [cose_build(cose_parts(world.links[0]), tag=tag)])


@pytest.mark.parametrize(
    ("position", "value"),
    [(0, {1: -8}), (2, None), (2, "payload"), (3, [1]), (0, b"")],
    ids=["protected-not-bytes", "detached-payload", "text-payload", "signature-not-bytes", "empty-protected"],
)
def test_cose_parts_of_the_wrong_type(world: World, position: int, value: Any) -> None:
    """Protected header, payload and signature are byte strings; the protected header is a CBOR map."""
    world.refuse(MalformedError, "malformed", 0, [with_part(world.links[0], position, value)])


@pytest.mark.parametrize("size", [3, 5])
def test_cose_with_wrong_element_count(world: World, size: int) -> None:
    """A COSE_Sign1 has exactly four elements."""
    parts = cose_parts(world.links[0])
    parts = parts[:size] if size < 4 else [*parts, b""]
    world.refuse(MalformedError, "malformed", 0, [cose_build(parts)])


def test_protected_header_not_a_map(world: World) -> None:
    """A protected header that decodes to something else than a map is malformed."""
    world.refuse(MalformedError, "malformed", 0, [with_part(world.links[0], 0, encode([1, -8]))])


@pytest.mark.parametrize("kid", ["text", 5, [b"a"]])
def test_kid_not_bytes(world: World, kid: Any) -> None:
    """A kid is a byte string."""
    link = world.add(world.home, [world.home])
    forged = with_protected(link, lambda h: h.__setitem__(cose.HEADER_KID, kid))
    world.refuse(MalformedError, "malformed", 1, [world.links[0], forged])


@pytest.mark.parametrize(
    "x5chain",
    [b"single", [], [b"a"] * 5, ["text"], 7],
    ids=["not-array", "empty", "five", "text-entry", "integer"],
)
def test_x5chain_shape(world: World, x5chain: Any) -> None:
    """x5chain is an array of 1 to 4 byte strings."""
    forged = with_protected(world.links[0], lambda h: h.__setitem__(cose.HEADER_X5CHAIN, x5chain))
    world.refuse(MalformedError, "malformed", 0, [forged])


# --- IDevID and manufacturer --------------------------------------------------------------------------------


def test_invoice_for_another_device_id(world: World) -> None:
    """An invoice naming another device than the IDevID at hand is refused."""
    other = world.maker.make_device("SN0002")
    invoice = world.maker.invoice(other, [world.home])
    world.refuse(IDevIDMismatchError, "idevid_mismatch", 0, [invoice], device=world.identity())


def test_invoice_for_another_idevid_certificate(world: World) -> None:
    """An invoice naming another certificate for the same device key is refused."""
    reissued = make_idevid_certificate(
        world.maker.root_key,
        world.maker.root,
        world.device.key.public_key(),
        serial_number="SN0001",
        model="Lamp 1",
        now=NOW - dt.timedelta(days=1),
        serial=424242,
    )
    identity = verify_idevid([certificate_to_der(reissued)], world.roots, NOW)
    assert identity.device_id == world.device.device_id
    world.refuse(IDevIDMismatchError, "idevid_mismatch", 0, world.links, device=identity)


def test_invoice_from_another_trusted_manufacturer(world: World) -> None:
    """An invoice from another trusted manufacturer than the IDevID's is refused."""
    other = Manufacturer.create("Other", KeyType.P256)
    invoice = other.invoice(world.device, [world.home])
    roots = [world.maker.root, other.root]
    assert verify_chain([invoice], roots=roots, now=NOW).manufacturer is not None
    world.refuse(
        ManufacturerMismatchError, "manufacturer_mismatch", 0, [invoice], roots=roots, device=world.identity()
    )


# --- Owners -------------------------------------------------------------------------------------------------


def _with_owners(world: World, owners: list[Any], at_link: bool) -> list[bytes]:
    if not at_link:
        payload = payload_of(world.links[0])
        payload[Label.OWNERS] = owners
        invoice = cose.sign(
            payload,
            ContentType.INVOICE,
            world.maker.signer_key,
            x5chain=(certificate_to_der(world.maker.signer),),
        )
        return [invoice]
    payload = link_payload(world.head(), [])
    payload[Label.OWNERS] = owners
    return [world.links[0], sign_link(payload, world.home)]


@pytest.mark.parametrize("at_link", [False, True], ids=["invoice", "link"])
@pytest.mark.parametrize(
    "owners",
    [
        list,
        lambda: _pub(STRANGER, STRANGER),
        lambda: _pub(*(fixed_key(f"o{i}") for i in range(9))),
        lambda: [b"not a key"],
        lambda: [*_pub(STRANGER), bytes(44)],
    ],
    ids=["empty", "duplicate", "nine", "garbage", "zero-key"],
)
def test_bad_owner_list(world: World, at_link: bool, owners: Callable[[], list[bytes]]) -> None:
    """An owner list must name one to eight distinct, loadable keys (none only in an invoice)."""
    if owners is list and not at_link:
        unassigned = verify_chain(_with_owners(world, [], at_link), roots=[world.maker.root], now=NOW)
        assert unassigned.head.owners == ()  # unassigned stock, claimed with a code (§14.9)
        return
    world.refuse(OwnersError, "invalid_owners", int(at_link), _with_owners(world, owners(), at_link))


def _spki(key: Any) -> bytes:
    data = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert isinstance(data, bytes)
    return data


@pytest.mark.parametrize("at_link", [False, True], ids=["invoice", "link"])
@pytest.mark.parametrize(
    "owner",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()).public_key(),
        lambda: x25519.X25519PrivateKey.generate().public_key(),
    ],
    ids=["p384", "x25519"],
)
def test_owner_key_of_another_type(world: World, at_link: bool, owner: Callable[[], Any]) -> None:
    """An owner key that is not Ed25519 or P-256 is refused as an unsupported algorithm, naming the link."""
    world.refuse(
        UnsupportedAlgorithmError,
        "unsupported_algorithm",
        int(at_link),
        _with_owners(world, [_spki(owner())], at_link),
    )


def test_owner_key_too_long(world: World) -> None:
    """An owner entry of more than 128 bytes is malformed."""
    world.refuse(MalformedError, "malformed", 1, _with_owners(world, [bytes(129)], at_link=True))


# --- Sizes --------------------------------------------------------------------------------------------------


def _big_link(world: World, size: int) -> bytes:
    payload = link_payload(world.head(), [world.home.public_key()])
    payload[99] = bytes(size)
    return sign_link(payload, world.home)


def test_link_over_size_limit(world: World) -> None:
    """A link of more than 16 KiB is refused before it is decoded."""
    big = _big_link(world, MAX_LINK_SIZE)
    assert len(big) > MAX_LINK_SIZE
    world.refuse(TooLargeError, "too_large", 1, [world.links[0], big])


def test_chain_over_link_count(world: World) -> None:
    """More than 64 links are refused before any is verified."""
    world.refuse(TooLargeError, "too_large", None, world.links * (MAX_CHAIN_LINKS + 1))


def test_chain_over_size_limit(world: World) -> None:
    """More than 128 KiB of links are refused before any is verified, and so is extending past it."""
    big = _big_link(world, MAX_LINK_SIZE - 1000)
    assert len(big) <= MAX_LINK_SIZE
    count = MAX_CHAIN_SIZE // len(big) + 1
    world.refuse(TooLargeError, "too_large", None, [world.links[0], *[big] * count])
    expect_error(TooLargeError, "too_large", None, lambda: extend(world.verify(), [big] * count))


def test_extend_over_link_count(world: World) -> None:
    """Extending a chain past 64 links is refused before any link is verified."""
    expect_error(
        TooLargeError, "too_large", None, lambda: extend(world.verify(), world.links * MAX_CHAIN_LINKS)
    )


def test_empty_chain(world: World) -> None:
    """A chain has at least its invoice."""
    world.refuse(MalformedError, "malformed", None, [])


# --- Encoding -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda b: b"",
        lambda b: b"\xff",
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b[:20],
        lambda b: b"\x1f" + b,
    ],
    ids=["empty", "break-byte", "truncated", "trailing-byte", "cut", "reserved-byte"],
)
def test_malformed_cbor(world: World, corrupt: Callable[[bytes], bytes]) -> None:
    """Bytes that are not one complete CBOR item are malformed, at their link."""
    link = world.add(world.home, [world.home])
    world.refuse(MalformedError, "malformed", 1, [world.links[0], corrupt(link)])


def test_link_not_bytes(world: World) -> None:
    """A chain entry that is not a byte string is malformed."""
    world.refuse(MalformedError, "malformed", 1, [world.links[0], "text"])  # type: ignore[list-item]


def test_indefinite_length_cose(world: World) -> None:
    """An indefinite-length array is not deterministic CBOR, even if it holds the same signed parts."""
    parts = cose_parts(world.links[0])
    indefinite = b"\xd2\x9f" + b"".join(encode(part) for part in parts) + b"\xff"
    assert cbor2.loads(indefinite) == cbor2.loads(world.links[0])
    world.refuse(MalformedError, "malformed", 0, [indefinite])


def test_non_shortest_tag(world: World) -> None:
    """Tag 18 written in two bytes instead of one is not deterministic CBOR."""
    padded = b"\xd8\x12" + world.links[0][1:]
    assert cbor2.loads(padded) == cbor2.loads(world.links[0])
    world.refuse(MalformedError, "malformed", 0, [padded])


def test_non_canonical_protected_header(world: World) -> None:
    """A protected header with its map keys out of order is refused."""
    header = cbor2.loads(cose_parts(world.links[0])[0])
    forged = with_part(world.links[0], 0, non_canonical_map(header))
    world.refuse(MalformedError, "malformed", 0, [forged])


def test_duplicate_key_in_protected_header(world: World) -> None:
    """A map naming a key twice is refused (the last value would otherwise silently win)."""
    header = cbor2.loads(cose_parts(world.links[0])[0])
    raw = encode(header)
    duplicated = bytes([raw[0] + 1]) + raw[1:] + encode(1) + encode(-8)
    world.refuse(MalformedError, "malformed", 0, [with_part(world.links[0], 0, duplicated)])


def test_non_canonical_payload_with_valid_signature(world: World) -> None:
    """A correctly signed payload whose map keys are out of order is still refused, at its link."""
    payload = link_payload(world.head(), [world.home.public_key()])
    link = sign_raw(
        non_canonical_map(payload), ContentType.LINK, world.home, kid=fingerprint(world.home.public_key())
    )
    world.refuse(MalformedError, "malformed", 1, [world.links[0], link])


def test_payload_nested_too_deep(world: World) -> None:
    """A payload nesting deeper than 16 levels is refused, at its link."""
    deep: Any = 1
    for _ in range(17):
        deep = [deep]
    payload = link_payload(world.head(), [world.home.public_key()])
    payload[99] = deep
    world.refuse(MalformedError, "malformed", 1, [world.links[0], sign_link(payload, world.home)])


def test_payload_not_a_map(world: World) -> None:
    """A payload that is not a map is malformed, at its link."""
    link = sign_raw(encode([1, 2]), ContentType.LINK, world.home, kid=fingerprint(world.home.public_key()))
    world.refuse(MalformedError, "malformed", 1, [world.links[0], link])


def _change(label: int, value: Any) -> Callable[[dict[int, Any]], None]:
    def change(payload: dict[int, Any]) -> None:
        if value is _DROP:
            del payload[label]
        else:
            payload[label] = value

    return change


_DROP = object()


@pytest.mark.parametrize(
    "change",
    [
        _change(Label.VERSION, True),
        _change(Label.VERSION, _DROP),
        _change(Label.DEVICE_ID, bytes(31)),
        _change(Label.DEVICE_ID, "id"),
        _change(Label.PREVIOUS, bytes(33)),
        _change(Label.SEQUENCE, -1),
        _change(Label.SEQUENCE, True),
        _change(Label.SEQUENCE, _DROP),
        _change(Label.OWNERS, b"not an array"),
        _change(Label.OWNERS, [1]),
        _change(Label.REASON, "sold"),
        _change(Label.REASON, _DROP),
        _change(Label.ISSUED_AT, -5),
        _change(Label.ISSUED_AT, 1.5),
        _change(Label.ISSUED_AT, 2**64),
        _change(Label.MODEL, "Lamp"),
        _change(Label.IDEVID_HASH, bytes(32)),
        _change(99, 1),
    ],
    ids=[
        "version-true",
        "no-version",
        "short-device-id",
        "text-device-id",
        "long-previous",
        "negative-sequence",
        "bool-sequence",
        "no-sequence",
        "owners-not-array",
        "owner-not-bytes",
        "unknown-reason",
        "no-reason",
        "negative-time",
        "float-time",
        "huge-time",
        "invoice-field-in-link",
        "idevid-hash-in-link",
        "unknown-label",
    ],
)
def test_link_payload_schema(world: World, change: Callable[[dict[int, Any]], None]) -> None:
    """A link payload has exactly the contract's fields, each of its type; anything else is malformed."""
    payload = link_payload(world.head(), [world.home.public_key()])
    change(payload)
    world.refuse(MalformedError, "malformed", 1, [world.links[0], sign_link(payload, world.home)])


@pytest.mark.parametrize(
    "change",
    [
        _change(Label.IDEVID_HASH, _DROP),
        _change(Label.IDEVID_HASH, bytes(16)),
        _change(Label.ISSUED_AT, _DROP),
        _change(Label.MODEL, 5),
        _change(Label.MODEL, "x" * 129),
        _change(Label.ORDER_REF, b"PO"),
        _change(Label.PREVIOUS, bytes(32)),
        _change(Label.SEQUENCE, 0),
    ],
    ids=[
        "no-idevid-hash",
        "short-idevid-hash",
        "no-time",
        "model-not-text",
        "model-too-long",
        "order-ref-not-text",
        "previous-in-invoice",
        "sequence-in-invoice",
    ],
)
def test_invoice_payload_schema(world: World, change: Callable[[dict[int, Any]], None]) -> None:
    """An invoice payload has exactly the contract's fields, each of its type; anything else is malformed."""
    payload = payload_of(world.links[0])
    change(payload)
    invoice = cose.sign(
        payload,
        ContentType.INVOICE,
        world.maker.signer_key,
        x5chain=(certificate_to_der(world.maker.signer),),
    )
    world.refuse(MalformedError, "malformed", 0, [invoice])


@pytest.mark.parametrize("version", [0, 2])
def test_another_protocol_version_is_unsupported(world: World, version: int) -> None:
    """A link of another protocol version is refused as unsupported_version, not as malformed."""
    payload = link_payload(world.head(), [world.home.public_key()])
    payload[Label.VERSION] = version
    world.refuse(
        UnsupportedVersionError, "unsupported_version", 1, [world.links[0], sign_link(payload, world.home)]
    )
    invoice = payload_of(world.links[0])
    invoice[Label.VERSION] = version
    signed = cose.sign(
        invoice,
        ContentType.INVOICE,
        world.maker.signer_key,
        x5chain=(certificate_to_der(world.maker.signer),),
    )
    world.refuse(UnsupportedVersionError, "unsupported_version", 0, [signed])


def test_version_is_the_protocol_version(world: World) -> None:
    """Both kinds of link carry the protocol version, 1."""
    assert PROTOCOL_VERSION == 1
    assert payload_of(world.links[0])[Label.VERSION] == 1
    assert payload_of(world.add(world.home, [world.home]))[Label.VERSION] == 1


# --- Fork and rollback --------------------------------------------------------------------------------------


def _digests(world: World) -> tuple[bytes, ...]:
    return world.verify().digests


def test_same_or_longer_chain_is_fine(world: World) -> None:
    """A chain equal to, or extending, the known one is neither a fork nor a rollback."""
    known = _digests(world)
    compare_with_known(known, known)
    world.add(world.home, [world.home])
    compare_with_known(known, _digests(world))
    compare_with_known((), _digests(world))


def test_fork_is_named_by_first_differing_position(world: World) -> None:
    """Two different links after the same parent are a fork at the first position where they differ."""
    rotated = fixed_key("rotated")
    world.add(world.home, [rotated])
    world.add(rotated, [rotated])
    known = _digests(world)
    fork = [world.links[0], world.links[1]]
    add_link(fork, rotated, [STRANGER], LinkReason.HANDOVER, world.roots)
    seen = verify_chain(fork, roots=world.roots, now=NOW).digests
    expect_error(ForkError, "fork", 2, lambda: compare_with_known(known, seen))
    add_link(fork, STRANGER, [STRANGER], LinkReason.ROTATE, world.roots)
    longer = verify_chain(fork, roots=world.roots, now=NOW).digests
    expect_error(ForkError, "fork", 2, lambda: compare_with_known(known, longer))


def test_fork_at_the_invoice(world: World) -> None:
    """Two different invoices for the same device are a fork at position 0."""
    other = world.maker.invoice(world.device, [STRANGER])
    seen = verify_chain([other], roots=world.roots, now=NOW).digests
    expect_error(ForkError, "fork", 0, lambda: compare_with_known(_digests(world), seen))


def test_rollback_is_a_strict_prefix(world: World) -> None:
    """A strict prefix of the known chain is a rollback, named by the first missing position."""
    world.add(world.home, [world.home])
    world.add(world.home, [STRANGER], LinkReason.HANDOVER)
    known = _digests(world)
    expect_error(RollbackError, "rollback", 1, lambda: compare_with_known(known, known[:1]))
    expect_error(RollbackError, "rollback", 2, lambda: compare_with_known(known, known[:2]))


# --- File and wire form -------------------------------------------------------------------------------------


def test_encode_decode_round_trip(world: World) -> None:
    """A chain's array form reads back as the same links, in order."""
    world.add(world.home, [world.home])
    data = encode_chain(world.links)
    assert cbor2.loads(data) == world.links
    assert decode_chain(data) == tuple(world.links)
    assert verify_chain(decode_chain(data), roots=world.roots, now=NOW) == world.verify()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        encode([]),
        encode({}),
        encode([b"a", "b"]),
        encode(b"a"),
        encode([b"a"])[:-1],
        encode([[b"a"]]),
    ],
    ids=["empty", "not-cbor", "empty-array", "map", "text-entry", "bytes", "truncated", "nested"],
)
def test_decode_chain_malformed(data: bytes) -> None:
    """The array form must be a non-empty CBOR array of byte strings."""
    expect_error(MalformedError, "malformed", None, lambda: decode_chain(data))


def test_decode_chain_non_deterministic() -> None:
    """An indefinite-length array is not the chain's form."""
    expect_error(MalformedError, "malformed", None, lambda: decode_chain(b"\x9f\x41a\xff"))


def test_decode_chain_too_many_links() -> None:
    """More than 64 links are refused."""
    expect_error(
        TooLargeError, "too_large", None, lambda: decode_chain(encode([b"a"] * (MAX_CHAIN_LINKS + 1)))
    )
    expect_error(TooLargeError, "too_large", None, lambda: chain_links([b"a"] * (MAX_CHAIN_LINKS + 1)))


def test_decode_chain_too_large() -> None:
    """A chain file over the size limit is refused before it is decoded."""
    data = encode([bytes(MAX_CHAIN_SIZE + 2048)])
    expect_error(TooLargeError, "too_large", None, lambda: decode_chain(data))

"""The invoice chain: link 0 (the invoice) and links n > 0 (rotation, hand-over), issued and verified.

Link 0 is signed by a manufacturer key whose certificate chain (in the x5chain header) leads to a trusted
root; it names the device and its first owners. Link n > 0 is signed by an owner named in link n-1 (its
fingerprint in the kid header) and carries the SHA-256 of link n-1's exact bytes. Verification walks the
chain once, in order, and stops at the first bad link, naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import datetime as dt
from typing import Any

from cryptography import x509
import voluptuous as vol

from . import cose
from .certificates import (
    VerifiedCertificateChain,
    certificate_public_key,
    certificate_to_der,
    load_der_certificate,
    verify_certificate_chain,
)
from .claim_link import claim_signer
from .const import (
    HASH_SIZE,
    MAX_CHAIN_ARRAY_SIZE,
    MAX_CHAIN_LINKS,
    MAX_CHAIN_SIZE,
    MAX_LINK_SIZE,
    MAX_OWNER_KEY_SIZE,
    MAX_OWNERS,
    PROTOCOL_VERSION,
    ContentType,
    Label,
    LinkReason,
)
from .encoding import dumps, loads
from .errors import (
    AutoAddError,
    ForkError,
    IDevIDMismatchError,
    InvalidKeyError,
    MalformedError,
    ManufacturerMismatchError,
    OwnersError,
    PreviousHashError,
    RollbackError,
    SequenceError,
    SignerNotOwnerError,
    TooLargeError,
    UnsupportedAlgorithmError,
    UntrustedManufacturerError,
    WrongDeviceError,
)
from .idevid import DeviceIdentity
from .keys import (
    PrivateKey,
    PublicKey,
    fingerprint,
    public_key_from_bytes,
    public_key_of,
    public_key_to_bytes,
)
from .schema import MapSchema, array, byte_string, cbor_map, exactly, one_of, text, uint, validate

#: How far an invoice's issue time may be ahead of the verifier's clock.
CLOCK_SKEW = dt.timedelta(days=1)
#: An invoice's issue time counts as at most this (year 6325, §6.3), so every uint is a valid datetime.
_LATEST_ISSUE = 2**37
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: The owner count is `check_owners`' rule (invalid_owners); here the link size alone bounds the array.
_OWNERS = array(byte_string(max_size=MAX_OWNER_KEY_SIZE), MAX_LINK_SIZE)
_INVOICE_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_ID): byte_string(HASH_SIZE),
        vol.Required(Label.IDEVID_HASH): byte_string(HASH_SIZE),
        vol.Required(Label.OWNERS): _OWNERS,
        vol.Required(Label.ISSUED_AT): uint,
        vol.Optional(Label.MODEL): text,
        vol.Optional(Label.ORDER_REF): text,
    }
)
_LINK_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_ID): byte_string(HASH_SIZE),
        vol.Required(Label.PREVIOUS): byte_string(HASH_SIZE),
        vol.Required(Label.SEQUENCE): uint,
        vol.Required(Label.OWNERS): _OWNERS,
        vol.Required(Label.REASON): one_of(reason.value for reason in LinkReason),
        vol.Required(Label.ISSUED_AT): uint,
    }
)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a chain stands: what the next link must extend and who may sign it."""

    device_id: bytes
    sequence: int
    digest: bytes
    owners: tuple[PublicKey, ...]
    issued_at: int
    #: Why this link was added (None for the invoice) and the fingerprint of the owner who signed it.
    reason: LinkReason | None = None
    signer: bytes | None = None
    #: The owners' fingerprints, in the link's order (derived once: every verdict compares them).
    owner_fingerprints: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "owner_fingerprints", tuple(fingerprint(owner) for owner in self.owners))

    def is_owner(self, key: PublicKey) -> bool:
        """Whether `key` is one of the current owners."""
        return fingerprint(key) in self.owner_fingerprints


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A chain that verified from its invoice to its head."""

    links: tuple[bytes, ...]
    #: The head after each link: who owned the device at each step, who signed it, and why.
    history: tuple[ChainHead, ...]
    manufacturer: VerifiedCertificateChain | None
    idevid_hash: bytes
    model: str | None
    order_ref: str | None

    @property
    def head(self) -> ChainHead:
        """The chain head: the current owners."""
        return self.history[-1]

    @property
    def digests(self) -> tuple[bytes, ...]:
        """SHA-256 of each link's exact bytes."""
        return tuple(step.digest for step in self.history)

    @property
    def reasons(self) -> tuple[LinkReason, ...]:
        """The reason of each link after the invoice."""
        return tuple(step.reason for step in self.history[1:] if step.reason is not None)

    @property
    def device_id(self) -> bytes:
        """The device this chain is about."""
        return self.head.device_id


# --- Issuing --------------------------------------------------------------------------------------------


def _owner_list(owners: Sequence[PublicKey], *, unassigned: bool = False) -> list[bytes]:
    encoded = [public_key_to_bytes(owner) for owner in owners]
    check_owners(encoded, index=None, unassigned=unassigned)
    return encoded


def issue_invoice(
    *,
    signer: PrivateKey,
    signer_chain: Sequence[x509.Certificate],
    device_id: bytes,
    idevid_hash: bytes,
    owners: Sequence[PublicKey],
    issued_at: int,
    model: str | None = None,
    order_ref: str | None = None,
) -> bytes:
    """Sign link 0: the manufacturer's invoice naming the device and its first owners; no owners is
    unassigned stock, claimed later with a claim code (§14.9)."""
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: device_id,
        Label.IDEVID_HASH: idevid_hash,
        Label.OWNERS: _owner_list(owners, unassigned=True),
        Label.ISSUED_AT: issued_at,
    }
    if model is not None:
        payload[Label.MODEL] = model
    if order_ref is not None:
        payload[Label.ORDER_REF] = order_ref
    return cose.sign(
        payload,
        ContentType.INVOICE,
        signer,
        x5chain=tuple(certificate_to_der(cert) for cert in signer_chain),
    )


def issue_link(
    *,
    signer: PrivateKey,
    head: ChainHead,
    owners: Sequence[PublicKey],
    reason: LinkReason,
    issued_at: int,
) -> bytes:
    """Sign link n > 0 extending `head`; `signer` must be one of the head's owners."""
    if not head.is_owner(public_key_of(signer)):
        raise SignerNotOwnerError("the signing key is not an owner of the chain head")
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: head.device_id,
        Label.PREVIOUS: head.digest,
        Label.SEQUENCE: head.sequence + 1,
        Label.OWNERS: _owner_list(owners),
        Label.REASON: reason.value,
        Label.ISSUED_AT: issued_at,
    }
    return cose.sign(payload, ContentType.LINK, signer, kid=fingerprint(public_key_of(signer)))


# --- Verifying ------------------------------------------------------------------------------------------


def check_owners(
    encoded: Sequence[bytes], *, index: int | None, unassigned: bool = False
) -> tuple[PublicKey, ...]:
    """I10: the owner list as keys; empty only where `unassigned` (an invoice)."""
    if not encoded and not unassigned:
        raise OwnersError("the owner list is empty", index=index)
    if len(encoded) > MAX_OWNERS:
        raise OwnersError(f"{len(encoded)} owners; at most {MAX_OWNERS} are allowed", index=index)
    if len(set(encoded)) != len(encoded):
        raise OwnersError("the owner list names a key twice", index=index)
    try:
        return tuple(public_key_from_bytes(owner) for owner in encoded)
    except InvalidKeyError as err:
        raise OwnersError(f"an owner key is not usable: {err.detail}", index=index) from err
    except UnsupportedAlgorithmError as err:
        err.index = index
        raise


def _parse_link(data: Any, index: int, content_type: ContentType) -> cose.SignedObject:
    if not isinstance(data, bytes):
        raise MalformedError("a chain link is not a byte string", index=index)
    try:
        return cose.parse(data, content_type, max_size=MAX_LINK_SIZE, what=f"link {index}")
    except AutoAddError as err:
        err.index = index
        raise


def _payload(obj: cose.SignedObject, schema: MapSchema, index: int) -> dict[int, Any]:
    try:
        return validate(
            schema, loads(obj.payload, what=f"link {index}", max_size=MAX_LINK_SIZE), what=f"link {index}"
        )
    except AutoAddError as err:
        err.index = index
        raise


def read_invoice(
    data: bytes,
    *,
    roots: Sequence[x509.Certificate] | None,
    now: dt.datetime,
    device: DeviceIdentity | None = None,
) -> VerifiedChain:
    """Verify link 0 alone.

    With `roots`, the signer's certificate chain must lead to one of them (the registrar's view). Without,
    the invoice is taken as provisioned, its signature checked against its own x5chain (the device's view
    of the invoice it was shipped with). With `device`, the invoice must name that IDevID and come from
    the same manufacturer root.
    """
    obj = _parse_link(data, 0, ContentType.INVOICE)
    if not obj.x5chain:
        raise UntrustedManufacturerError("the invoice carries no signer certificate (x5chain)", index=0)
    try:
        certs = [
            load_der_certificate(der, what=f"invoice signer certificate {i}")
            for i, der in enumerate(obj.x5chain)
        ]
        signer_key = certificate_public_key(certs[0])
        cose.verify(obj, signer_key, what="the invoice")
    except AutoAddError as err:
        err.index = 0
        raise
    fields = _payload(obj, _INVOICE_SCHEMA, 0)
    issued_at = fields[Label.ISSUED_AT]
    manufacturer: VerifiedCertificateChain | None = None
    if roots is not None:
        when = issue_time(issued_at)
        # `now + CLOCK_SKEW` would overflow for a clock set near year 9999; `when` is at most year 6325.
        if when - CLOCK_SKEW > now:
            raise UntrustedManufacturerError(
                f"the invoice is issued in the future ({when:%Y-%m-%d})", index=0
            )
        try:
            manufacturer = verify_certificate_chain(certs, roots, when, what="the invoice signer")
        except AutoAddError as err:
            err.index = 0
            raise
    owners = check_owners(fields[Label.OWNERS], index=0, unassigned=True)
    if device is not None:
        if fields[Label.DEVICE_ID] != device.device_id:
            raise IDevIDMismatchError("the invoice names another device identifier", index=0)
        if fields[Label.IDEVID_HASH] != device.certificate_hash:
            raise IDevIDMismatchError("the invoice names another IDevID certificate", index=0)
        if manufacturer is not None and manufacturer.root_fingerprint != device.issuer.root_fingerprint:
            raise ManufacturerMismatchError(
                "the invoice and the IDevID chain to different manufacturer roots", index=0
            )
    head = ChainHead(
        device_id=fields[Label.DEVICE_ID],
        sequence=0,
        digest=obj.digest,
        owners=owners,
        issued_at=issued_at,
    )
    return VerifiedChain(
        links=(data,),
        history=(head,),
        manufacturer=manufacturer,
        idevid_hash=fields[Label.IDEVID_HASH],
        model=fields.get(Label.MODEL),
        order_ref=fields.get(Label.ORDER_REF),
    )


def issue_time(issued_at: int) -> dt.datetime:
    """An invoice's `issued_at` (a uint, seconds since 1970) as the UTC time its signer chain is checked at.

    Built by adding to the epoch, not with `fromtimestamp`, which depends on the platform's time_t and
    can fail with OverflowError or OSError; the clamp keeps every uint within datetime's range.
    """
    return _EPOCH + dt.timedelta(seconds=min(max(issued_at, 0), _LATEST_ISSUE))


def read_link(data: bytes, head: ChainHead, idevid_hash: bytes | None = None) -> tuple[ChainHead, LinkReason]:
    """Verify one link n > 0 against the head it must extend; return the new head. A head with no owners
    (unassigned stock) is extended only by the device's claim link, checked against `idevid_hash`."""
    index = head.sequence + 1
    obj = _parse_link(data, index, ContentType.LINK)
    if not head.owners:
        signer: PublicKey | None = claim_signer(obj, head, idevid_hash, index)
    else:
        signer = next((owner for owner in head.owners if obj.kid == fingerprint(owner)), None)
    if signer is None:
        raise SignerNotOwnerError(
            "the link's signer (kid) is not an owner named by the previous link", index=index
        )
    try:
        cose.verify(obj, signer, what=f"link {index}")
    except AutoAddError as err:
        err.index = index
        raise
    fields = _payload(obj, _LINK_SCHEMA, index)
    if fields[Label.DEVICE_ID] != head.device_id:
        raise WrongDeviceError("the link is for another device", index=index)
    if fields[Label.SEQUENCE] != index:
        raise SequenceError("the link's sequence number is not its position in the chain", index=index)
    if fields[Label.PREVIOUS] != head.digest:
        raise PreviousHashError("the link does not carry the hash of the link before it", index=index)
    reason = LinkReason(fields[Label.REASON])
    if (reason is LinkReason.CLAIM) != (not head.owners):
        raise MalformedError("reason claim is for link 1 of a chain with no owners, and only it", index=index)
    owners = check_owners(fields[Label.OWNERS], index=index)
    new_head = ChainHead(
        device_id=head.device_id,
        sequence=index,
        digest=obj.digest,
        owners=owners,
        issued_at=fields[Label.ISSUED_AT],
        reason=reason,
        signer=fingerprint(signer),
    )
    return new_head, reason


def extend(chain: VerifiedChain, links: Sequence[bytes]) -> VerifiedChain:
    """Verify `links` as the continuation of a verified chain; return the longer chain."""
    if len(chain.links) + len(links) > MAX_CHAIN_LINKS:
        raise TooLargeError(f"a chain holds at most {MAX_CHAIN_LINKS} links")
    if (
        sum(map(len, chain.links)) + sum(len(link) for link in links if isinstance(link, bytes))
        > MAX_CHAIN_SIZE
    ):
        raise TooLargeError(f"a chain holds at most {MAX_CHAIN_SIZE} bytes")
    history = list(chain.history)
    for link in links:
        head, _ = read_link(link, history[-1], chain.idevid_hash)
        history.append(head)
    return VerifiedChain(
        links=(*chain.links, *links),
        history=tuple(history),
        manufacturer=chain.manufacturer,
        idevid_hash=chain.idevid_hash,
        model=chain.model,
        order_ref=chain.order_ref,
    )


def verify_chain(
    links: Sequence[bytes],
    *,
    roots: Sequence[x509.Certificate] | None,
    now: dt.datetime,
    device: DeviceIdentity | None = None,
) -> VerifiedChain:
    """Verify a whole chain, link 0 first: return its head and owners, or raise at the first bad link."""
    if not links:
        raise MalformedError("the chain is empty")
    if len(links) > MAX_CHAIN_LINKS:
        raise TooLargeError(f"the chain has {len(links)} links; at most {MAX_CHAIN_LINKS} are allowed")
    if sum(len(link) for link in links if isinstance(link, bytes)) > MAX_CHAIN_SIZE:
        raise TooLargeError(f"the chain is over {MAX_CHAIN_SIZE} bytes")
    first = read_invoice(links[0], roots=roots, now=now, device=device)
    return extend(first, links[1:])


# --- Chains as files and wire values --------------------------------------------------------------------


def encode_chain(links: Sequence[bytes]) -> bytes:
    """A chain as one CBOR array of byte strings (the transfer and file form)."""
    return dumps(list(links))


def decode_chain(data: bytes) -> tuple[bytes, ...]:
    """Read the array form back; link contents are checked by `verify_chain`."""
    value = loads(data, what="chain", max_size=MAX_CHAIN_ARRAY_SIZE)
    return chain_links(value)


def chain_links(value: Any) -> tuple[bytes, ...]:
    """Check a decoded value is a non-empty array of byte strings within the limits."""
    if not isinstance(value, list) or not value or not all(isinstance(link, bytes) for link in value):
        raise MalformedError("a chain is a non-empty array of byte strings")
    if len(value) > MAX_CHAIN_LINKS:
        raise TooLargeError(f"the chain has {len(value)} links; at most {MAX_CHAIN_LINKS} are allowed")
    return tuple(value)


# --- Fork and rollback ----------------------------------------------------------------------------------


def compare_with_known(known: Sequence[bytes], seen: Sequence[bytes]) -> None:
    """Compare a chain's link digests with the ones already known for the device.

    Equal or extending is fine. A strict prefix of the known chain is a rollback; a different link at a
    position both have is a fork, named by the first position where they differ.
    """
    for index, (old, new) in enumerate(zip(known, seen, strict=False)):
        if old != new:
            raise ForkError("a different link extends the same parent as a link already seen", index=index)
    if len(seen) < len(known):
        raise RollbackError(
            f"the chain has {len(seen)} links but {len(known)} were already seen: it was rolled back",
            index=len(seen),
        )

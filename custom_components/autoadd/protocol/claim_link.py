"""The claim link: link 1 of a chain whose invoice names no owner, signed by the device itself (§7.2a).

Unassigned stock has an invoice with an empty owner list: nobody may extend it, except the device, once,
after a claim code run (§14.9). Its IDevID key signs link 1 naming the first owners; the link carries the
IDevID certificate in x5chain, so that anyone holding the chain checks the signature against the
invoice's `idevid_hash` without asking the device.
"""

from __future__ import annotations

from collections.abc import Sequence
import hashlib
from typing import TYPE_CHECKING, Any

from . import cose
from .certificates import certificate_public_key, certificate_to_der, load_der_certificate
from .const import PROTOCOL_VERSION, ContentType, Label, LinkReason
from .errors import AutoAddError, SignerNotOwnerError
from .keys import PrivateKey, PublicKey, fingerprint, public_key_of

if TYPE_CHECKING:
    from cryptography import x509

    from .chain import ChainHead


def claim_signer(obj: cose.SignedObject, head: ChainHead, idevid_hash: bytes | None, index: int) -> PublicKey:
    """CL1-CL3: the key that must have signed link 1 of unassigned stock, the device's IDevID key."""
    if len(obj.x5chain) != 1 or idevid_hash is None or hashlib.sha256(obj.x5chain[0]).digest() != idevid_hash:
        raise SignerNotOwnerError(
            "link 1 of a chain with no owners must carry the IDevID certificate the invoice names",
            index=index,
        )
    try:
        certificate = load_der_certificate(obj.x5chain[0], what="the claim link's certificate")
        key = certificate_public_key(certificate)
    except AutoAddError as err:
        err.index = index
        raise
    if obj.kid != head.device_id or fingerprint(key) != head.device_id:
        raise SignerNotOwnerError("the claim link is not signed by the device's own key", index=index)
    return key


def issue_claim_link(
    *,
    idevid_key: PrivateKey,
    idevid_certificate: x509.Certificate,
    head: ChainHead,
    owners: Sequence[bytes],
    issued_at: int,
) -> bytes:
    """The device signs link 1 of its unassigned chain, naming `owners` (SPKI DER, already checked)."""
    if head.owners or head.sequence != 0:
        raise SignerNotOwnerError("only a chain whose invoice names no owner takes a claim link")
    if fingerprint(public_key_of(idevid_key)) != head.device_id:
        raise SignerNotOwnerError("the claim link must be signed by the device's own key")
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: head.device_id,
        Label.PREVIOUS: head.digest,
        Label.SEQUENCE: 1,
        Label.OWNERS: list(owners),
        Label.REASON: LinkReason.CLAIM.value,
        Label.ISSUED_AT: issued_at,
    }
    return cose.sign(
        payload,
        ContentType.LINK,
        idevid_key,
        kid=head.device_id,
        x5chain=(certificate_to_der(idevid_certificate),),
    )

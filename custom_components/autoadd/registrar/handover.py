"""Handing a device over: signed and stored before it is sent, taken only once a proof shows it;
cancelled by a link that keeps this home the owner, confirmed by the device's receipt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.chain import VerifiedChain, encode_chain, issue_link, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PublicKey, fingerprint

from . import machine
from .machine import digest, held_links
from .ports import PersistError, StepError
from .record import ChangeKind, DeviceRecord, PendingChange, Phase

if TYPE_CHECKING:
    from .core import Registrar

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HandOver:
    """A signed hand-over: whether a proof showed the device took it, and the transfer file."""

    device_id: str
    delivered: bool
    transfer: bytes


def held_chain(registrar: Registrar, record: DeviceRecord) -> VerifiedChain:
    """The chain this home would present to the device, verified (no roots: it was verified on arrival)."""
    return verify_chain(held_links(record), roots=None, now=registrar.clock())


def extend_base(registrar: Registrar, record: DeviceRecord) -> VerifiedChain:
    """The chain a pending hand-over extends: everything this home holds but the hand-over link."""
    return verify_chain(held_links(record)[:-1], roots=None, now=registrar.clock())


async def hand_over(
    registrar: Registrar, device_id: str, new_owner: PublicKey | Sequence[PublicKey]
) -> HandOver:
    """Sign a hand-over of a device to a new owner, store it, and deliver it if the device answers.
    `new_owner` is the keys the new owner's home key string names: its home key, and its recovery key
    if it has one (AAHK2, §5); the link names them all."""
    new_owners = [new_owner] if not isinstance(new_owner, Sequence) else list(new_owner)
    record = registrar.state.devices.get(device_id)
    if record is not None and record.phase is Phase.KEY_LOST:
        raise StepError("key_lost")
    if record is None or record.phase not in (Phase.ONBOARDED, Phase.CHANGING_OWNER):
        raise StepError("unknown_device")
    if record.change is not None and record.change.kind is not ChangeKind.ROTATE:
        raise StepError("handover_in_progress")
    if any(fingerprint(key) in registrar.keys.with_recovery() for key in new_owners):
        raise StepError("own_key")  # this home's recovery key too: a restore would take the device back
    chain = held_chain(registrar, record)
    signer = registrar.keys.signer_for(chain.head.owners)
    if signer is None:
        raise StepError("not_owner")
    link = issue_link(
        signer=signer,
        head=chain.head,
        owners=new_owners,
        reason=LinkReason.HANDOVER,
        issued_at=registrar.timestamp(),
    )
    before = record.change
    change = PendingChange(
        kind=ChangeKind.HANDOVER,
        links=[*(before.links if before else []), link],
        at=registrar.now(),
        new_owner=fingerprint(new_owners[0]).hex(),
        rotation=before.rotation if before else False,
    )
    try:
        await registrar.commit(
            lambda: machine.begin_change(registrar.state.devices[device_id], change), devices=[device_id]
        )
    except PersistError as err:
        raise StepError("storage_failed") from err
    record = registrar.state.devices[device_id]
    registrar.owner.clear_issue("change_dropped", device_id)  # started again
    registrar.tell(record, [("handover_signed", {"new_owner": change.new_owner})])
    registrar.changed(device_id)
    transfer = encode_chain(held_links(record))
    await deliver_now(registrar, device_id)
    delivered = registrar.state.devices[device_id].phase is Phase.HANDED_OVER
    return HandOver(device_id, delivered, transfer)


async def deliver_now(registrar: Registrar, device_id: str) -> None:
    """Try the device at once and wait for the outcome (failures are recorded as for any attempt)."""
    record = registrar.state.devices.get(device_id)
    address = record.address or record.hint if record else None
    if address is not None:
        from .session import Purpose  # noqa: PLC0415 - the session imports this module

        await registrar.attempt(device_id, address, Purpose.DELIVER)


def transfer_file(registrar: Registrar, device_id: str) -> bytes:
    """The transfer file of a pending hand-over: the whole chain up to the hand-over link."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.change is None or record.change.kind is not ChangeKind.HANDOVER:
        raise StepError("no_handover")
    return encode_chain(held_links(record))


async def cancel_hand_over(registrar: Registrar, device_id: str) -> bool:
    """Replace a pending hand-over by a link that keeps this home the owner; True once a receipt shows
    the device took it (only then is the transfer file worthless)."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.change is None or record.change.kind is not ChangeKind.HANDOVER:
        raise StepError("no_handover")
    base = extend_base(registrar, record)
    signer = registrar.keys.signer_for(base.head.owners)
    if signer is None:
        raise StepError("not_owner")
    old = record.change
    keep = issue_link(
        signer=signer,
        head=base.head,
        owners=list(base.head.owners),
        reason=LinkReason.ROTATE,
        issued_at=registrar.timestamp(),
    )
    change = PendingChange(
        kind=ChangeKind.CANCEL,
        links=[*old.links[:-1], keep],
        at=registrar.now(),
        superseded=[*old.superseded, digest(old.links[-1]).hex()],
        rotation=old.rotation,
    )
    try:
        await registrar.commit(
            lambda: machine.begin_change(registrar.state.devices[device_id], change), devices=[device_id]
        )
    except PersistError as err:
        raise StepError("storage_failed") from err
    registrar.tell(registrar.state.devices[device_id], [("handover_cancel_signed", {})])
    registrar.changed(device_id)
    await deliver_now(registrar, device_id)
    record = registrar.state.devices[device_id]
    if record.phase is Phase.HANDED_OVER:
        raise StepError("already_taken")
    return record.change is None

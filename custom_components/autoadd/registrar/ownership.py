"""Taking a device in from another owner (approval, transfer file), removing and blocking, and what
outlives removing the integration. Each owner decision moves the record through machine.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from custom_components.autoadd.protocol.chain import decode_chain, verify_chain
from custom_components.autoadd.protocol.errors import NotOwnerError

from . import failures, machine
from .machine import previous_owner
from .ports import StepError
from .record import Approval, DeviceRecord, Phase
from .session import Purpose
from .state import RegistrarState

if TYPE_CHECKING:
    from .core import Registrar


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer file read and verified, waiting for the owner's confirmation."""

    device_id: str
    manufacturer: str
    model: str
    #: The invoice's order reference (the manufacturer's words): the file carries no serial number,
    #: which only the device's IDevID certificate has.
    order_ref: str
    previous_owner: bytes
    head: bytes
    links: tuple[bytes, ...]


# --- Taking a device in (incoming) ----------------------------------------------------------------------


def read_transfer(registrar: Registrar, data: bytes) -> Transfer:
    """Verify a transfer file against the trusted manufacturers: it must hand the device to this home."""
    links = decode_chain(data)
    chain = verify_chain(links, roots=registrar.roots, now=registrar.clock())
    ours = registrar.keys.fingerprints()
    if not ours & set(chain.head.owner_fingerprints):
        raise NotOwnerError("the transfer file does not hand the device to this home")
    previous = previous_owner(chain, ours)
    if previous is None:
        raise StepError("not_a_handover")
    if registrar.keys.signer_for(chain.head.owners) is None:
        raise StepError("key_gone")
    known = registrar.state.devices.get(chain.device_id.hex())
    if known is not None and (known.is_member or known.phase is Phase.BLOCKED):
        raise StepError("already_known")
    assert chain.manufacturer is not None
    return Transfer(
        device_id=chain.device_id.hex(),
        manufacturer=chain.manufacturer.manufacturer,
        model=chain.model or "AutoAdd device",
        order_ref=chain.order_ref or "",
        previous_owner=previous,
        head=chain.head.digest,
        links=tuple(links),
    )


def accept_transfer(registrar: Registrar, transfer: Transfer) -> None:
    """The owner accepts a transfer file: the device is onboarded with it when it shows up."""
    record = registrar.record(transfer.device_id)
    if record.change is not None and len(transfer.links) > len(record.chain):
        record.change = None  # a rotation link on an older head; the file's head gets its own
    record.manufacturer = record.manufacturer or transfer.manufacturer
    record.model = record.model or transfer.model
    approval = Approval(
        head=transfer.head.hex(),
        previous_owner=transfer.previous_owner.hex(),
        at=registrar.now(),
        transfer=list(transfer.links),
    )
    registrar.tell(record, machine.accept_transfer(record, approval))
    registrar.owner.clear_issue("approve", transfer.device_id)
    registrar.changed(transfer.device_id)
    registrar.try_now(transfer.device_id)


def approve(registrar: Registrar, device_id: str) -> None:
    """The owner accepts a device handed to this home; it is onboarded now."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.phase is not Phase.AWAITING_APPROVAL:
        raise StepError("no_longer_waiting")
    registrar.tell(record, machine.approve(record, registrar.now()))
    registrar.owner.clear_issue("approve", device_id)
    registrar.changed(device_id)
    registrar.try_now(device_id)


def reject(registrar: Registrar, device_id: str) -> None:
    """The owner rejects a device handed to this home; not asked again until its chain changes."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.phase is not Phase.AWAITING_APPROVAL:
        raise StepError("no_longer_waiting")
    registrar.tell(record, machine.reject(record, registrar.now()))
    registrar.owner.clear_issue("approve", device_id)
    registrar.changed(device_id)


def decide_clone(registrar: Registrar, device_id: str, *, follow_new: bool) -> None:
    """The owner chose where a device whose IDevID answered at two addresses is followed from now on."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.clone is None:
        raise StepError("no_longer_waiting")
    registrar.tell(record, machine.on_clone_decided(record, follow_new=follow_new, now=registrar.now()))
    registrar.owner.clear_issue("clone", device_id)
    registrar.changed(device_id)
    registrar.try_now(device_id, Purpose.CHECK)


# --- Removing, blocking ----------------------------------------------------------------------------------


def remove(registrar: Registrar, device_id: str, *, by_registry: bool = False) -> None:
    """The owner removed the device: it leaves the registry (unless the registry itself is removing it);
    chain and pending links stay stored."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.phase in (Phase.REMOVED, Phase.BLOCKED, Phase.SEEN, Phase.HANDED_OVER):
        return
    registrar.tell(record, machine.remove(record))
    if not by_registry:
        registrar.owner.device_left(record)
    registrar.changed(device_id)


def block(registrar: Registrar, device_id: str, reason: str) -> None:
    """Never onboard or talk to this device identifier again (until unblocked)."""
    record = registrar.record(device_id)
    registrar.tell(record, machine.block(record, reason))
    if failures.COUNTERFEIT in record.flags:
        failures.raise_counterfeit(registrar)  # dealt with: no longer named
    registrar.changed(device_id)


def unblock(registrar: Registrar, device_id: str) -> None:
    """Lift a block."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.phase is not Phase.BLOCKED:
        return
    registrar.tell(record, machine.unblock(record))
    if failures.COUNTERFEIT in record.flags:
        failures.raise_counterfeit(registrar)  # named again
    registrar.changed(device_id)


# --- Removing the integration ------------------------------------------------------------------------------


def reachability(state: RegistrarState) -> dict[str, dict[str, Any]]:
    """What must outlive the registrar store to reach each device (kept with the key store on removal):
    records with links this home signed and has not seen confirmed, an accepted transfer file, and every
    chain this home may own, so that a rotation after the entry is added again still moves those devices
    before it destroys the key they trust."""
    return {
        device_id: {**record.as_dict(), "history": []}
        for device_id, record in state.devices.items()
        if record.change is not None
        or (record.approval is not None and record.approval.transfer)
        or (record.chain and record.phase is not Phase.HANDED_OVER)
    }


def restore_kept(registrar: Registrar) -> bool:
    """At set-up: take back what a removed entry left with the key store. True if anything was."""
    kept = registrar.keys.kept
    for device_id, data in kept.items():
        if device_id in registrar.state.devices:
            continue
        record = DeviceRecord.from_dict(data)
        if record.phase is Phase.BLOCKED:
            record.blocked_from = Phase.SEEN  # still blocked: the owner's block outlives the entry
        else:
            record.phase = Phase.APPROVED if record.approval and record.approval.transfer else Phase.SEEN
        record.onboarded_at = None
        record.history = [{"at": registrar.now(), "event": "kept_across_removal"}]
        registrar.state.devices[device_id] = record
    return bool(kept)

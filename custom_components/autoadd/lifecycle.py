"""Ownership over time: rotating the home key, handing a device over, taking one in, blocking one.

Every step that signs something persists it before anything is sent, so a crash or restart at any moment
leaves every device reachable with the keys on disk:

    rotation   1. the new key is staged in the key store      (crash: the stage is dropped at start)
               2. a `rotate` link per device is stored        (crash: the rotation is resumed at start)
               3. the new key becomes current, the old one is retired (kept or destroyed, as chosen)
               4. devices get their link in the next acceptance note; online ones at once
    hand-over  the `handover` link is stored, then pushed; the device leaves this home once it holds it
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .protocol.chain import decode_chain, encode_chain, issue_link, verify_chain
from .protocol.const import Label, LinkReason
from .protocol.errors import AutoAddError, NotOwnerError
from .protocol.keys import PublicKey, fingerprint
from .registrar import Candidate, Registrar, link_digest, ownership_origin
from .storage import HomeKey, RetiredKey, b64, unb64

_LOGGER = logging.getLogger(__name__)


class LifecycleError(Exception):
    """A lifecycle step that cannot be done; `reason` is the translation key shown to the owner."""

    def __init__(self, reason: str) -> None:
        """Keep the translation key."""
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """How far a rotation is: devices that hold the new key's link, and devices still to get it."""

    moved: int
    pending: int


@dataclass(frozen=True, slots=True)
class HandOver:
    """A signed hand-over: whether the device took it already, and the transfer file for the buyer."""

    device_id: str
    delivered: bool
    transfer: bytes


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer file read and verified, waiting for the owner's confirmation."""

    device_id: str
    manufacturer: str
    model: str
    previous_owner: bytes
    head: bytes
    links: tuple[bytes, ...]


def _now() -> int:
    return int(dt_util.utcnow().timestamp())


# --- Rotation ---------------------------------------------------------------------------------------------


def rotation_progress(registrar: Registrar) -> RotationProgress:
    """Devices moved to the current key, and devices that still have to get their rotation link."""
    devices = registrar.store.data.devices.values()
    pending = sum(1 for record in devices if record.pending_links)
    return RotationProgress(moved=len(registrar.store.data.devices) - pending, pending=pending)


async def async_rotate_home_key(registrar: Registrar, *, destroy_old: bool) -> RotationProgress:
    """Make a new home key and sign, for every device this home owns, a link moving it to the new key."""
    keys = registrar.keys
    if keys.staged is not None:
        raise LifecycleError("rotation_in_progress")
    old = keys.current
    new = HomeKey.generate(old.key_type)
    keys.staged = new
    await registrar.key_store.async_save(keys)  # step 1: the new key is on disk before it is named anywhere
    data = registrar.store.data
    for record in data.devices.values():
        chain = registrar.chain_of(record)
        signer = registrar.own_signer(chain)
        if signer is None:
            continue
        owners = [
            new.key.public_key() if fingerprint(owner) == fingerprint(signer.public_key()) else owner
            for owner in chain.head.owners
        ]
        link = issue_link(
            signer=signer, head=chain.head, owners=owners, reason=LinkReason.ROTATE, issued_at=_now()
        )
        record.pending_links.append(b64(link))
    data.rotation = {
        "old": old.fingerprint.hex(),
        "new": new.fingerprint.hex(),
        "destroy_old": destroy_old,
        "started_at": dt_util.utcnow().isoformat(),
    }
    await registrar.store.async_save()  # step 2: every link is on disk before anything is sent
    await async_finish_rotation(registrar)
    for record in list(data.devices.values()):
        if record.pending_links:
            registrar.record_event(record.device_id, "rotation_signed", new_key=new.fingerprint.hex())
            candidate = Candidate(record.device_id, record.host, record.port, claimed=False, txt={})
            registrar.async_candidate(candidate, force=True)
    return rotation_progress(registrar)


async def async_finish_rotation(registrar: Registrar) -> None:
    """Step 3: the staged key becomes current; the old one is retired, with or without its private key."""
    keys, rotation = registrar.keys, registrar.store.data.rotation
    assert keys.staged is not None
    assert rotation is not None
    old = keys.current
    keys.retired.append(
        RetiredKey(
            fingerprint=old.fingerprint.hex(),
            key_type=old.key_type,
            created_at=old.created_at.isoformat(),
            retired_at=dt_util.utcnow().isoformat(),
            key=None if rotation["destroy_old"] else old.key,
        )
    )
    keys.current, keys.staged = keys.staged, None
    await registrar.key_store.async_save(keys)
    ir.async_delete_issue(registrar.hass, DOMAIN, "home_key_old")
    _LOGGER.info("Home key rotated; the old key was %s", "destroyed" if rotation["destroy_old"] else "kept")
    if not any(record.pending_links for record in registrar.store.data.devices.values()):
        registrar.store.data.rotation = None
        await registrar.async_destroy_retired_keys()


async def async_resume_rotation(registrar: Registrar) -> None:
    """At start: finish a rotation whose links are stored, or drop a staged key whose links never were."""
    keys, rotation = registrar.keys, registrar.store.data.rotation
    if keys.staged is None:
        if rotation is not None and not any(r.pending_links for r in registrar.store.data.devices.values()):
            registrar.store.data.rotation = None  # every device moved before the restart: finish the cleanup
            await registrar.async_destroy_retired_keys()
        return
    if rotation is not None and rotation["new"] == keys.staged.fingerprint.hex():
        _LOGGER.warning("Finishing a home key rotation interrupted by a restart")
        await async_finish_rotation(registrar)
        return
    _LOGGER.warning("Dropping a new home key from a rotation interrupted before any link was signed")
    keys.staged = None
    await registrar.key_store.async_save(keys)


# --- Hand-over (outgoing) -------------------------------------------------------------------------------


async def async_hand_over(registrar: Registrar, device_id: str, new_owner: PublicKey) -> HandOver:
    """Sign a hand-over of a device to a new owner, store it, and push it if the device answers."""
    record = registrar.store.data.devices.get(device_id)
    if record is None:
        raise LifecycleError("unknown_device")
    if record.handover is not None:
        raise LifecycleError("handover_in_progress")
    chain = registrar.chain_of(record)
    signer = registrar.own_signer(chain)
    if signer is None:
        raise LifecycleError("not_owner")
    if chain.head.is_owner(new_owner) and len(chain.head.owners) == 1:
        raise LifecycleError("same_owner")
    link = issue_link(
        signer=signer, head=chain.head, owners=[new_owner], reason=LinkReason.HANDOVER, issued_at=_now()
    )
    record.handover = {
        "link": b64(link),
        "new_owner": fingerprint(new_owner).hex(),
        "at": dt_util.utcnow().isoformat(),
    }
    await registrar.store.async_save()
    registrar.record_event(device_id, "handover_signed", new_owner=fingerprint(new_owner).hex())
    transfer = encode_chain([*chain.links, link])
    try:
        delivered = await registrar.async_push(record, [*record.unconfirmed, link])
    except AutoAddError as err:
        _LOGGER.warning("Device %s refused the hand-over link: %s", device_id[:12], err)
        delivered = False
    if delivered:
        await registrar.async_finish_hand_over(device_id, confirmed=True)
    return HandOver(device_id, delivered, transfer)


def transfer_file(registrar: Registrar, device_id: str) -> bytes:
    """The transfer file of a signed hand-over: the whole chain up to the hand-over link."""
    record = registrar.store.data.devices.get(device_id)
    if record is None or record.handover is None:
        raise LifecycleError("no_handover")
    return encode_chain([*record.links, *record.unconfirmed, unb64(record.handover["link"])])


async def async_cancel_hand_over(registrar: Registrar, device_id: str) -> None:
    """Cancel a hand-over the device has not taken: the device gets a link that keeps this home the owner,
    after which the hand-over link no longer extends its chain. Needs the device to answer."""
    record = registrar.store.data.devices.get(device_id)
    if record is None or record.handover is None:
        raise LifecycleError("no_handover")
    chain = registrar.chain_of(record)
    handover_digest = link_digest(unb64(record.handover["link"]))
    try:
        info = await registrar.client(record.host, record.port).info()
    except AutoAddError as err:
        raise LifecycleError("device_unreachable") from err
    if info[Label.CHAIN_HEAD] == handover_digest:
        await registrar.async_finish_hand_over(device_id, confirmed=True)
        raise LifecycleError("already_taken")
    signer = registrar.own_signer(chain)
    assert signer is not None
    keep = issue_link(
        signer=signer,
        head=chain.head,
        owners=list(chain.head.owners),
        reason=LinkReason.ROTATE,
        issued_at=_now(),
    )
    record.pending_links.append(b64(keep))
    await registrar.store.async_save()
    try:
        delivered = await registrar.async_push(record, record.unconfirmed)
    except AutoAddError as err:
        raise LifecycleError("already_taken") from err
    if not delivered:
        record.pending_links.remove(b64(keep))  # not delivered: the hand-over stays as it was
        await registrar.store.async_save()
        raise LifecycleError("device_unreachable")
    record.chain.extend(record.pending_links)
    record.pending_links.clear()
    record.handover = None
    registrar.store.async_schedule_save()
    registrar.record_event(device_id, "handover_cancelled")


# --- Taking a device in (incoming) ----------------------------------------------------------------------


def read_transfer(registrar: Registrar, data: bytes) -> Transfer:
    """Verify a transfer file against the trusted manufacturers: it must hand the device to this home."""
    links = decode_chain(data)
    chain = verify_chain(links, roots=registrar.roots, now=dt_util.utcnow())
    ours = registrar.keys.fingerprints()
    if not ours & set(chain.head.owner_fingerprints):
        raise NotOwnerError("the transfer file does not hand the device to this home")
    previous = ownership_origin(chain, ours)
    if previous is None:
        raise LifecycleError("not_a_handover")
    assert chain.manufacturer is not None
    return Transfer(
        device_id=chain.device_id.hex(),
        manufacturer=chain.manufacturer.manufacturer,
        model=chain.model or "AutoAdd device",
        previous_owner=previous,
        head=chain.head.digest,
        links=tuple(links),
    )


def accept_transfer(registrar: Registrar, transfer: Transfer) -> None:
    """The owner accepts a transfer file: the device is onboarded with it when it shows up."""
    data = registrar.store.data
    data.approvals[transfer.device_id] = {
        "head": transfer.head.hex(),
        "links": [b64(link) for link in transfer.links],
        "previous_owner": transfer.previous_owner.hex(),
    }
    data.rejected.pop(transfer.device_id, None)
    registrar.store.async_schedule_save()
    registrar.record_event(
        transfer.device_id, "transfer_accepted", previous_owner=transfer.previous_owner.hex()
    )
    waiting = data.awaiting.pop(transfer.device_id, None)
    if waiting is not None:
        ir.async_delete_issue(registrar.hass, DOMAIN, f"approve_{transfer.device_id}")  # answered by the file
        candidate = Candidate(transfer.device_id, waiting["host"], waiting["port"], claimed=False, txt={})
        registrar.async_candidate(candidate, force=True)


# --- Blocking ---------------------------------------------------------------------------------------------


def block_device(registrar: Registrar, device_id: str, reason: str) -> None:
    """Never onboard or talk to this device identifier again (until unblocked)."""
    registrar.store.data.blocked[device_id] = {"at": dt_util.utcnow().isoformat(), "reason": reason}
    record = registrar.store.data.devices.get(device_id)
    if record is not None and "blocked" not in record.flags:
        record.flags.append("blocked")
    registrar.store.async_schedule_save()
    registrar.record_event(device_id, "blocked", reason=reason)


def unblock_device(registrar: Registrar, device_id: str) -> None:
    """Lift a block."""
    registrar.store.data.blocked.pop(device_id, None)
    record = registrar.store.data.devices.get(device_id)
    if record is not None and "blocked" in record.flags:
        record.flags.remove("blocked")
    registrar.store.async_schedule_save()
    registrar.record_event(device_id, "unblocked")

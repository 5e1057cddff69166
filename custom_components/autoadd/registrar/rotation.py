"""Rotating the home key. Every step is on disk before the next, so a crash leaves every device
reachable with the keys on disk:

    1. the new key is staged in the key store      (crash: the stage is dropped at start)
    2. a `rotate` link per device this home owns    (crash: the rotation is finished at start)
    3. the new key becomes current, the old one is retired (kept or destroyed, as chosen)
    4. devices get their links in their next acceptance note

A device with a pending hand-over gets the hand-over signed again on top of its rotation link (the
transfer file is issued anew), so no parent ever carries two links of this home's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.chain import VerifiedChain, extend, issue_link
from custom_components.autoadd.protocol.const import MAX_OWNERS, LinkReason
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import PrivateKey, PublicKey, fingerprint

from . import machine
from .handover import extend_base, held_chain
from .keys import HomeKey, RecoveryKey, RetiredKey
from .machine import digest, held_links
from .ports import PersistError, StepError
from .record import ChangeKind, DeviceRecord, PendingChange, Phase

if TYPE_CHECKING:
    from .core import Registrar

_LOGGER = logging.getLogger(__name__)

#: How long a retired home key the owner chose to keep outlives the rotation, at least.
KEEP_RETIRED = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """Devices whose chain the device confirmed on the current key, and devices still to confirm."""

    moved: int
    pending: int


def _rotated_owners(
    head_owners: tuple[PublicKey, ...],
    ours: set[bytes],
    new: PublicKey,
    *,
    recovery: PublicKey | None = None,
    drop: frozenset[bytes] = frozenset(),
) -> list[PublicKey]:
    """The head's owners with this home's keys replaced by the new one (co-owners stay, in order). The
    home's `recovery` key stays, or is added after the new key when the head does not name it yet (if
    there is room); keys in `drop` (a recovery key the owner removed) are left out."""
    owners: list[PublicKey] = []
    for owner in head_owners:
        if fingerprint(owner) in drop:
            continue
        key = new if fingerprint(owner) in ours else owner
        if fingerprint(key) not in {fingerprint(o) for o in owners}:
            owners.append(key)
    named = {fingerprint(o) for o in owners}
    if recovery is not None and fingerprint(recovery) not in named and len(owners) < MAX_OWNERS:
        after_new = next(
            (i + 1 for i, o in enumerate(owners) if fingerprint(o) == fingerprint(new)), len(owners)
        )
        owners.insert(after_new, recovery)
    return owners


def _rotate_change(
    registrar: Registrar, record: DeviceRecord, new: HomeKey, drop: frozenset[bytes] = frozenset()
) -> PendingChange | None:
    """The device's change once the rotation link is added (None: this home cannot sign for it)."""
    if record.phase in (Phase.HANDED_OVER, Phase.KEY_LOST) or not held_links(record):
        return None
    try:
        chain = held_chain(registrar, record)
    except AutoAddError:
        return None
    change, ours, now = record.change, registrar.keys.fingerprints(), registrar.now()
    confirmed = registrar.keys.confirmed_recovery()
    recovery = confirmed.public if confirmed is not None else None
    if change is not None and change.kind is ChangeKind.HANDOVER:
        base = extend_base(registrar, record)
        signer = registrar.keys.signer_for(base.head.owners)
        if signer is None:
            return None
        rotate = issue_link(
            signer=signer,
            head=base.head,
            owners=_rotated_owners(
                base.head.owners, ours, new.key.public_key(), recovery=recovery, drop=drop
            ),
            reason=LinkReason.ROTATE,
            issued_at=registrar.timestamp(),
        )
        rotated = extend(base, [rotate])
        handover = issue_link(
            signer=new.key,
            head=rotated.head,
            owners=list(chain.head.owners),
            reason=LinkReason.HANDOVER,
            issued_at=registrar.timestamp(),
        )
        return PendingChange(
            kind=ChangeKind.HANDOVER,
            links=[*change.links[:-1], rotate, handover],
            at=change.at,
            new_owner=change.new_owner,
            superseded=[*change.superseded, digest(change.links[-1]).hex()],
            rotation=True,
        )
    signer = registrar.keys.signer_for(chain.head.owners)
    if signer is None:
        return None
    rotate = issue_link(
        signer=signer,
        head=chain.head,
        owners=_rotated_owners(chain.head.owners, ours, new.key.public_key(), recovery=recovery, drop=drop),
        reason=LinkReason.ROTATE,
        issued_at=registrar.timestamp(),
    )
    return PendingChange(
        kind=change.kind if change else ChangeKind.ROTATE,
        links=[*(change.links if change else []), rotate],
        at=change.at if change else now,
        new_owner=change.new_owner if change else "",
        superseded=list(change.superseded) if change else [],
        rotation=True,
    )


def rotation_progress(registrar: Registrar) -> RotationProgress:
    """Members on the current key, and devices (members or not) whose rotation link is not confirmed."""
    records = registrar.state.devices.values()
    pending = sum(1 for r in records if r.change is not None and r.change.rotation)
    moved = sum(1 for r in records if r.is_member and not (r.change is not None and r.change.rotation))
    return RotationProgress(moved=moved, pending=pending)


async def rotate_home_key(
    registrar: Registrar, *, destroy_old: bool, recovery: tuple[RecoveryKey | None] | None = None
) -> RotationProgress:
    """Make a new home key and sign, for every device this home owns, a link moving it to the new key,
    with the home's recovery key as a co-owner (added where it is not yet one). `recovery`: a new
    recovery key, or (None,) to remove it, which the rotation writes with the staged key; a failure
    before any link is signed puts the old one back, on disk too."""
    keys = registrar.keys
    if keys.staged is not None:
        raise StepError("rotation_in_progress")
    previous = keys.recovery
    drop: frozenset[bytes] = frozenset()
    if recovery is not None:
        keys.recovery = recovery[0]
        if previous is not None and recovery[0] is None:
            drop = frozenset({previous.fingerprint})
    old = keys.current
    new = HomeKey.generate(old.key_type, registrar.clock())
    keys.staged = new
    try:
        await registrar.persistence.save_keys(keys)  # step 1
    except PersistError as err:
        keys.staged, keys.recovery = None, previous
        raise StepError("storage_failed") from err
    plan = {
        device_id: change
        for device_id, record in registrar.state.devices.items()
        if (change := _rotate_change(registrar, record, new, drop)) is not None
    }

    def sign() -> None:
        for device_id, change in plan.items():
            machine.begin_change(registrar.state.devices[device_id], change)
        registrar.state.rotation = {
            "old": old.fingerprint.hex(),
            "new": new.fingerprint.hex(),
            "destroy_old": destroy_old,
            "started_at": registrar.now(),
        }

    try:
        await registrar.commit(sign)  # step 2
    except PersistError as err:
        keys.staged, keys.recovery = None, previous
        try:
            await registrar.persistence.save_keys(keys)
        except PersistError:
            _LOGGER.warning(
                "The staged home key (and any recovery key change) stays on disk; dropped at the next start"
            )
        raise StepError("storage_failed") from err
    try:
        await finish_rotation(registrar)  # step 3
    except PersistError as err:
        raise StepError("rotation_unfinished") from err
    for device_id in plan:
        record = registrar.state.devices[device_id]
        registrar.tell(record, [("rotation_signed", {"new_key": new.fingerprint.hex()})])
        registrar.changed(device_id)
        registrar.try_now(device_id)
    return rotation_progress(registrar)


async def finish_rotation(registrar: Registrar) -> None:
    """Step 3: the staged key becomes current; the old one is retired, with or without its private key.
    If the key store cannot be written, memory stays at step 2 (finished at the next start)."""
    keys, rotation = registrar.keys, registrar.state.rotation
    assert keys.staged is not None
    assert rotation is not None
    old, staged, retired = keys.current, keys.staged, list(keys.retired)
    keys.retired.append(
        RetiredKey(
            fingerprint=old.fingerprint.hex(),
            key_type=old.key_type,
            created_at=old.created_at.isoformat(),
            retired_at=registrar.now(),
            key=None if rotation["destroy_old"] else old.key,
        )
    )
    keys.current, keys.staged = staged, None
    try:
        await registrar.persistence.save_keys(keys)
    except PersistError:
        keys.current, keys.staged, keys.retired = old, staged, retired
        raise
    _LOGGER.info("Home key rotated; the old key was %s", "destroyed" if rotation["destroy_old"] else "kept")
    after_confirmation(registrar)


async def resume_rotation(registrar: Registrar) -> None:
    """At start: finish a rotation whose links are stored, or drop a staged key whose links never were."""
    keys, rotation = registrar.keys, registrar.state.rotation
    if keys.staged is None:
        after_confirmation(registrar)
        return
    if rotation is not None and rotation["new"] == keys.staged.fingerprint.hex():
        _LOGGER.warning("Finishing a home key rotation interrupted by a restart")
        await finish_rotation(registrar)
        return
    _LOGGER.warning("Dropping a new home key from a rotation interrupted before any link was signed")
    keys.staged = None
    await registrar.persistence.save_keys(keys)


def after_confirmation(registrar: Registrar) -> None:
    """Once no device waits for its rotation link, the rotation is over. A kept old key goes only when,
    besides, KEEP_RETIRED has passed since it was retired: a device this home has no record of (offline
    since a restore from an older backup, or not yet switched on) may still trust it.

    It runs after every onboarding: with no rotation to finish and no kept old key, it looks at no record."""
    keys = registrar.keys
    if keys.staged is not None:
        return
    if registrar.state.rotation is None and all(old.key is None for old in keys.retired):
        return
    if rotation_progress(registrar).pending:
        return
    if registrar.state.rotation is not None:
        registrar.state.rotation = None
        registrar.persistence.schedule_save()
    cutoff = registrar.clock() - KEEP_RETIRED
    if _destroyable(registrar, cutoff):
        registrar.scheduler.spawn(destroy_retired_keys(registrar, cutoff), "autoadd destroy retired keys")


def _still_needed(registrar: Registrar) -> set[str]:
    """Fingerprints (hex) of retired keys that a stored chain still needs: its head names no current key
    (a registrar store older than the key store, say) and no link of this home's moves it on."""
    current = {registrar.home.fingerprint}
    needed: set[str] = set()
    for record in registrar.state.devices.values():
        if record.phase is Phase.HANDED_OVER or not record.chain or record.change is not None:
            continue
        try:
            owners = set(held_chain(registrar, record).head.owner_fingerprints)
        except AutoAddError:
            continue
        if not owners & current:
            needed |= {owner.hex() for owner in owners}
    return needed


def _destroyable(registrar: Registrar, cutoff: datetime) -> list[RetiredKey]:
    """Kept retired keys past their grace period that no stored chain still needs (the chains are only
    looked at when there is such a key: this runs after every confirmation)."""
    due = [
        old
        for old in registrar.keys.retired
        if old.key is not None and datetime.fromisoformat(old.retired_at) <= cutoff
    ]
    if not due:
        return []
    needed = _still_needed(registrar)
    return [old for old in due if old.fingerprint not in needed]


async def destroy_retired_keys(registrar: Registrar, cutoff: datetime) -> None:
    """Forget the private part of every home key retired before `cutoff` that no stored chain still
    needs (kept if the write fails)."""
    kept = [(old, old.key) for old in _destroyable(registrar, cutoff)]
    for old, _ in kept:
        old.key = None
    try:
        await registrar.persistence.save_keys(registrar.keys)
    except PersistError:
        for old, key in kept:
            old.key = key
        _LOGGER.error("Could not write the key store; the retired home keys are kept for now")
        return
    _LOGGER.info("Retired home keys destroyed: every device has moved to the current key")


async def sign_rotation_for(
    registrar: Registrar, device_id: str, proven: VerifiedChain, chain: VerifiedChain, signer: PrivateKey
) -> None:
    """A device owned by a retired key of this home with no link moving it (`chain`: what this home would
    present on top of the `proven` one): sign a rotation now, stored before it is sent."""
    keys = registrar.keys
    recovery = keys.recovery
    restoring = recovery is not None and signer is recovery.key
    known = registrar.state.devices.get(device_id)
    if known is not None and known.change is not None and not restoring:
        return  # a restore replaces a change this home signed with a key it has lost (an older backup)
    if recovery is not None and restoring:  # a restore (§14.8): the new home key and the recovery key,
        owners = [keys.current.key.public_key(), recovery.public]  # nobody else
        if not recovery.confirmed:  # it owns a device of this home's: it is this home's recovery key
            recovery.confirmed = True
            try:
                await registrar.persistence.save_keys(keys)
            except PersistError:
                recovery.confirmed = False
                raise
    else:
        confirmed = keys.confirmed_recovery()
        owners = _rotated_owners(
            chain.head.owners,
            keys.fingerprints(),
            keys.current.key.public_key(),
            recovery=confirmed.public if confirmed is not None else None,
        )
    link = issue_link(
        signer=signer,
        head=chain.head,
        owners=owners,
        reason=LinkReason.ROTATE,
        issued_at=registrar.timestamp(),
    )

    def sign() -> None:
        record = registrar.record(device_id)
        record.chain = list(proven.links)
        machine.begin_change(
            record, PendingChange(ChangeKind.ROTATE, links=[link], at=registrar.now(), rotation=True)
        )

    await registrar.commit(sign)

"""What a verified proof means for a device, against what this home stored: a pure decision.

`judge_proof` never changes anything; the registrar acts on its verdict, and `machine.py` moves the phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from custom_components.autoadd.protocol.chain import VerifiedChain, compare_with_known, extend
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.errors import AutoAddError, NotOwnerError
from custom_components.autoadd.protocol.keys import PrivateKey

from .keys import HomeKeys
from .machine import ACCEPTED, digest, entry_index, held_links, own_claim, previous_owner
from .record import ChangeKind, DeviceRecord, Phase

# --- What a proof means --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Present:
    """This home owns the device: send a note with `links` signed by `signer` (or, on a check with
    nothing new, just take the proof)."""

    links: tuple[bytes, ...]
    signer: PrivateKey
    chain: VerifiedChain


@dataclass(frozen=True, slots=True)
class Push:
    """A hand-over is owed: push these links, then ask for a proof that the device holds them."""

    links: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Rotate:
    """The device is owned by a retired key of this home with no link moving it: sign one now."""

    signer: PrivateKey
    chain: VerifiedChain


@dataclass(frozen=True, slots=True)
class AskOwner:
    """Handed to this home by someone else: the owner decides first."""

    previous_owner: bytes


@dataclass(frozen=True, slots=True)
class Left:
    """The device's chain left this home (its hand-over, or a co-owner's)."""


@dataclass(frozen=True, slots=True)
class KeyLost:
    """Owned by a key of this home that is gone; `expected` are the fingerprints it would accept."""

    expected: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Unassigned:
    """Unassigned stock: its chain names no owner yet; it waits for its claim code (§14.9)."""


@dataclass(frozen=True, slots=True)
class Refuse:
    """Not this home's, or not acceptable: nothing changes but the refusal."""

    error: AutoAddError
    #: The stored approval is outdated (the transfer file was cancelled, or the chain moved on).
    outdated: bool = False


type Verdict = Present | Push | Rotate | AskOwner | Left | KeyLost | Unassigned | Refuse


def _continues_beyond_us(chain: VerifiedChain, keys: HomeKeys) -> bool:
    """Whether every link after the last head this home owned is a rotation, the first one signed by a key
    of this home: the chain ran ahead of what this home remembers by its own rotations."""
    ours = keys.fingerprints()
    owned = [i for i, head in enumerate(chain.history) if set(head.owner_fingerprints) & ours]
    if not owned:
        return False
    steps = chain.history[owned[-1] + 1 :]
    return bool(steps) and steps[0].signer in ours and all(step.reason is LinkReason.ROTATE for step in steps)


def judge_proof(  # noqa: PLR0911 - one return per verdict, in the order they are decided
    record: DeviceRecord | None, chain: VerifiedChain, keys: HomeKeys
) -> Verdict:
    """Decide what a verified proof means, against what this home stored. Pure: nothing is changed."""
    record = record or DeviceRecord(device_id=chain.device_id.hex())
    stored = [digest(link) for link in record.chain]
    try:
        compare_with_known(stored, chain.digests)
    except AutoAddError as err:
        return Refuse(err)
    seen = {d.hex() for d in chain.digests}
    change = record.change
    if change is not None and (
        seen & set(change.superseded)
        or (change.kind is ChangeKind.HANDOVER and digest(change.links[-1]).hex() in seen)
    ):
        return Left()
    held = held_links(record)
    held_digests = [digest(link) for link in held]
    extra: list[bytes] = []
    if chain.head.digest in held_digests:
        extra = held[held_digests.index(chain.head.digest) + 1 :]
    if change is not None and change.kind is ChangeKind.HANDOVER and extra:
        return Push(tuple(extra))
    try:
        extended = extend(chain, extra)
    except AutoAddError as err:
        return Refuse(err)
    if not extended.head.owners:
        return Unassigned()
    ours = keys.fingerprints()
    owners = set(extended.head.owner_fingerprints)
    if not owners & ours:
        return _not_ours(record, chain, extended, keys)
    signer = keys.signer_for(extended.head.owners) or _restoring(keys, owners)
    if signer is None:
        return KeyLost(tuple(o for o in extended.head.owner_fingerprints if o in ours))
    if signer is not keys.current.key and not owners & {keys.current.fingerprint}:
        return Rotate(signer, extended)
    own = keys.with_recovery()  # links the recovery key signed are this home's own (§14.8)
    origin = previous_owner(extended, own) or _claimed_without_us(record, extended, own)
    if origin is not None and not _approved(record, extended, own):
        if record.phase is Phase.REJECTED and record.approval and record.approval.head in seen:
            return Refuse(NotOwnerError("the owner rejected this hand-over"))
        return AskOwner(origin)
    return Present(tuple(extra), signer, extended)


def _claimed_without_us(record: DeviceRecord, chain: VerifiedChain, ours: set[bytes]) -> bytes | None:
    """The device's id when it entered this home by a claim link naming this home first that no claim
    run of this home made (§14.9 G9): a device can sign such a link by itself, so it is asked about."""
    step = chain.history[entry_index(chain, ours)]
    if step.reason is LinkReason.CLAIM and not own_claim(record, step):
        return step.signer
    return None


def _approved(record: DeviceRecord, chain: VerifiedChain, ours: set[bytes]) -> bool:
    """Whether this home already took the device in through the link it entered by."""
    accepted = record.phase in ACCEPTED or (record.phase is Phase.BLOCKED and record.blocked_from in ACCEPTED)
    if accepted and len(record.chain) > entry_index(chain, ours):
        return True
    approval = record.approval
    seen = {d.hex() for d in chain.digests}
    return record.phase is Phase.APPROVED and approval is not None and approval.head in seen


def _not_ours(record: DeviceRecord, chain: VerifiedChain, extended: VerifiedChain, keys: HomeKeys) -> Verdict:
    """The proven head names none of this home's keys: restored from the recovery key, a key it lost,
    a device that left it, or someone else's."""
    ours, owners = keys.fingerprints(), set(extended.head.owner_fingerprints)
    if (restore := _restoring(keys, owners)) is not None:
        return Rotate(restore, extended)  # restoring (§14.8): the recovery key moves it to this home
    if _continues_beyond_us(chain, keys):
        stored_owners = set(record.owners_bytes())
        new = tuple(o for o in extended.head.owner_fingerprints if o not in stored_owners)
        return KeyLost(new or extended.head.owner_fingerprints)
    if record.chain and set(record.owners_bytes()) & ours and record.phase in ACCEPTED:
        return Left()
    outdated = record.phase is Phase.APPROVED and bool(record.approval and record.approval.transfer)
    return Refuse(NotOwnerError("the device's chain does not name this home as a current owner"), outdated)


def _restoring(keys: HomeKeys, owners: set[bytes]) -> PrivateKey | None:
    """The recovery key, when this home is being restored with it and it owns the device (§14.8)."""
    recovery = keys.recovery
    if recovery is not None and recovery.key is not None and recovery.fingerprint in owners:
        return recovery.key
    return None

"""The device state machine: what a device is to this home, and what evidence moves it.

This module is the only place that changes a record's phase. Every transition names the evidence that
allows it (the table below, which docs/design.md draws):

- PROOF: a proof bundle the device signed with its IDevID key over a fresh nonce from this home;
- RECEIPT: the device's signed receipt for the exact note this home sent in that session;
- OWNER: a decision the home owner made in Home Assistant;
- START: what is on disk when the registrar starts (nothing from the network).

Announcements, `/info` answers, `204`s and error bodies are not evidence: they only schedule attempts.
"""

from __future__ import annotations

from enum import StrEnum
import functools
import hashlib

from custom_components.autoadd.protocol.chain import ChainHead, VerifiedChain
from custom_components.autoadd.protocol.const import LinkReason

from .record import Address, Approval, ChangeKind, DeviceRecord, PendingChange, Phase, Refusal


class Evidence(StrEnum):
    """What may move a device from one phase to another."""

    PROOF = "proof"
    RECEIPT = "receipt"
    OWNER = "owner"
    START = "start"


P = Phase
#: Every allowed transition, the evidence it needs, and what happened.
TRANSITIONS: dict[tuple[Phase, Phase], tuple[Evidence, str]] = {
    (P.SEEN, P.ONBOARDED): (Evidence.RECEIPT, "took a note from this home"),
    (P.SEEN, P.AWAITING_APPROVAL): (Evidence.PROOF, "proved a chain handed over by another owner"),
    (P.SEEN, P.APPROVED): (Evidence.OWNER, "owner accepted its transfer file"),
    (P.SEEN, P.KEY_LOST): (Evidence.PROOF, "proved a chain owned by a key this home lost"),
    (P.SEEN, P.HANDED_OVER): (Evidence.PROOF, "proved it holds this home's hand-over"),
    (P.AWAITING_APPROVAL, P.APPROVED): (Evidence.OWNER, "owner approved, or accepted its transfer file"),
    (P.AWAITING_APPROVAL, P.REJECTED): (Evidence.OWNER, "owner rejected"),
    (P.AWAITING_APPROVAL, P.SEEN): (Evidence.PROOF, "proved a chain no longer this home's"),
    (P.APPROVED, P.ONBOARDED): (Evidence.RECEIPT, "took a note from this home"),
    (P.APPROVED, P.SEEN): (Evidence.PROOF, "proved a chain the approval does not cover (outdated)"),
    (P.APPROVED, P.AWAITING_APPROVAL): (Evidence.PROOF, "proved another hand-over than the one approved"),
    (P.REJECTED, P.AWAITING_APPROVAL): (Evidence.PROOF, "proved a changed chain"),
    (P.REJECTED, P.APPROVED): (Evidence.OWNER, "owner accepted its transfer file"),
    (P.HANDED_OVER, P.APPROVED): (Evidence.OWNER, "owner accepted its transfer file (handed back)"),
    (P.REMOVED, P.APPROVED): (Evidence.OWNER, "owner accepted its transfer file"),
    (P.ONBOARDED, P.CHANGING_OWNER): (Evidence.OWNER, "owner rotated the key or handed it over"),
    (P.ONBOARDED, P.KEY_LOST): (Evidence.PROOF, "proved a chain owned by a key this home lost"),
    (P.ONBOARDED, P.HANDED_OVER): (Evidence.PROOF, "proved a chain that left this home (a co-owner)"),
    (P.CHANGING_OWNER, P.ONBOARDED): (Evidence.RECEIPT, "confirmed the rotation or the cancel"),
    (P.CHANGING_OWNER, P.HANDED_OVER): (Evidence.PROOF, "proved it holds the hand-over link"),
    (P.CHANGING_OWNER, P.KEY_LOST): (Evidence.PROOF, "proved a chain owned by a key this home lost"),
    (P.KEY_LOST, P.ONBOARDED): (Evidence.RECEIPT, "took a note once the key was back"),
    (P.KEY_LOST, P.HANDED_OVER): (Evidence.PROOF, "proved a chain that left this home"),
    (P.HANDED_OVER, P.AWAITING_APPROVAL): (Evidence.PROOF, "proved it was handed back to this home"),
    (P.HANDED_OVER, P.ONBOARDED): (Evidence.RECEIPT, "handed back by a link of this home's, took a note"),
    (P.REMOVED, P.ONBOARDED): (Evidence.RECEIPT, "asked again (factory reset) and took a note"),
    (P.REMOVED, P.HANDED_OVER): (Evidence.PROOF, "proved it holds this home's hand-over"),
    (P.REMOVED, P.AWAITING_APPROVAL): (Evidence.PROOF, "proved a chain handed over by another owner"),
    (P.REMOVED, P.KEY_LOST): (Evidence.PROOF, "proved a chain owned by a key this home lost"),
}
for _phase in (P.ONBOARDED, P.CHANGING_OWNER, P.KEY_LOST, P.AWAITING_APPROVAL, P.APPROVED, P.REJECTED):
    TRANSITIONS[(_phase, P.REMOVED)] = (Evidence.OWNER, "owner removed it")
for _phase in (P.SEEN, P.APPROVED, P.REMOVED, P.KEY_LOST, P.HANDED_OVER, P.AWAITING_APPROVAL, P.REJECTED):
    TRANSITIONS[(_phase, P.CHANGING_OWNER)] = (Evidence.RECEIPT, "took a note; a change is still to confirm")
for _phase in (P.AWAITING_APPROVAL, P.REJECTED):
    TRANSITIONS[(_phase, P.ONBOARDED)] = (Evidence.RECEIPT, "names this home by its own link; took a note")
for _phase in (P.AWAITING_APPROVAL, P.APPROVED, P.REJECTED, P.HANDED_OVER):
    TRANSITIONS[(_phase, P.KEY_LOST)] = (Evidence.PROOF, "proved a chain owned by a key this home lost")
for _phase in (P.ONBOARDED, P.CHANGING_OWNER, P.KEY_LOST):
    TRANSITIONS[(_phase, P.AWAITING_APPROVAL)] = (Evidence.PROOF, "handed away, then back by another")
for _phase in (P.AWAITING_APPROVAL, P.APPROVED, P.REJECTED):
    TRANSITIONS[(_phase, P.HANDED_OVER)] = (Evidence.PROOF, "proved it holds this home's hand-over")
for _phase in Phase:
    if _phase is not P.BLOCKED:
        TRANSITIONS[(_phase, P.BLOCKED)] = (Evidence.OWNER, "owner blocked it")
        TRANSITIONS[(P.BLOCKED, _phase)] = (Evidence.OWNER, "owner unblocked it")


#: Phases in which the owner has taken the device in (its stored chain is this home's).
ACCEPTED = frozenset({P.ONBOARDED, P.CHANGING_OWNER, P.KEY_LOST, P.REMOVED})


#: Transitions that other evidence allows too.
ALSO: dict[tuple[Phase, Phase], Evidence] = {
    (P.ONBOARDED, P.KEY_LOST): Evidence.START,
    (P.CHANGING_OWNER, P.KEY_LOST): Evidence.START,
    (P.CHANGING_OWNER, P.ONBOARDED): Evidence.PROOF,
}


class TransitionError(Exception):
    """A transition the table does not allow: a programming error, never shown as a device's fault."""


def move(record: DeviceRecord, to: Phase, evidence: Evidence) -> None:
    """Change the record's phase, if the table allows it on this evidence."""
    if record.phase is to:
        return
    allowed = TRANSITIONS.get((record.phase, to))
    if allowed is None or (allowed[0] is not evidence and ALSO.get((record.phase, to)) is not evidence):
        raise TransitionError(f"{record.phase} -> {to} is not allowed on {evidence}")
    record.phase = to


@functools.lru_cache(maxsize=1 << 14)
def digest(link: bytes) -> bytes:
    """SHA-256 of a link's exact bytes (each stored link is compared with every proof: hashed once)."""
    return hashlib.sha256(link).digest()


def held_links(record: DeviceRecord) -> list[bytes]:
    """The chain this home would present: what the device proved, an accepted transfer file that extends
    it, and the links this home signed that the device has not confirmed."""
    base = record.chain
    transfer = record.approval.transfer if record.approval else []
    if len(transfer) >= len(base) and transfer[: len(base)] == base:
        base = transfer
    return [*base, *(record.change.links if record.change else [])]


def entry_index(chain: VerifiedChain, ours: set[bytes]) -> int:
    """Where this home's run of ownership up to the head starts (§14.3)."""
    entry = len(chain.history) - 1
    while entry > 0 and ours & set(chain.history[entry - 1].owner_fingerprints):
        entry -= 1
    return entry


def previous_owner(chain: VerifiedChain, ours: set[bytes]) -> bytes | None:
    """Who handed the device to this home: None when this home owns it by the invoice or its own link.
    A claim link (§14.9) is this home's own when it names this home first (the device names the home it
    ran the code with first); one whose first owner is another home was claimed by that home, which
    named this one too: that home handed it over."""
    entry = entry_index(chain, ours)
    step = chain.history[entry]
    if step.reason is LinkReason.CLAIM:
        claimer = step.owner_fingerprints[0]
        return None if claimer in ours else claimer
    return None if entry == 0 or step.signer in ours else step.signer


def own_claim(record: DeviceRecord, step: ChainHead) -> bool:
    """Whether `step` is the claim link of this home's own run (§14.9 G9): exactly the owners the run it
    stored named (a device can sign a claim link naming any home by itself)."""
    return step.reason is LinkReason.CLAIM and [fp.hex() for fp in step.owner_fingerprints] == record.claimed


# --- Transitions on evidence from the device ----------------------------------------------------------

type Events = list[tuple[str, dict[str, str]]]


def _take_proof(record: DeviceRecord, chain: VerifiedChain, address: Address, now: str) -> None:
    """What a proof or receipt establishes: the device holds `chain` and answers at `address`."""
    record.chain = list(chain.links)
    record.owners = [owner.hex() for owner in chain.head.owner_fingerprints]
    record.address = address
    record.last_seen = now
    record.refusal = None


def _reconcile_change(record: DeviceRecord, chain: VerifiedChain) -> Events:
    """After the device proved `chain`: drop the pending change once it is confirmed, or once the chain
    has moved on so that it can never extend it."""
    change = record.change
    if change is None:
        return []
    seen = set(chain.digests)
    if all(digest(link) in seen for link in change.links):
        record.change = None
        event = {ChangeKind.ROTATE: "rotated", ChangeKind.CANCEL: "handover_cancelled"}.get(change.kind)
        return [(event, {"chain_length": str(len(chain.links))})] if event else []
    held = held_links(record)
    base = held[: len(held) - len(change.links)]
    if base and digest(base[-1]) != chain.head.digest:
        record.change = None
        return [("change_dropped", {"kind": change.kind.value})]
    return []


def on_receipt(record: DeviceRecord, chain: VerifiedChain, address: Address, now: str) -> Events:
    """The device took this home's note and stands at `chain`'s head (RECEIPT)."""
    was = record.phase
    events = _reconcile_change(record, chain)
    _take_proof(record, chain, address, now)
    if was is P.BLOCKED:
        record.blocked_from = P.CHANGING_OWNER if record.change else P.ONBOARDED
        return events
    if record.onboarded_at is None or was in (P.SEEN, P.APPROVED, P.REMOVED, P.HANDED_OVER):
        events.insert(
            0, ("accepted" if record.approval else "onboarded", {"owners": ",".join(record.owners)})
        )
        record.onboarded_at = record.onboarded_at or now
    record.approval = None
    record.lost_key = ""
    move(record, P.CHANGING_OWNER if record.change else P.ONBOARDED, Evidence.RECEIPT)
    return events


def on_check(record: DeviceRecord, chain: VerifiedChain, address: Address, now: str) -> Events:
    """A member proved itself with nothing new to send: follow its address and chain (PROOF)."""
    moved = record.address != address
    events = _reconcile_change(record, chain)
    _take_proof(record, chain, address, now)
    if record.phase is P.CHANGING_OWNER and record.change is None:
        move(record, P.ONBOARDED, Evidence.PROOF)
    return [*events, ("moved", {"host": address.host})] if moved else events


def on_clone(record: DeviceRecord, address: Address, now: str) -> Events:
    """The device's IDevID proved itself at `address` soon after proving itself at `record.address` (PROOF):
    one key on two hosts. The address is held where it was until the owner decides."""
    assert record.address is not None
    record.clone = address
    return [("clone_suspected", {"host": address.host, "kept": record.address.host})]


def on_clone_gone(record: DeviceRecord, now: str) -> Events:
    """The kept address of a held device no longer proves it (PROOF, or its absence, from there): the hold
    ends and the device is followed where it proves itself."""
    record.clone = None
    return [("clone_gone", {})]


def on_clone_decided(record: DeviceRecord, *, follow_new: bool, now: str) -> Events:
    """The owner chose which address the device is followed at (OWNER); the phase does not change."""
    assert record.clone is not None
    if follow_new:
        record.address = record.clone
    record.clone = None
    assert record.address is not None
    return [("clone_decided", {"host": record.address.host})]


def on_left(record: DeviceRecord, chain: VerifiedChain, address: Address, now: str) -> Events:
    """The device proved a chain that is no longer this home's (PROOF)."""
    new_owner = record.change.new_owner if record.change else ""
    record.change = None
    _take_proof(record, chain, address, now)
    if record.phase is P.BLOCKED:
        record.blocked_from = P.HANDED_OVER
        return []
    move(record, P.HANDED_OVER, Evidence.PROOF)
    owners = new_owner or ",".join(record.owners)
    return [("handed_over", {"new_owner": owners})]


def on_key_lost(
    record: DeviceRecord, chain: VerifiedChain, address: Address, expected: bytes, now: str
) -> Events:
    """The device's chain is owned by a key this home no longer holds (PROOF)."""
    events = _reconcile_change(record, chain)
    _take_proof(record, chain, address, now)
    record.lost_key = expected.hex()
    if record.phase is not P.BLOCKED:
        move(record, P.KEY_LOST, Evidence.PROOF)
    return [*events, ("key_lost", {"expected": expected.hex()})]


def on_ask_owner(
    record: DeviceRecord, chain: VerifiedChain, address: Address, previous: bytes, now: str
) -> Events:
    """The device proved a chain another owner handed to this home: the owner decides (PROOF)."""
    head = chain.head.digest.hex()
    asked_before = record.phase is P.AWAITING_APPROVAL and record.approval and record.approval.head == head
    events = _reconcile_change(record, chain)
    _take_proof(record, chain, address, now)
    record.approval = Approval(head=head, previous_owner=previous.hex(), at=now)
    move(record, P.AWAITING_APPROVAL, Evidence.PROOF)
    return events if asked_before else [*events, ("approval_requested", {"previous_owner": previous.hex()})]


def on_refused(record: DeviceRecord, refusal: Refusal, *, proven_not_ours: bool, outdated: bool) -> Events:
    """An attempt failed. Only a verified proof that the device is not this home's (`proven_not_ours`)
    takes back a pending approval; anything else just delays the next attempt."""
    record.refusal = refusal
    if proven_not_ours and record.phase in (P.AWAITING_APPROVAL, P.APPROVED):
        record.approval = None
        move(record, P.SEEN, Evidence.PROOF)
        return [("transfer_outdated", {})] if outdated else []
    return []


# --- Transitions on the owner's decisions ----------------------------------------------------------------


def approve(record: DeviceRecord, now: str) -> Events:
    """The owner accepts a device handed to this home (OWNER)."""
    assert record.approval is not None
    move(record, P.APPROVED, Evidence.OWNER)
    record.refusal = None
    return [("approved", {"previous_owner": record.approval.previous_owner})]


def reject(record: DeviceRecord, now: str) -> Events:
    """The owner refuses a device handed to this home (OWNER)."""
    assert record.approval is not None
    move(record, P.REJECTED, Evidence.OWNER)
    return [("rejected", {"previous_owner": record.approval.previous_owner})]


def accept_transfer(record: DeviceRecord, approval: Approval) -> Events:
    """The owner accepts a transfer file: the device is onboarded with it when it shows up (OWNER)."""
    record.approval = approval
    record.refusal = None
    move(record, P.APPROVED, Evidence.OWNER)
    return [("transfer_accepted", {"previous_owner": approval.previous_owner})]


def begin_change(record: DeviceRecord, change: PendingChange) -> None:
    """The owner signed a change (rotation, hand-over, cancel); it stays pending until confirmed (OWNER)."""
    record.change = change
    if record.phase is P.ONBOARDED:
        move(record, P.CHANGING_OWNER, Evidence.OWNER)


def remove(record: DeviceRecord) -> Events:
    """The owner removed the device from this home (OWNER); chain and pending links are kept."""
    move(record, P.REMOVED, Evidence.OWNER)
    return [("removed", {})]


def block(record: DeviceRecord, reason: str) -> Events:
    """The owner blocks the device identifier (OWNER)."""
    if record.phase is not P.BLOCKED:
        record.blocked_from = record.phase
        move(record, P.BLOCKED, Evidence.OWNER)
    return [("blocked", {"reason": reason})]


def unblock(record: DeviceRecord) -> Events:
    """The owner lifts a block (OWNER): the device is what it was before."""
    move(record, record.blocked_from or P.SEEN, Evidence.OWNER)
    record.blocked_from = None
    return [("unblocked", {})]


def key_lost_at_start(record: DeviceRecord, expected: bytes) -> Events:
    """On disk, the chain this home would present is owned only by keys it no longer holds (START)."""
    record.lost_key = expected.hex()
    if record.phase in (P.ONBOARDED, P.CHANGING_OWNER):
        move(record, P.KEY_LOST, Evidence.START)
    return [("key_lost", {"expected": expected.hex()})]


def state_diagram() -> str:
    """The transition table as a Mermaid state diagram (docs/design.md holds exactly this)."""
    lines = ["stateDiagram-v2", "    [*] --> seen: announced (a hint only)"]
    for (source, target), (evidence, text) in TRANSITIONS.items():
        if target is P.BLOCKED or source is P.BLOCKED:
            continue
        also = ALSO.get((source, target))
        label = f"{evidence.value}{'/' + also.value if also else ''} - {text}"
        lines.append(f"    {source.value} --> {target.value}: {label}")
    lines.append("    note right of blocked: any phase <-> blocked (owner); never contacted while blocked")
    return "\n".join(lines)

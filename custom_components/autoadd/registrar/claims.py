"""Unassigned stock (§14.9): a device whose invoice names no owner waits for its claim code.

A proof whose chain names no owner is refused as `unassigned`, and the owner is asked for the code in
Repairs. When the owner gives it, the registrar proves the device again, runs CPace keyed by the code
(bound to this home's key, the device id and both nonces) and checks the claim link the device signs.
It stores nothing on the way: the claim link is on the device, and only the fresh proof that follows
(a normal attempt) makes the device this home's. The code is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.chain import VerifiedChain
from custom_components.autoadd.protocol.claim import ClaimRun
from custom_components.autoadd.protocol.claim_code import ClaimCode, parse_claim_code
from custom_components.autoadd.protocol.errors import AlreadyClaimedError, AutoAddError
from custom_components.autoadd.protocol.keys import fingerprint, public_key_of

from . import session
from .machine import own_claim
from .ports import Issue
from .record import Address, DeviceRecord

if TYPE_CHECKING:
    from .core import Registrar

ISSUE = "claim"


class UnassignedError(AutoAddError):
    """The device proved a chain that names no owner: it waits for its claim code (local)."""

    code = "unassigned"


class NoDeviceForCodeError(AutoAddError):
    """No unassigned device this home has seen is the one the code is for (local)."""

    code = "no_device_for_code"


class AmbiguousCodeError(AutoAddError):
    """Several waiting devices match the code's hint: the owner picks one in Repairs (local)."""

    code = "ambiguous_claim_code"


class ClaimedElsewhereError(AlreadyClaimedError):
    """The device's claim link was made by another home that named this one too: a hand-over by that
    home, asked about in Repairs (local)."""


def noticed(registrar: Registrar, record: DeviceRecord, address: Address) -> None:
    """An unassigned device proved itself at `address`: kept there, and the owner is asked for its code,
    in Repairs when its manufacturer is one this home trusts. One under a root it offered (§14.7) is only
    refused: anyone can make such devices by the hundred, so they raise no question by themselves; the
    owner who holds a code gives it in Configure."""
    record.hint = address
    if not any(root.fingerprint == record.manufacturer_root for root in registrar.state.roots):
        return
    registrar.owner.raise_issue(
        Issue(
            ISSUE,
            record.device_id,
            {
                "manufacturer": record.manufacturer,
                "model": record.model or "AutoAdd device",
                "serial_number": record.serial_number or record.device_id[:8],
                "device": record.device_id[:16],
            },
            fixable=True,
        )
    )


def waiting(registrar: Registrar) -> list[DeviceRecord]:
    """The unassigned devices this home has seen (and not blocked), newest first."""
    found = [
        record
        for record in registrar.state.devices.values()
        if record.refusal is not None
        and record.refusal.code == UnassignedError.code
        and record.hint
        and not registrar.blocked(record.device_id)
    ]
    return sorted(found, key=lambda record: record.refusal.at if record.refusal else "", reverse=True)


def matching(registrar: Registrar, text: str) -> list[DeviceRecord]:
    """The waiting devices a claim code's hint names (none for a code that does not parse)."""
    try:
        code = parse_claim_code(text)
    except AutoAddError:
        return []
    return [record for record in waiting(registrar) if code.is_for(bytes.fromhex(record.device_id))]


def _find(registrar: Registrar, code: ClaimCode, device_id: str | None) -> DeviceRecord:
    """G0: the one waiting device the code is for. Two that match its hint are refused rather than one
    picked: a device id is cheap to grind to a hint, so one of them may be pretending."""
    found = [
        record
        for record in waiting(registrar)
        if code.is_for(bytes.fromhex(record.device_id)) and device_id in (None, record.device_id)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise AmbiguousCodeError("two waiting devices match this code's first characters")
    if device_id is not None:
        raise NoDeviceForCodeError("this claim code is for another device (its first characters differ)")
    raise NoDeviceForCodeError("no device waiting for a claim code here is the one this code is for")


def _mark(registrar: Registrar, device_id: str, owners: list[str]) -> None:
    record = registrar.record(device_id)
    record.claimed, record.refusal = owners, None


def _claimed_by_us(record: DeviceRecord, chain: VerifiedChain, ours: set[bytes]) -> bool:
    """Whether link 1 is the claim link of this home's own run (it ran the code, before a crash?): it
    names this home first, and exactly the owners this home's run named (a device can sign a claim link
    naming any home by itself)."""
    first = chain.history[1] if len(chain.history) > 1 else None
    return first is not None and own_claim(record, first) and first.owner_fingerprints[0] in ours


@dataclass(frozen=True, slots=True)
class Claimed:
    """How a claim ended: the device's record after the attempt that followed, and whether a code run
    claimed it now (False: it named this home already, claimed before a crash, so the code was not run)."""

    record: DeviceRecord
    ran: bool


async def claim(registrar: Registrar, text: str, device_id: str | None = None) -> Claimed:
    """Claim the unassigned device `text` is the code of (`device_id`: the one the owner chose), then
    add it. Raises the reason when it can't: the code's (a typo), this home's, or the device's."""
    code = parse_claim_code(text)
    record = _find(registrar, code, device_id)
    device_id, address = record.device_id, record.hint
    assert address is not None
    async with registrar.talking_to(device_id):
        conn = registrar.transport(address.host, address.port)
        _, proven = await session.prove(registrar, conn, device_id, address)
        ours, head = registrar.keys.with_recovery(), proven.chain.head
        ran = not head.owners
        if not ran and not _claimed_by_us(registrar.record(device_id), proven.chain, ours):
            if set(head.owner_fingerprints) & ours:  # claimed by another home, which named this one too
                registrar.try_now(device_id, session.Purpose.ONBOARD, at=address)  # its approval shows
                raise ClaimedElsewhereError("another home claimed the device and named this home too")
            raise AlreadyClaimedError("the device's chain names other owners: someone claimed it first")
        if ran:
            owners = registrar.keys.owner_keys()
            run = ClaimRun(
                code, device_id=proven.device_id, home=public_key_of(registrar.home.key), owners=owners
            )
            started = await session.ask(conn.claim_start(run.start))
            run.read_link(await session.ask(conn.claim_finish(run.finish(started))), proven.chain)
            # G9: the verified claim on disk before anything more is sent: only a claim link naming
            # exactly these owners is this home's own entry (a device can sign one by itself), and the
            # device, no longer unassigned, is tried at once, whatever its old refusal's back-off
            named = [fingerprint(owner).hex() for owner in owners]
            await registrar.commit(lambda: _mark(registrar, device_id, named), devices=[device_id])
    registrar.owner.clear_issue(ISSUE, device_id)
    await registrar.attempt(device_id, address, session.Purpose.ONBOARD)  # the proof that moves state
    return Claimed(registrar.record(device_id), ran)

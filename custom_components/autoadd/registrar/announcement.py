"""What an announcement is worth: which attempt it calls for, if any, and when. Nothing here is evidence.

An announcement only says where to try. Whether to try there depends on what this home knows of the
device (its record) and, for a device it refused, on whether the announced TXT record is news: a record
other than the one the refused attempt set out with (its digest leaves `sv` out, §10).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .record import Address, DeviceRecord, Phase, txt_digest
from .session import Purpose

#: A refused device that announces a changed TXT record is tried again, but not sooner than this after
#: the refusal: a host flipping `st` gets one attempt per id this often (ids and slots are capped besides),
#: while a device handed over to this home is still onboarded within seconds.
TXT_NEWS_MIN = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A device as mDNS announced it: where to try, nothing more."""

    device_id: str
    host: str
    port: int
    claimed: bool
    txt: dict[str, str]


def purpose(  # noqa: PLR0911 - a decision table
    record: DeviceRecord | None, candidate: Candidate, address: Address, *, checked: bool
) -> Purpose | None:
    """The attempt an announcement calls for (None: none); `checked`: the member proved itself since
    this home started."""
    if record is None:
        return Purpose.ONBOARD
    if record.change is not None or record.phase is Phase.APPROVED:
        return Purpose.DELIVER
    if record.phase is Phase.AWAITING_APPROVAL:
        return None  # the owner has not decided
    if record.phase in (Phase.REMOVED, Phase.HANDED_OVER):
        return None if candidate.claimed else Purpose.ONBOARD
    if record.is_member:
        if not candidate.claimed:
            return Purpose.ONBOARD  # it lost its imprint (factory reset)
        if address != record.address or not checked:
            return Purpose.CHECK
        return None
    return Purpose.ONBOARD


def wait(
    record: DeviceRecord | None,
    candidate: Candidate,
    address: Address,
    *,
    now: datetime,
    held_back: Mapping[tuple[str, Address], tuple[datetime, str]],
) -> float | None:
    """Seconds until an attempt is due (0: now), or None when the announcement is no reason for one.
    `held_back`: members' refusals at addresses they never proved, until when."""
    if record is not None and record.is_member and address != record.address:
        until = held_back.get((record.device_id, address))
        return None if until is not None and now < until[0] else 0.0
    refusal = record.refusal if record is not None else None
    if refusal is None or (record is not None and record.is_member):
        return 0.0  # a member's stored refusal never holds back an attempt at its proven address
    if now >= datetime.fromisoformat(refusal.retry_after):
        return 0.0
    if txt_digest(candidate.txt) in ("", refusal.txt_digest):
        return None  # nothing new (a new `sv` alone is not news)
    soonest = datetime.fromisoformat(refusal.at) + TXT_NEWS_MIN
    return max(0.0, (soonest - now).total_seconds())


def at_start(record: DeviceRecord) -> Purpose | None:
    """The attempt a stored device calls for when this home starts (None: it waits to be announced)."""
    if record.phase in (Phase.BLOCKED, Phase.HANDED_OVER, Phase.REJECTED, Phase.AWAITING_APPROVAL):
        return None
    if record.change is not None or record.phase is Phase.APPROVED:
        return Purpose.DELIVER
    if record.is_member:
        return Purpose.CHECK
    if record.phase is Phase.SEEN and record.refusal is None:
        return Purpose.ONBOARD
    return None

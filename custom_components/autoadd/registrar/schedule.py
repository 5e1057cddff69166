"""Who is tried next: the attempts waiting for a slot, in two classes, and the slots they run in.

Anyone on the network can announce as many device ids as it likes, each pointing at a dead host or a tar
pit. So attempts wait here as entries (not tasks), and devices this home owns or owes something (a delivery,
an approval) are always taken before new candidates: a flood of announcements can delay a known device by
at most the attempts already running, and some slots are kept for known devices at their proven address
only, so in practice not at all. Device ids are public, so a known id announced at another address comes
after those but before strangers. Waiting candidates are capped: a host that feeds announcements asks
`room_for_candidates` first and holds the rest back until an attempt ends (discovery.py does); one that
does not has the oldest waiting candidate dropped (it is tried again when it announces again).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum

from .record import Address, DeviceRecord, Phase

#: Attempts at once, and how many of them only devices this home owns or owes may use.
MAX_CONCURRENT = 8
RESERVED_FOR_KNOWN = 2
#: Candidates waiting for a slot; beyond it the oldest waiting candidate is dropped.
MAX_WAITING_CANDIDATES = 64


class Urgency(IntEnum):
    """An attempt's class: lower goes first."""

    #: A device this home owns, or owes a delivery or an approved onboarding, at the address it proved
    #: (and is not held at because its IDevID answers elsewhere too).
    KNOWN = 0
    #: Such a device announced somewhere else, or never proven anywhere: it may have moved, or anyone may
    #: have announced its id (ids are public), so it goes before strangers but never takes the slots
    #: kept for KNOWN.
    MOVED = 1
    #: Anything else: an announcement nothing proven stands behind yet.
    CANDIDATE = 2


def owned_or_owed(record: DeviceRecord | None) -> bool:
    """Whether this home owns the device, or owes it a delivery or an approved onboarding."""
    return record is not None and (
        record.is_member or record.change is not None or record.phase is Phase.APPROVED
    )


def urgency_of(record: DeviceRecord | None, address: Address) -> Urgency:
    """The class of an attempt at this device and address, from what is stored (the announcement only
    gives the address)."""
    if record is None or not owned_or_owed(record):
        return Urgency.CANDIDATE
    proven = record.address == address and record.clone is None
    return Urgency.KNOWN if proven else Urgency.MOVED


@dataclass(frozen=True, slots=True)
class Waiting:
    """An attempt waiting for a slot."""

    device_id: str
    address: Address
    purpose: str
    urgency: Urgency


class AttemptQueue:
    """Waiting attempts (one per device, the latest wins) and the slots in use per class."""

    def __init__(
        self,
        *,
        slots: int = MAX_CONCURRENT,
        reserved: int = RESERVED_FOR_KNOWN,
        max_waiting: int = MAX_WAITING_CANDIDATES,
    ) -> None:
        """Empty, with every slot free."""
        self.slots, self.reserved, self.max_waiting = slots, reserved, max_waiting
        self._waiting: dict[Urgency, OrderedDict[str, Waiting]] = {u: OrderedDict() for u in Urgency}
        self.running: dict[Urgency, int] = dict.fromkeys(Urgency, 0)

    def __len__(self) -> int:
        """How many attempts wait."""
        return sum(len(waiting) for waiting in self._waiting.values())

    def put(self, entry: Waiting) -> str | None:
        """Queue an attempt (replacing the device's waiting one); returns a candidate dropped to make room."""
        self.discard(entry.device_id)
        waiting = self._waiting[entry.urgency]
        waiting[entry.device_id] = entry
        if entry.urgency is Urgency.CANDIDATE and len(waiting) > self.max_waiting:
            dropped, _ = waiting.popitem(last=False)
            return dropped
        return None

    def waiting(self, device_id: str) -> Waiting | None:
        """The device's waiting attempt, if any."""
        for waiting in self._waiting.values():
            if device_id in waiting:
                return waiting[device_id]
        return None

    def discard(self, device_id: str) -> None:
        """Forget a device's waiting attempt, if any."""
        for waiting in self._waiting.values():
            waiting.pop(device_id, None)

    def room_for_candidates(self) -> bool:
        """Whether one more candidate may wait without another being dropped."""
        return len(self._waiting[Urgency.CANDIDATE]) < self.max_waiting

    def has_room(self, urgency: Urgency) -> bool:
        """Whether an attempt of this class may start now."""
        if sum(self.running.values()) >= self.slots:
            return False
        unreserved = self.running[Urgency.MOVED] + self.running[Urgency.CANDIDATE]
        return urgency is Urgency.KNOWN or unreserved < self.slots - self.reserved

    def take(self) -> Waiting | None:
        """The next attempt to start (its slot taken), known devices first, each class oldest first."""
        for urgency in Urgency:
            waiting = self._waiting[urgency]
            if waiting and self.has_room(urgency):
                _, entry = waiting.popitem(last=False)
                self.running[urgency] += 1
                return entry
        return None

    def occupy(self, urgency: Urgency) -> None:
        """A slot taken by an attempt that did not wait here (one the owner asked for)."""
        self.running[urgency] += 1

    def release(self, urgency: Urgency) -> None:
        """An attempt ended."""
        self.running[urgency] -= 1

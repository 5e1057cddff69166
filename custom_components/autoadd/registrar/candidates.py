"""What is remembered about device ids nothing proven stands behind, and how little.

Anyone on the network can announce any number of ids. Each costs the registrar a few small things: an
in-memory retry timer, a failure count, the digest of what it announced, and (once refused) a stored
record with the refusal, so that it is not retried in a storm. All of these are bounded here: at most
MAX_TRACKED ids in memory and MAX_STORED_REFUSALS refused ones on disk, the oldest forgotten first, and
stored refusals aged out after REFUSAL_KEEP. Forgetting a candidate costs nothing but an earlier retry.
Records with anything this home must keep (a chain, an approval, a change, a membership) are never
candidates, whatever their phase.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING

from .record import DeviceRecord, Phase

if TYPE_CHECKING:
    from .core import Registrar

_LOGGER = logging.getLogger(__name__)

#: Unknown ids followed in memory (retry timers, failure counts, announced TXT digests).
MAX_TRACKED = 256
#: Refused unknown ids kept on disk, and for how long.
MAX_STORED_REFUSALS = 128
REFUSAL_KEEP = timedelta(days=7)


def disposable(record: DeviceRecord) -> bool:
    """A record that holds nothing but a refusal of an id this home never had anything to do with."""
    return (
        record.phase is Phase.SEEN
        and not record.chain
        and record.approval is None
        and record.change is None
        and record.onboarded_at is None
        and not record.claimed
    )


class Tracked:
    """Unknown ids followed in memory, least recently announced first."""

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        """Nothing followed yet."""
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, device_id: object) -> bool:
        """Whether the id is followed."""
        return device_id in self._ids

    def __len__(self) -> int:
        """How many ids are followed."""
        return len(self._ids)

    def touch(self, device_id: str) -> list[str]:
        """Follow an id (again, as the newest); returns the ids dropped to stay within the limit."""
        self._ids[device_id] = None
        self._ids.move_to_end(device_id)
        dropped: list[str] = []
        while len(self._ids) > self.limit:
            oldest, _ = self._ids.popitem(last=False)
            dropped.append(oldest)
        return dropped

    def discard(self, device_id: str) -> None:
        """Stop following an id (it became known, or was forgotten)."""
        self._ids.pop(device_id, None)


def follow(registrar: Registrar, device_id: str) -> None:
    """An id nothing proven stands behind was announced or tried: follow it, forgetting the oldest."""
    record = registrar.state.devices.get(device_id)
    if record is not None and not disposable(record):
        registrar.tracked.discard(device_id)
        return
    for oldest in registrar.tracked.touch(device_id):
        if registrar.is_running(oldest):
            registrar.tracked.touch(oldest)  # never forget what an attempt under way will report on
            continue
        forget(registrar, oldest)


def forget(registrar: Registrar, device_id: str) -> None:
    """Drop everything in memory about an unknown id (its stored refusal, if any, ages out on its own)."""
    registrar.tracked.discard(device_id)
    registrar.queue.discard(device_id)
    registrar.announced_txt.pop(device_id, None)
    registrar.failures.pop(device_id, None)
    registrar.retry_at.pop(device_id, None)
    if cancel := registrar.retries.pop(device_id, None):
        cancel()


def prune_refusals(registrar: Registrar, now: datetime) -> bool:
    """Age out stored refusals of unknown ids and keep the newest MAX_STORED_REFUSALS; True if any went."""
    refused = sorted(
        (r for r in registrar.state.devices.values() if disposable(r) and r.refusal is not None),
        key=lambda record: record.refusal.at if record.refusal else "",
        reverse=True,
    )
    cutoff = (now - REFUSAL_KEEP).isoformat()
    gone = [
        record.device_id
        for index, record in enumerate(refused)
        if (index >= MAX_STORED_REFUSALS or (record.refusal is not None and record.refusal.at < cutoff))
        and not registrar.is_running(record.device_id)  # its attempt will report on it
    ]
    for device_id in gone:
        del registrar.state.devices[device_id]
        registrar.owner.clear_issue("claim", device_id)  # an unassigned device's question goes with it
    if gone:
        _LOGGER.debug("Forgot %d refused unknown device ids", len(gone))
    return bool(gone)

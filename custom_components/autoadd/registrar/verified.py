"""What earlier proofs verified, kept in memory so that a device's next proof checks only what is new.

Only a proof that verified in full (or on top of an entry here) adds an entry: it says which IDevID and
invoice chain bytes were verified against which roots (protocol/known.py). An entry is evidence of
nothing about the device's state; it only saves re-checking signatures over the same bytes. Lost at a
restart, the next proof of each device is verified in full again. Bounded: only devices with a valid
IDevID from a trusted manufacturer get here, but a bound keeps memory flat whatever happens.
"""

from __future__ import annotations

from collections import OrderedDict

from custom_components.autoadd.protocol.known import Known

MAX_VERIFIED = 16384


class VerifiedMemo:
    """The latest `Known` per device id, the least recently used forgotten first."""

    def __init__(self, size: int = MAX_VERIFIED) -> None:
        """Empty."""
        self._size = size
        self._entries: OrderedDict[str, Known] = OrderedDict()

    def get(self, device_id: str) -> Known | None:
        """What the device's last proof verified, if it is remembered."""
        known = self._entries.get(device_id)
        if known is not None:
            self._entries.move_to_end(device_id)
        return known

    def put(self, device_id: str, known: Known) -> None:
        """Remember what a proof of `device_id` verified."""
        self._entries[device_id] = known
        self._entries.move_to_end(device_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        """How many devices are remembered."""
        return len(self._entries)

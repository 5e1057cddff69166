"""The registrar store as it is written: each record encoded as JSON once per change, not once per write.

Every durable step writes the whole store (one file), so without this a home with 1,000 devices encodes
1,000 records for each device it onboards. Here a write encodes only the records touched since they were
last encoded, and takes the others' JSON as it was (orjson fragments, embedded as they are).

What counts as touched: every record named to `touch` (the registrar names each record it changes:
`Registrar.changed`, and the devices of a commit), every record that is a different object than the
one encoded (an undone commit puts copies back), and everything after `touch(None)`. A record changed in
place without being named would keep its old JSON: `tests/registrar/test_stateful.py` checks that what
is on disk after a save equals memory, at every step of random runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .record import DeviceRecord
from .state import RegistrarState


class StoreImage:
    """The JSON of each record as last encoded, and which records must be encoded again."""

    def __init__(self) -> None:
        """Nothing encoded yet: the first write encodes every record."""
        self._encoded: dict[str, tuple[DeviceRecord, orjson.Fragment]] = {}
        self._touched: set[str] = set()
        self._everything = True

    def touch(self, devices: Iterable[str] | None) -> None:
        """These records changed (None: any may have); their JSON is made again at the next write."""
        if devices is None:
            self._everything = True
        else:
            self._touched.update(devices)

    def data(self, state: RegistrarState) -> dict[str, Any]:
        """The store's data for one write, sharing nothing mutable with `state` (it is encoded in
        another thread): records as JSON fragments, the rest (roots, rotation) copied."""
        everything, touched = self._everything, self._touched
        self._everything, self._touched = False, set()
        encoded = self._encoded
        devices: dict[str, orjson.Fragment] = {}
        for device_id, record in state.devices.items():
            known = encoded.get(device_id)
            if everything or known is None or known[0] is not record or device_id in touched:
                known = (record, orjson.Fragment(orjson.dumps(record.as_dict())))
                encoded[device_id] = known
            devices[device_id] = known[1]
        if len(encoded) > len(devices):
            for gone in encoded.keys() - devices.keys():
                del encoded[gone]
        return state.as_dict(devices)

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

from collections.abc import Iterable, Mapping
import operator
from typing import Any

import orjson

from .record import DeviceRecord
from .state import RegistrarState


class StoreImage:
    """The JSON of each record as last encoded, and which records must be encoded again."""

    def __init__(self) -> None:
        """Nothing encoded yet: the first write encodes every record."""
        #: The records encoded, and their JSON, in the order of the state's records.
        self._records: dict[str, DeviceRecord] = {}
        self._json: dict[str, orjson.Fragment] = {}
        self._touched: set[str] = set()
        self._everything = True

    @classmethod
    def of_loaded(cls, state: RegistrarState, stored: Mapping[str, Any]) -> StoreImage:
        """The image of a store just read: each record's JSON is what was read for it (`stored`, its
        "devices" map), so the first write encodes nothing it did not change. Made where the state was
        read (a worker thread), before anything else holds the state."""
        image = cls()
        for device_id, record in state.devices.items():
            image._records[device_id] = record
            image._json[device_id] = orjson.Fragment(orjson.dumps(stored[device_id]))
        image._everything = False
        return image

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
        records = state.devices
        if not everything and self._same_records(records):
            for device_id in touched:
                record = records.get(device_id)
                if record is not None:
                    self._json[device_id] = _encoded(record)
        else:
            self._encode_all(records, everything, touched)
        return state.as_dict(dict(self._json))

    def _same_records(self, records: dict[str, DeviceRecord]) -> bool:
        """Whether `records` holds the very objects encoded, under the same ids, in the same order
        (compared without a Python loop: this runs at every write)."""
        return records.keys() == self._records.keys() and all(
            map(operator.is_, records.values(), self._records.values())
        )

    def _encode_all(self, records: dict[str, DeviceRecord], everything: bool, touched: set[str]) -> None:
        """Records added, removed or put back (an undone commit): every record is looked at, and those
        that are the object encoded and not touched keep their JSON."""
        old_records, old_json = self._records, self._json
        self._records, self._json = {}, {}
        for device_id, record in records.items():
            fresh = everything or device_id in touched or old_records.get(device_id) is not record
            self._records[device_id] = record
            self._json[device_id] = _encoded(record) if fresh else old_json[device_id]


def _encoded(record: DeviceRecord) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(record.as_dict()))

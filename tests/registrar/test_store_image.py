"""The store as written (store_image.py): whatever happens to the records, a write's data is the state as
it is, provided every record changed in place is named; records added, removed or put back as other
objects are found without being named."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings, strategies as st
import orjson

from custom_components.autoadd.registrar.record import DeviceRecord, Phase
from custom_components.autoadd.registrar.state import RegistrarState
from custom_components.autoadd.registrar.store_image import StoreImage

IDS = [f"{index:064x}" for index in range(4)]


def written(image: StoreImage, state: RegistrarState) -> Any:
    """What a write puts on disk, read back."""
    return orjson.loads(orjson.dumps(image.data(state)))


def as_stored(state: RegistrarState) -> Any:
    return orjson.loads(orjson.dumps(state.as_dict()))


steps = st.lists(
    st.tuples(
        st.sampled_from(["change", "add", "remove", "replace", "restore", "write"]), st.sampled_from(IDS)
    ),
    max_size=30,
)


@given(steps=steps, loaded=st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_write_is_the_state_as_it_is(steps: list[tuple[str, str]], loaded: bool) -> None:
    """Random changes (each in-place change named, as the registrar names them), additions, removals,
    records put back as copies, whole snapshots restored; every write equals the state."""
    state = RegistrarState(devices={IDS[0]: DeviceRecord(device_id=IDS[0])})
    image = StoreImage.of_loaded(state, as_stored(state)["devices"]) if loaded else StoreImage()
    snapshot = state.snapshot()
    for count, (step, device_id) in enumerate(steps):
        record = state.devices.get(device_id)
        if step == "change" and record is not None:
            record.model = f"model {count}"
            record.history.append({"at": str(count), "event": "changed"})
            image.touch([device_id])
        elif step == "add" and record is None:
            state.devices[device_id] = DeviceRecord(device_id=device_id, phase=Phase.SEEN)
        elif step == "remove" and record is not None:
            del state.devices[device_id]
        elif step == "replace" and record is not None:
            state.devices[device_id] = copy.deepcopy(record)  # an undone commit puts a copy back
            state.devices[device_id].model = f"put back {count}"
        elif step == "restore":
            state.restore(snapshot)
            snapshot = state.snapshot()
        elif step == "write":
            assert written(image, state) == as_stored(state)
    assert written(image, state) == as_stored(state)


def test_a_loaded_store_is_written_back_as_it_was_read() -> None:
    """Right after loading nothing is encoded again: each record's JSON is the one read."""
    record = DeviceRecord(device_id=IDS[0], model="Lamp")
    stored = as_stored(RegistrarState(devices={IDS[0]: record}))
    stored["devices"][IDS[0]]["model"] = "as read"  # what was read, not what encoding the record gives
    state = RegistrarState.from_dict(stored)
    state.devices[IDS[0]].model = "Lamp"
    image = StoreImage.of_loaded(state, stored["devices"])

    assert written(image, state)["devices"][IDS[0]]["model"] == "as read"
    image.touch([IDS[0]])
    assert written(image, state)["devices"][IDS[0]]["model"] == "Lamp"


def test_a_change_not_named_is_not_written() -> None:
    """The contract the registrar keeps (and the stateful test checks): a change in place is written only
    once the record is named. Named later, it is."""
    state = RegistrarState(devices={IDS[0]: DeviceRecord(device_id=IDS[0])})
    image = StoreImage()
    image.data(state)
    state.devices[IDS[0]].model = "Lamp"

    assert written(image, state)["devices"][IDS[0]]["model"] == ""
    image.touch([IDS[0]])
    assert written(image, state)["devices"][IDS[0]]["model"] == "Lamp"

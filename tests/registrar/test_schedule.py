"""The attempt queue: known devices first, slots kept for them, waiting candidates capped."""

from __future__ import annotations

from custom_components.autoadd.registrar.record import Address, DeviceRecord, Phase
from custom_components.autoadd.registrar.schedule import AttemptQueue, Urgency, Waiting, urgency_of

HERE = Address("192.0.2.1", 80)


def entry(name: str, urgency: Urgency = Urgency.CANDIDATE) -> Waiting:
    return Waiting(name, HERE, "onboard", urgency)


def test_known_devices_start_first_and_have_slots_of_their_own() -> None:
    queue = AttemptQueue(slots=3, reserved=1)
    for name in ("c1", "c2", "c3"):
        queue.put(entry(name))
    assert [queue.take(), queue.take()] == [entry("c1"), entry("c2")]
    assert queue.take() is None  # the last slot is kept for known devices
    queue.put(entry("k1", Urgency.KNOWN))
    assert queue.take() == entry("k1", Urgency.KNOWN)
    assert queue.take() is None  # every slot in use
    queue.release(Urgency.KNOWN)
    queue.put(entry("k2", Urgency.KNOWN))
    assert queue.take() == entry("k2", Urgency.KNOWN)  # before c3, which waited longer
    queue.release(Urgency.CANDIDATE)
    assert queue.take() == entry("c3")


def test_waiting_candidates_are_capped_oldest_dropped() -> None:
    queue = AttemptQueue(slots=1, reserved=0, max_waiting=2)
    assert queue.put(entry("a")) is None
    assert queue.put(entry("b")) is None
    assert queue.put(entry("c")) == "a"
    assert queue.put(entry("k", Urgency.KNOWN)) is None  # known devices are never dropped
    assert len(queue) == 3


def test_one_waiting_attempt_per_device_the_latest_wins() -> None:
    queue = AttemptQueue()
    queue.put(entry("a"))
    queue.put(Waiting("a", HERE, "deliver", Urgency.KNOWN))
    assert len(queue) == 1
    assert queue.take() == Waiting("a", HERE, "deliver", Urgency.KNOWN)
    queue.put(entry("b"))
    queue.discard("b")
    assert queue.take() is None


def test_an_owner_asked_attempt_takes_a_slot_at_once() -> None:
    queue = AttemptQueue(slots=1, reserved=0)
    queue.occupy(Urgency.KNOWN)
    queue.put(entry("a"))
    assert queue.take() is None
    queue.release(Urgency.KNOWN)
    assert queue.take() == entry("a")


def test_the_class_comes_from_what_is_stored() -> None:
    elsewhere = Address("192.0.2.2", 80)
    assert urgency_of(None, HERE) is Urgency.CANDIDATE
    assert urgency_of(DeviceRecord("a"), HERE) is Urgency.CANDIDATE
    assert urgency_of(DeviceRecord("a", phase=Phase.ONBOARDED, address=HERE), HERE) is Urgency.KNOWN
    assert urgency_of(DeviceRecord("a", phase=Phase.ONBOARDED, address=HERE), elsewhere) is Urgency.MOVED
    assert urgency_of(DeviceRecord("a", phase=Phase.APPROVED), HERE) is Urgency.MOVED  # never proven
    held = DeviceRecord("a", phase=Phase.ONBOARDED, address=HERE, clone=elsewhere)
    assert urgency_of(held, HERE) is Urgency.MOVED
    assert urgency_of(DeviceRecord("a", phase=Phase.REJECTED), HERE) is Urgency.CANDIDATE


def test_a_known_id_announced_elsewhere_never_takes_the_kept_slots() -> None:
    """Ids are public: announcing members' ids at tar pits can't hold the slots kept for them."""
    queue = AttemptQueue(slots=3, reserved=1)
    for name in ("m1", "m2", "m3"):
        queue.put(entry(name, Urgency.MOVED))
    queue.put(entry("c1"))
    assert [queue.take(), queue.take()] == [entry("m1", Urgency.MOVED), entry("m2", Urgency.MOVED)]
    assert queue.take() is None
    queue.put(entry("k", Urgency.KNOWN))
    assert queue.take() == entry("k", Urgency.KNOWN)

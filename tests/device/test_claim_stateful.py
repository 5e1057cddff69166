"""The device's claim code lifecycle as a state machine (hypothesis): starts and finishes with right and
wrong codes, restarts, factory resets, the clock moving, and writes that fail at every persisted step.

Invariants: only a finish with the right code claims, and only once; a claim names exactly the owners
sent; the wrong-code count on disk never goes down but for a claim, and grows by one with every finish
whose code was checked, before it is checked; no start is answered while the delay runs; a failed write
changes nothing the device answered with."""

from __future__ import annotations

from pathlib import Path
import tempfile
from unittest.mock import patch

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from autoadd_device import claims, device as device_module
from autoadd_device.claims import write_claim_code
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import write_identity, write_invoice
from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.claim import ClaimRun, claim_delay
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import (
    AlreadyClaimedError,
    ClaimWaitError,
    UnknownSessionError,
    WrongClaimCodeError,
)
from custom_components.autoadd.protocol.keys import fingerprint
from tests.factory import NOW, Manufacturer, fixed_key
from tests.reference_device import FakeClock

SECRET = b"right!!!"
HOMES = [fixed_key(f"stateful claim home {i}") for i in range(2)]
MAKER = Manufacturer.create("Acme")
SPEC = MAKER.make_device("SF0001")


class WriteFailed(OSError):
    """An injected failed write (disk full, power cut before the rename)."""


class ClaimLifecycle(RuleBasedStateMachine):
    """One unassigned reference device, driven through the claim endpoints' logic."""

    @initialize()
    def ship(self) -> None:
        self.folder = Path(tempfile.mkdtemp()) / "SF0001"
        write_identity(self.folder, SPEC.key, [SPEC.cert])
        write_invoice(self.folder, [MAKER.invoice(SPEC, [])])
        write_claim_code(self.folder, format_claim_code(ClaimCode(SPEC.device_id[:3], SECRET)))
        self.clock = FakeClock()
        self.device = ReferenceDevice(self.folder, clock=self.clock)
        self.runs: list[tuple[ClaimRun, bytes, bool, int]] = []  # run, finish body, right code, home
        self.counted = 0  # starts the device answered since the last claim
        self.claimed_by: int | None = None
        self.last_count = self.clock.now
        self.opened_at = self.clock.now

    def _failures(self) -> int:
        path = self.folder / claims.CLAIM_STATE
        if not path.exists():
            return 0
        value = loads(path.read_bytes(), what="t", max_size=64)
        assert isinstance(value, dict)
        count = value["failures"]
        assert isinstance(count, int)
        return count

    @rule(right=st.booleans(), home=st.integers(0, 1))
    def start(self, right: bool, home: int) -> None:
        secret = SECRET if right else b"wrong!!!"
        key = HOMES[home].public_key()
        run = ClaimRun(
            ClaimCode(SPEC.device_id[:3], secret), device_id=SPEC.device_id, home=key, owners=[key]
        )
        before = self._failures()
        waiting = self.clock.now < self.last_count + claim_delay(before)
        try:
            started = self.device.claim_start(run.start)
        except AlreadyClaimedError:
            assert self.claimed_by is not None
            return
        except ClaimWaitError:
            assert waiting
            assert self._failures() == before
            return
        assert not waiting, "a start was answered while the delay ran"
        assert self.claimed_by is None
        assert self._failures() == before  # a start alone counts nothing
        self.opened_at = self.clock.now
        self.runs = [(run, run.finish(started), right, home)]  # a new start closes any other session

    @precondition(lambda self: bool(self.runs))
    @rule(fail_write=st.sampled_from(["none", "every", "the chain"]))
    def finish(self, fail_write: str) -> None:
        run, body, right, home = self.runs.pop()
        before, failures = self.device.chain.links, self._failures()
        expired = self.clock.now >= self.opened_at + 60
        try:
            with _writes_fail(fail_write):
                answer = self.device.claim_finish(body)
        except (UnknownSessionError, AlreadyClaimedError):
            assert expired or self.claimed_by is not None
            assert self._failures() == failures  # refused before the code was looked at
            assert self.device.chain.links == before
            return
        except WrongClaimCodeError:
            assert not right
            assert self._failures() == failures + 1  # counted on disk before it was checked
            self.counted += 1
            self.last_count = self.clock.now
            assert self.device.chain.links == before
            return
        except WriteFailed:
            assert fail_write != "none"
            assert self.device.chain.links == before  # nothing answered, nothing kept
            if fail_write == "every":
                assert self._failures() == failures  # the count failed first: nothing was checked
            else:  # counted, checked (right), then the claim link could not be kept: not claimed
                assert right
                assert self._failures() == failures + 1
                self.counted += 1
                self.last_count = self.clock.now
            return
        assert right
        assert not expired
        assert self.claimed_by is None, "claimed twice"
        self.claimed_by = home
        self.counted = 0
        invoice = verify_chain(self.device.chain.links[:1], roots=None, now=NOW)
        claimed = run.read_link(answer, invoice)
        assert claimed.head.owner_fingerprints == (fingerprint(HOMES[home].public_key()),)

    @rule()
    def restart(self) -> None:
        self.device = ReferenceDevice(self.folder, clock=self.clock)
        self.runs = []  # sessions are in memory only
        self.last_count = max(self.last_count, self.clock.now)  # the wait counts from the restart

    @rule()
    def factory_reset(self) -> None:
        self.device.factory_reset()

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 61.0, 4000.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def claimed_once_with_its_owner(self) -> None:
        if not hasattr(self, "device"):
            return
        owners = self.device.chain.head.owner_fingerprints
        if self.claimed_by is None:
            assert owners == ()
            assert self._failures() == self.counted
        else:
            assert owners == (fingerprint(HOMES[self.claimed_by].public_key()),)
            assert len(self.device.chain.links) == 2


class _writes_fail:
    """Make atomic writes raise while active: none, every one, or only the device state's (the chain)."""

    def __init__(self, which: str) -> None:
        modules = {"none": (), "every": (claims, device_module), "the chain": (device_module,)}[which]
        self._patches = [
            patch.object(m, "write_atomic", side_effect=WriteFailed("injected")) for m in modules
        ]

    def __enter__(self) -> None:
        for p in self._patches:
            p.start()

    def __exit__(self, *exc: object) -> None:
        for p in self._patches:
            p.stop()


ClaimLifecycle.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_claim_lifecycle = ClaimLifecycle.TestCase

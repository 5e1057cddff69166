"""The device's claim code (§14.9): its code, its wrong-code count on disk, and the delay that count sets.

    claim_code   the AACC1 string, only in unassigned stock (or given with --claim-code)
    claim.cbor   {"failures": n}: claim finishes whose code was checked and was wrong. Each is counted
                 on disk before its code is checked (F5), kept by factory reset, and the count is set
                 to 0 once a claim link is on disk.

The delay (Q4) counts from the later of the last counted finish and this process's start, on the
monotonic clock: a restart never shortens it, and the wall clock is never trusted. A start alone counts
nothing: it tells nobody anything about the code.
"""

from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path

from custom_components.autoadd.protocol.chain import VerifiedChain
from custom_components.autoadd.protocol.claim import ClaimResponder, claim_delay
from custom_components.autoadd.protocol.claim_code import ClaimCode, parse_claim_code
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import AutoAddError, ClaimWaitError, MalformedError

from .files import DeviceFileError, write_atomic

CLAIM_CODE = "claim_code"
CLAIM_STATE = "claim.cbor"
_STATE_LIMIT = 64


def read_claim_code(folder: Path) -> ClaimCode | None:
    """The claim code file, if the device has one; a bad one stops the device, naming the file."""
    path = folder / CLAIM_CODE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise DeviceFileError(path, "cannot be read as an AACC1 claim code") from err
    try:
        return parse_claim_code(text)
    except AutoAddError as err:
        raise DeviceFileError(path, f"not a claim code: {err.detail}") from err


def write_claim_code(folder: Path, text: str) -> None:
    """Ship a claim code with an unassigned device (readable by the device only)."""
    write_atomic(folder / CLAIM_CODE, f"{text}\n".encode("ascii"), mode=0o600)


def _read_failures(path: Path) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as err:
        raise DeviceFileError(path, f"cannot be read: {err.strerror}") from err
    try:
        value = loads(data, what="claim state", max_size=_STATE_LIMIT)
        if (
            not isinstance(value, dict)
            or set(value) != {"failures"}
            or not isinstance(value["failures"], int)
        ):
            raise MalformedError("not a map of failures")
    except AutoAddError as err:
        raise DeviceFileError(path, f"corrupt claim state: {err.detail}") from err
    return int(value["failures"])


class ClaimKeeper:
    """One device's claim code runs: Q4-Q5 around the protocol's responder."""

    def __init__(self, folder: Path, code: ClaimCode, device_id: bytes, clock: Callable[[], float]) -> None:
        """Load the wrong-code count; the delay counts from now at least."""
        self._path = folder / CLAIM_STATE
        self._clock = clock
        self.failures = _read_failures(self._path)
        self._since = clock()
        self.responder = ClaimResponder(code, device_id)

    def check_wait(self) -> None:
        """Q4: no start while the delay runs."""
        left = self._since + claim_delay(self.failures) - self._clock()
        if left > 0:
            raise ClaimWaitError(
                "too many wrong claim codes; try again later", retry_after=max(1, math.ceil(left))
            )

    def count(self) -> None:
        """F5: one more wrong code on disk, before the code is checked (a power cut can't forget it)."""
        write_atomic(self._path, dumps({"failures": self.failures + 1}), mode=0o600)
        self.failures += 1
        self._since = self._clock()

    def claimed(self) -> None:
        """After the claim link is on disk: the count starts over (no run is taken again anyway)."""
        write_atomic(self._path, dumps({"failures": 0}), mode=0o600)
        self.failures = 0

    def start(self, body: bytes, chain: VerifiedChain) -> bytes:
        """Q1-Q5."""
        start = self.responder.read_start(body, chain)
        self.check_wait()
        return self.responder.answer_start(start, now=self._clock())

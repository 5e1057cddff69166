"""What the registrar core needs from its host (Home Assistant, or a test): storage, transport, the owner.

The core does no I/O of its own; the host implements these and passes them in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from custom_components.autoadd.protocol.errors import AutoAddError

from .keys import HomeKeys
from .record import DeviceRecord
from .state import RegistrarState


class PersistError(Exception):
    """A durable write failed: the step that needed it is abandoned and nothing it changed is kept."""


class StepError(Exception):
    """A step the owner asked for that cannot be done; `reason` is the translation key shown to them."""

    def __init__(self, reason: str, **placeholders: str) -> None:
        """Keep the translation key and its placeholders."""
        self.reason = reason
        self.placeholders = placeholders
        super().__init__(reason)


class Persistence(Protocol):
    """The two stores. `save_*` return only once the data is on disk (write, fsync, rename) and raise
    PersistError otherwise; `schedule_save` writes the state soon, reporting a failure to the owner."""

    async def save_keys(self, keys: HomeKeys) -> None:
        """Write the private key store durably."""

    async def save_state(self, state: RegistrarState, devices: Collection[str] | None) -> None:
        """Write the registrar store durably; `devices` names the records changed for it (None: any
        may have), besides those named to `schedule_save` since the last write."""

    def schedule_save(self, devices: Collection[str] = ()) -> None:
        """Write the registrar store soon (changes made together are written once); `devices` names the
        records changed (none: only the roots, the rotation, or records removed)."""


class DeviceConnection(Protocol):
    """One device at one address, speaking §9. Errors are AutoAddError; no answer is DeviceUnreachable."""

    async def hello(self, hello: bytes) -> bytes:
        """POST /hello; returns the proof bundle, unverified."""

    async def note(self, note: bytes) -> bytes:
        """POST /note; returns the receipt, unverified."""

    async def links(self, links: list[bytes]) -> None:
        """POST /links."""

    async def root(self) -> bytes:
        """GET /root; returns the root offer, unverified (a device without one answers 404)."""

    async def claim_start(self, start: bytes) -> bytes:
        """POST /claim/start; returns the device's share (§14.9)."""

    async def claim_finish(self, finish: bytes) -> bytes:
        """POST /claim/finish; returns the claim link, unverified."""


type Transport = Callable[[str, int], DeviceConnection]


class DeviceUnreachableError(AutoAddError):
    """The device did not answer in time, or the connection failed: worth trying again later."""

    code = "unreachable"


@dataclass(frozen=True, slots=True)
class Issue:
    """Something the owner must be told: a translation key, the device, and what to show."""

    kind: str
    device_id: str
    placeholders: dict[str, str]
    fixable: bool = False


class Owner(Protocol):
    """What the home owner sees: the device registry, events, repair issues."""

    def device_joined(self, record: DeviceRecord, *, first: bool) -> None:
        """The device is (again) a member of this home."""

    def device_left(self, record: DeviceRecord) -> None:
        """The device is no longer a member (handed over, removed)."""

    def device_updated(self, device_id: str) -> None:
        """Something shown about the device changed."""

    def history(self, record: DeviceRecord, entry: dict[str, str]) -> None:
        """An ownership event was recorded in the device's history."""

    def raise_issue(self, issue: Issue) -> None:
        """Tell the owner (a repair issue)."""

    def clear_issue(self, kind: str, device_id: str) -> None:
        """The issue no longer holds."""


class Scheduler(Protocol):
    """Background work and timers, cancelled when the registrar stops."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run `coro` in the background."""

    def call_later(self, delay: float, action: Callable[[], None]) -> Callable[[], None]:
        """Call `action` after `delay` seconds; returns a cancel function."""


class DeviceSaidError(AutoAddError):
    """The device answered with an error: its own words, never evidence and never shown as ours."""

    code = "device_error"

    def __init__(self, peer_code: str, detail: str) -> None:
        """Keep what the device said."""
        self.peer_code = peer_code
        super().__init__(detail)

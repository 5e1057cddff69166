"""The registrar: schedules attempts, runs the handshake, and applies what the evidence says.

One attempt per device at a time, at most MAX_CONCURRENT at once. An announcement only says where to try
(announcement.py: whether and when it calls for an attempt); the proof decides (verdict.py) and
machine.py moves the record. No answer is retried with back-off; a refusal is remembered and not retried
before its back-off, unless the device announces something new.
Every link this home signs and every key change is on disk before anything is sent (`commit`); other
changes are saved soon after (`changed`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
import contextlib
from datetime import datetime
import logging

from cryptography import x509

from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.errors import AutoAddError, MalformedError
from custom_components.autoadd.protocol.transport import RATE_LIMITED

from . import announcement, candidates, failures, machine, new_manufacturers, reachability, session
from .announcement import TXT_NEWS_MIN, Candidate
from .candidates import Tracked
from .commits import Commits
from .keys import HomeKey, HomeKeys, utcnow
from .machine import Events
from .ports import (
    DeviceSaidError,
    DeviceUnreachableError,
    Issue,
    Owner,
    Persistence,
    PersistError,
    Scheduler,
    Transport,
)
from .record import Address, ChangeKind, DeviceRecord, Phase, txt_digest
from .schedule import MAX_CONCURRENT, AttemptQueue, Urgency, Waiting, owned_or_owed, urgency_of
from .session import Purpose
from .state import RegistrarState
from .verified import VerifiedMemo

_LOGGER = logging.getLogger(__name__)

__all__ = ["MAX_CONCURRENT", "TXT_NEWS_MIN", "Candidate", "Registrar"]

MAX_HISTORY = 200


class Registrar:
    """The home registrar core, over the ports its host provides."""

    def __init__(
        self,
        keys: HomeKeys,
        state: RegistrarState,
        *,
        persistence: Persistence,
        transport: Transport,
        owner: Owner,
        scheduler: Scheduler,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Bind to the loaded keys and state."""
        self.keys = keys
        self.state = state
        self.persistence = persistence
        self.transport = transport
        self.owner = owner
        self.scheduler = scheduler
        self.clock = clock
        #: Whether a device from a manufacturer this home does not trust may ask the owner to trust its
        #: root (new_manufacturers.py); the owner's setting.
        self.ask_about_manufacturers = True
        self.queue = AttemptQueue()
        #: Unknown ids followed in memory, bounded (candidates.py).
        self.tracked = Tracked()
        self.commits = Commits(state, persistence)
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._again: dict[str, tuple[Address, Purpose]] = {}
        self._running: dict[str, tuple[Address, Purpose]] = {}
        self.retries: dict[str, Callable[[], None]] = {}
        #: Where each retry in `retries` will try.
        self.retry_at: dict[str, Address] = {}
        #: Members refused at an address they never proved (anyone can announce their id there): the
        #: back-off for that address only, in memory and bounded; the member's record is not touched.
        self.elsewhere: OrderedDict[tuple[str, Address], tuple[datetime, str]] = OrderedDict()
        self.failures: dict[str, int] = {}
        self.checked: set[str] = set()
        #: Members that stopped answering at their proven address (reachability.py).
        self.unreachable: set[str] = set()
        #: Digest of the TXT record each device last announced (record.txt_digest).
        self.announced_txt: dict[str, str] = {}
        #: Per queued attempt running, the TXT digest it set out with: its refusal answers that record, so a
        #: newer one heard meanwhile is still news.
        self.tried_txt: dict[str, str] = {}
        #: Announcements of news heard while an attempt at the device ran: decided once it ends.
        self._heard: dict[str, Candidate] = {}
        #: What earlier proofs verified, so that a known device's next proof checks only what is new.
        self.verified = VerifiedMemo()
        self._roots: tuple[tuple[str, ...], list[x509.Certificate]] = ((), [])
        self.closed = False
        self.active_handshakes = 0
        self.peak_handshakes = 0
        #: Called whenever an attempt ends: the host may have announcements it held back (`accepts`).
        self.on_room: Callable[[], None] | None = None

    @property
    def home(self) -> HomeKey:
        """The current home key."""
        return self.keys.current

    @property
    def roots(self) -> list[x509.Certificate]:
        """The trusted manufacturer root certificates (parsed once per change of the list)."""
        pems = tuple(root.pem for root in self.state.roots)
        if pems != self._roots[0]:
            self._roots = (pems, [root.certificate() for root in self.state.roots])
        return list(self._roots[1])

    def now(self) -> str:
        """The current time, as stored."""
        return self.clock().isoformat()

    def timestamp(self) -> int:
        """The current time, as signed."""
        return int(self.clock().timestamp())

    @contextlib.asynccontextmanager
    async def talking_to(self, device_id: str) -> AsyncIterator[None]:
        """Held while anything talks to this device: one at a time. The lock is dropped when nobody holds
        or waits for it (one per device at a time, not one per id ever announced), never while a waiter
        still counts on it."""
        lock = self._locks.setdefault(device_id, asyncio.Lock())
        self._lock_users[device_id] = self._lock_users.get(device_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[device_id] -= 1
            if not self._lock_users[device_id]:
                del self._lock_users[device_id]
                del self._locks[device_id]

    # --- persistence and history --------------------------------------------------------------------------

    async def commit[T](self, mutate: Callable[[], T], *, devices: Sequence[str] | None = None) -> T:
        """Apply `mutate` and put the state on disk before returning; if the write fails, memory is
        put back as it was and PersistError raised. `devices` names the only records `mutate` touches
        (then only they are copied to put back, and commits on other devices share one write); None
        means it may touch anything (commits.py)."""
        return await self.commits.commit(mutate, devices)

    @property
    def durable(self) -> set[str]:
        """Devices whose record, with a chain, a durable write has put on disk (loaded ones count too)."""
        return self.commits.durable

    def changed(self, device_id: str) -> None:
        """Something about a device changed that may be saved a little later."""
        self.persistence.schedule_save((device_id,))
        self.owner.device_updated(device_id)

    def tell(self, record: DeviceRecord, events: Events) -> None:
        """Append events to the device's history and tell the owner."""
        for event, detail in events:
            entry = {"at": self.now(), "event": event, **detail}
            record.history.append(entry)
            del record.history[:-MAX_HISTORY]
            self.owner.history(record, entry)
            if event == "change_dropped":  # a co-owner's link made it impossible: the owner must know
                kind = {"rotate": "rotation", "handover": "hand-over", "cancel": "cancel"}[detail["kind"]]
                self.owner.raise_issue(
                    Issue(
                        "change_dropped",
                        record.device_id,
                        {
                            "kind": kind,
                            "model": record.model or "AutoAdd device",
                            "device": record.device_id[:16],
                        },
                    )
                )

    def record(self, device_id: str) -> DeviceRecord:
        """The device's record, made (as SEEN) if there is none."""
        return self.state.devices.setdefault(device_id, DeviceRecord(device_id=device_id))

    # --- start and stop -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Check what is on disk, then try every device this home owes something or should verify."""
        if candidates.prune_refusals(self, self.clock()):
            self.persistence.schedule_save()
        failures.raise_stored_issues(self)  # the grouped security issues are not kept across a restart
        new_manufacturers.raise_waiting(self)
        held = self.keys.held()
        for record in list(self.state.devices.values()):
            self._check_keys(record, held)
            address = record.address or record.hint
            purpose = announcement.at_start(record)
            if address is not None and purpose is not None:
                self._launch(record.device_id, address, purpose)

    def _check_keys(self, record: DeviceRecord, keys: set[bytes]) -> None:
        """A device whose stored chain is this home's but whose keys are all gone: tell the owner.

        The stored chain was verified when it was proved, and `owners` holds its head's owners: when
        that is all this home presents and it holds one of their keys, nothing needs verifying again
        (a set-up with 10,000 devices would otherwise spend seconds re-checking signatures)."""
        if record.phase not in (Phase.ONBOARDED, Phase.CHANGING_OWNER) or not record.chain:
            return
        held = machine.held_links(record)
        if held == record.chain and record.owners and keys & set(record.owners_bytes()):
            return
        if record.change is not None and record.change.kind is ChangeKind.HANDOVER:
            held = held[:-1]  # the hand-over names the buyer; this home must hold a key for its parent
        try:
            chain = verify_chain(held, roots=None, now=self.clock())
        except AutoAddError:
            return
        if self.keys.signer_for(chain.head.owners) is None:
            expected = chain.head.owner_fingerprints[0]
            self.tell(record, machine.key_lost_at_start(record, expected))
            failures.raise_key_lost(self, record)
            self.changed(record.device_id)

    def stop(self) -> None:
        """Stop scheduling; running attempts are cancelled by the host's scheduler."""
        self.closed = True
        for cancel in self.retries.values():
            cancel()
        self.retries.clear()
        self.retry_at.clear()

    # --- announcements ------------------------------------------------------------------------------------

    def accepts(self, device_id: str) -> bool:
        """Whether an announcement of this device is taken now: always when this home owns it or owes
        it something, else while there is room for one more waiting candidate. A host holds back the
        announcements it is refused and offers them again on `on_room`, so that a burst of new devices
        all get their turn and none is dropped."""
        return owned_or_owed(self.state.devices.get(device_id)) or self.queue.room_for_candidates()

    def announce(self, candidate: Candidate) -> None:
        """A device was announced: decide whether an attempt is worth it. Nothing here is evidence."""
        if self.closed:
            return
        device_id = candidate.device_id
        record = self.state.devices.get(device_id)
        if record is not None and record.phase is Phase.BLOCKED:
            return
        address = Address(candidate.host, candidate.port)
        if record is None or candidates.disposable(record):
            candidates.follow(self, device_id)
        if candidate.txt:
            self.announced_txt[device_id] = txt_digest(candidate.txt)
        if record is not None and record.hint != address and not candidates.disposable(record):
            record.hint = address  # a refused unknown id gets no write per announcement
            self.persistence.schedule_save((device_id,))
        purpose = announcement.purpose(  # a member that stopped answering is checked when it is heard
            record,
            candidate,
            address,
            checked=device_id in self.checked and reachability.reachable(self, device_id),
        )
        if purpose is None:
            return
        running = self._running.get(device_id)
        if running is not None:
            if running != (address, purpose) or self.announced_txt.get(device_id, "") != (
                self.tried_txt.get(device_id, "")
            ):
                self._heard[device_id] = candidate  # news the attempt under way may not see
            return  # else the same announcement again (two interfaces): the attempt answers it
        wait = announcement.wait(record, candidate, address, now=self.clock(), held_back=self.elsewhere)
        if wait is None:
            return
        if wait > 0:  # news, but too soon after the refusal: tried once that time has passed
            failures.retry_in(self, device_id, address, purpose, wait)
            return
        self._launch(device_id, address, purpose)

    def try_now(
        self,
        device_id: str,
        purpose: Purpose = Purpose.DELIVER,
        *,
        proven: bool = False,
        at: Address | None = None,
    ) -> None:
        """Try a device at its last proven (else, unless `proven`, announced) address now, whatever its
        back-off; `at`: where it proved itself without being kept (it waited for its manufacturer)."""
        record = self.state.devices.get(device_id)
        address = at or (record and (record.address or (None if proven else record.hint)))
        if not self.closed and address:
            self._launch(device_id, address, purpose)

    # --- scheduling ---------------------------------------------------------------------------------------

    def is_running(self, device_id: str) -> bool:
        """Whether an attempt at the device is under way."""
        return device_id in self._running

    def _launch(self, device_id: str, address: Address, purpose: Purpose) -> None:
        """Queue an attempt (schedule.py decides when it runs); one per device at a time. An attempt at
        the device's proven address is never replaced by one elsewhere (anyone can announce its id)."""
        if self.blocked(device_id):
            return
        record = self.state.devices.get(device_id)
        proven = record.address if record is not None else None
        following = self._next(device_id)
        if proven is not None and address != proven and following is not None and following[0] == proven:
            return
        if purpose is Purpose.CHECK and following is not None:  # never weakens what is owed (its retries)
            purpose = following[1]
        if device_id in self._running:
            self._again[device_id] = (address, purpose)
            return
        urgency = urgency_of(self.state.devices.get(device_id), address)
        dropped = self.queue.put(Waiting(device_id, address, purpose, urgency))
        if dropped is not None:
            _LOGGER.debug(
                "Too many unknown devices waiting: %s is tried when it announces again", dropped[:12]
            )
        self._pump()

    def _next(self, device_id: str) -> tuple[Address, Purpose] | None:
        """Where and why the device's next attempt (waiting, or due after the running one) will be made."""
        if device_id in self._running:
            return self._again.get(device_id)
        waiting = self.queue.waiting(device_id)
        return (waiting.address, Purpose(waiting.purpose)) if waiting is not None else None

    def _pump(self) -> None:
        """Start waiting attempts while there are slots for them."""
        while not self.closed and (entry := self.queue.take()) is not None:
            self._running[entry.device_id] = (entry.address, Purpose(entry.purpose))
            self.tried_txt[entry.device_id] = self.announced_txt.get(entry.device_id, "")
            self.scheduler.spawn(self._run_queued(entry), f"autoadd {entry.purpose} {entry.device_id[:12]}")

    async def _run_queued(self, entry: Waiting) -> None:
        try:
            await self._attempt(entry.device_id, entry.address, Purpose(entry.purpose))
        finally:
            self.queue.release(entry.urgency)
            self._running.pop(entry.device_id, None)
            self.tried_txt.pop(entry.device_id, None)
            again = self._again.pop(entry.device_id, None)
            if again is not None and not self.closed:
                self._launch(entry.device_id, *again)
            heard = self._heard.pop(entry.device_id, None)
            if heard is not None:
                self.announce(heard)  # weighed against what the attempt found (a refusal's back-off)
            self._pump()
            self._room()

    # --- attempts -----------------------------------------------------------------------------------------

    def blocked(self, device_id: str) -> bool:
        """Whether the owner blocked the device: nothing is ever sent to it."""
        record = self.state.devices.get(device_id)
        return record is not None and record.phase is Phase.BLOCKED

    async def attempt(self, device_id: str, address: Address, purpose: Purpose) -> None:
        """An attempt the owner asked for, awaited now (it takes a slot without waiting in the queue)."""
        urgency = Urgency.KNOWN
        self.queue.occupy(urgency)
        try:
            await self._attempt(device_id, address, purpose)
        finally:
            self.queue.release(urgency)
            self._pump()
            self._room()

    def _room(self) -> None:
        if self.on_room is not None and not self.closed:
            self.on_room()

    async def _attempt(self, device_id: str, address: Address, purpose: Purpose) -> None:
        """One attempt, its failures recorded: every outcome, an unexpected one too, is on record."""
        if self.blocked(device_id):
            return
        self.active_handshakes += 1
        self.peak_handshakes = max(self.peak_handshakes, self.active_handshakes)
        try:
            async with self.talking_to(device_id):
                await session.run(self, device_id, address, purpose)
        except DeviceUnreachableError as err:
            reachability.no_answer(self, device_id, address)
            if purpose is not Purpose.CHECK:  # a member that is just offline is tried when it announces
                failures.retry(self, device_id, address, purpose, err)
        except DeviceSaidError as err:
            if err.peer_code == RATE_LIMITED or err.peer_code in session.NEW_SESSION:
                # too fast, or its session went (a hello flood evicts sessions): a retry, not a refusal
                failures.retry(self, device_id, address, purpose, err)
            else:
                failures.refuse(self, device_id, err, address)
        except PersistError as err:
            _LOGGER.error("Device %s: could not store a step, nothing was sent: %s", device_id[:12], err)
            failures.retry(self, device_id, address, purpose, DeviceUnreachableError(str(err)))
        except AutoAddError as err:
            failures.refuse(self, device_id, err, address)
        except Exception as err:
            _LOGGER.debug("Device %s: unexpected %s", device_id[:12], type(err).__name__, exc_info=True)
            failures.refuse(
                self, device_id, MalformedError("the device sent something this home could not read"), address
            )
        else:
            self.failures.pop(device_id, None)
        finally:
            self.active_handshakes -= 1

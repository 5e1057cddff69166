"""The registrar core as a state machine under everything a home network and an unlucky owner do to it.

Simulated devices speak the real protocol; the disk fails and crashes at every persisted step; Home
Assistant restarts, is restored from an older backup, or has the entry removed and added again. After
every step: each device this home owns is reachable with what is on disk (or the owner was told why),
nothing moved on unauthenticated input, the stored chain is a prefix of the device's, and at most one
chain of pending links, never two links on one parent.

Run longer: AUTOADD_HYPOTHESIS_EXAMPLES=2000 scripts/test tests/registrar/test_stateful.py
"""

# ruff: noqa: PT017 - rules of a state machine check an expected refusal's reason and carry on

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
import contextlib
import copy
import datetime as dt
import os
from typing import Any

from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule
import orjson

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.chain import decode_chain, encode_chain, issue_link, verify_chain
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code
from custom_components.autoadd.protocol.const import ContentType, LinkReason
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import KeyType, PublicKey, fingerprint
from custom_components.autoadd.registrar import claims, handover, ownership, restore, rotation
from custom_components.autoadd.registrar.core import Candidate, Registrar
from custom_components.autoadd.registrar.keys import HomeKey, HomeKeys, RecoveryKey
from custom_components.autoadd.registrar.machine import held_links
from custom_components.autoadd.registrar.ports import PersistError, StepError
from custom_components.autoadd.registrar.record import ChangeKind, Phase
from custom_components.autoadd.registrar.state import RegistrarState, TrustedRoot
from custom_components.autoadd.registrar.store_image import StoreImage
from tests.factory import NOW_TS, Manufacturer, fixed_key
from tests.registrar.sim import (
    Clock,
    Crash,
    Disk,
    Network,
    Owner,
    Persistence,
    Scheduler,
    SimDevice,
    reachable,
)

MAKER = Manufacturer.create()
BUYER = fixed_key("buyer")
SELLER = fixed_key("seller")
ROGUE = fixed_key("rogue")
#: The home's recovery key, as its owner keeps it on paper.
RECOVERY = fixed_key("recovery sheet")
MAX_DEVICES = 5


def proven_view(registrar: Registrar, device_id: str) -> object:
    """What only proof may change about a device."""
    record = registrar.state.devices.get(device_id)
    if record is None or (record.phase is Phase.SEEN and not record.chain):
        return None  # (a refusal remembered for an identifier is not a device)
    change = record.change.links if record.change else None
    return (record.phase, record.chain, record.address, change, record.approval, record.owners)


class Home(RuleBasedStateMachine):
    """One Home Assistant with AutoAdd, its disk, its owner, and the devices around it."""

    devices = Bundle("devices")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.disk = Disk()
        self.owner = Owner()
        self.network = Network()
        self.sims: dict[str, SimDevice] = {}
        self.hosts: dict[str, str] = {}
        self.home_publics: dict[bytes, PublicKey] = {}
        self.backups: list[tuple[object, object]] = []
        self.unproven_since_restore: set[str] = set()
        #: Whether the registrar may hold the recovery key's private part (a restore was started).
        self.restoring = False
        #: Devices with no record on disk when the owner destroyed a key (they chose; the step says so).
        self.unknown_when_a_key_went: set[str] = set()
        self.transfers: dict[str, bytes] = {}
        #: Unassigned devices this home claimed with the right code.
        self.claimed: set[str] = set()
        self.boots = 0
        self.registrar: Registrar
        self.scheduler: Scheduler
        self.persistence: Persistence

    def teardown(self) -> None:
        self.scheduler.cancel_all()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    # --- Home Assistant's side: set-up, restart, crash ------------------------------------------------------

    def run[T](self, coro: Coroutine[Any, Any, T]) -> T | None:
        """Run an owner step and what it started; a crash at any write restarts Home Assistant."""
        try:
            result = self.loop.run_until_complete(coro)
            self.loop.run_until_complete(self.scheduler.settle())
        except Crash:
            self.boot(crashed=True)
            return None
        if self.scheduler.crashed:
            self.boot(crashed=True)
        return result

    def settle(self) -> None:
        self.run(self.scheduler.settle())

    def remember_keys(self) -> None:
        for key in (self.registrar.keys.current, self.registrar.keys.staged):
            if key is not None:
                self.home_publics[key.fingerprint] = key.key.public_key()

    def boot(self, *, crashed: bool) -> None:
        """Stop what runs (a crash loses the unsaved), then set up from disk as async_setup_entry does."""
        if hasattr(self, "registrar"):
            if not crashed:
                with contextlib.suppress(Crash):  # the power went while it shut down
                    self.persistence.flush()
            self.registrar.stop()
            self.scheduler.cancel_all()
            self.loop.run_until_complete(asyncio.sleep(0))
        self.boots += 1
        self.disk.crash_in = 0
        for _ in range(5):  # a failed set-up is retried by Home Assistant (ConfigEntryNotReady)
            try:
                self.loop.run_until_complete(self._set_up())
                break
            except (PersistError, Crash):
                continue
        else:
            raise AssertionError("set-up failed five times with nothing injected")
        self.remember_keys()
        self.loop.run_until_complete(self.scheduler.settle())
        for sim in self.sims.values():  # a starting Home Assistant hears every device on the network
            self.announce(sim)

    async def _set_up(self) -> None:
        assert self.disk.keys is not None
        keys = HomeKeys.from_dict(self.disk.keys)
        state = RegistrarState.from_dict(self.disk.state) if self.disk.state else self.fresh_state()
        self.scheduler = Scheduler(self.loop)
        self.scheduler.clock = self.clock
        self.persistence = Persistence(self.disk)
        self.persistence.state = state
        if self.disk.state:  # as the Home Assistant adapter reads it: each record's JSON as it was read
            self.persistence.image = StoreImage.of_loaded(state, self.disk.state["devices"])
        self.registrar = Registrar(
            keys,
            state,
            persistence=self.persistence,
            transport=self.network.transport,
            owner=self.owner,
            scheduler=self.scheduler,
            clock=self.clock,
        )
        if ownership.restore_kept(self.registrar):
            await self.registrar.commit(lambda: None)
            keys.kept = {}
            await self.persistence.save_keys(keys)
        await rotation.resume_rotation(self.registrar)
        self.registrar.start()

    @staticmethod
    def fresh_state() -> RegistrarState:
        return RegistrarState(roots=[TrustedRoot.from_certificate(MAKER.root, MAKER.name)])

    @initialize()
    def install(self) -> None:
        self.disk.keys = HomeKeys(HomeKey.generate(KeyType.ED25519, self.clock())).as_dict()
        self.boot(crashed=False)

    # --- devices --------------------------------------------------------------------------------------------

    def place(self, sim: SimDevice) -> SimDevice:
        host = f"10.0.0.{len(self.sims) + 1}"
        self.sims[sim.device_id] = sim
        self.hosts[sim.device_id] = host
        self.network.at[host] = sim
        return sim

    def announce(self, sim: SimDevice, host: str | None = None) -> None:
        if sim.online:
            candidate = Candidate(
                sim.device_id, host or self.hosts[sim.device_id], 80, sim.owner is not None, {"sv": "1"}
            )
            self.registrar.announce(candidate)
            self.settle()
            self.unproven_since_restore.discard(sim.device_id)

    def handed_in(self, serial: str) -> SimDevice:
        """A device another home owned and handed to this home by pushing the link."""
        sim = SimDevice.made(MAKER, serial, [SELLER.public_key()], self.clock)
        link = issue_link(
            signer=SELLER,
            head=sim.chain.head,
            owners=[self.registrar.home.key.public_key()],
            reason=LinkReason.HANDOVER,
            issued_at=NOW_TS + 1,
        )
        sim.take_links([link])
        return sim

    @rule(
        target=devices,
        kind=st.sampled_from(["bought", "bought_before_a_rotation", "handed_in", "neighbour", "unassigned"]),
    )
    def switch_on_new_device(self, kind: str) -> SimDevice:
        serial = f"SN{len(self.sims):04d}"
        if len(self.sims) >= MAX_DEVICES:
            return next(iter(self.sims.values()))
        if kind == "bought":  # the shop names what the home key string names (the recovery key too)
            sim = SimDevice.made(MAKER, serial, self.registrar.keys.owner_keys(), self.clock)
        elif kind == "bought_before_a_rotation":  # the invoice names the first home key (kept or destroyed)
            sim = SimDevice.made(MAKER, serial, [next(iter(self.home_publics.values()))], self.clock)
        elif kind == "handed_in":
            sim = self.handed_in(serial)
        elif kind == "unassigned":  # sold with no owner; its claim code is printed on it (§14.9)
            code = ClaimCode(MAKER.make_device(serial).device_id[:3], b"printed!")
            sim = SimDevice.made(MAKER, serial, [], self.clock, code=code)
        else:
            sim = SimDevice.made(MAKER, serial, [ROGUE.public_key()], self.clock)
        self.announce(self.place(sim))
        return sim

    @rule(sim=devices)
    def device_announces(self, sim: SimDevice) -> None:
        self.announce(sim)

    @rule(sim=devices)
    def device_goes_offline(self, sim: SimDevice) -> None:
        sim.online = False

    @rule(sim=devices)
    def device_comes_online(self, sim: SimDevice) -> None:
        sim.online = True
        self.announce(sim)

    @rule(sim=devices)
    def device_factory_reset(self, sim: SimDevice) -> None:
        sim.factory_reset()
        self.announce(sim)

    @rule(sim=devices, where=st.sampled_from(["its_address", "elsewhere"]), claimed=st.booleans())
    def impostor_announces(self, sim: SimDevice, where: str, claimed: bool) -> None:
        """Someone else answers for the device (at its address, or announcing it at their own)."""
        impostor = SimDevice.made(MAKER, "SN9999", [ROGUE.public_key()], self.clock)
        host = self.hosts[sim.device_id] if where == "its_address" else "10.0.9.9"
        before, boots = proven_view(self.registrar, sim.device_id), self.boots
        real = self.network.at.get(host)
        self.network.at[host] = impostor
        try:
            self.registrar.announce(Candidate(sim.device_id, host, 80, claimed, {"sv": "2"}))
            self.settle()
        finally:
            if real is not None:
                self.network.at[host] = real
            else:
                del self.network.at[host]
        if self.boots == boots:  # (a crash injected meanwhile reloads what was on disk)
            assert proven_view(self.registrar, sim.device_id) == before

    # --- the owner's steps ----------------------------------------------------------------------------------

    def owner_step[T](self, step: Coroutine[Any, Any, T], allowed: set[str]) -> T | None:
        """An owner step: it works, or it fails with one of the expected reasons."""
        try:
            return self.run(step)
        except StepError as err:
            assert err.reason in allowed, err.reason
            self.settle()
            return None

    @rule(destroy=st.booleans())
    def rotate_home_key(self, destroy: bool) -> None:
        if destroy:
            self.note_unknown_devices()
        before = self.registrar.state.snapshot()
        failing = self.disk.failing
        try:
            self.loop.run_until_complete(rotation.rotate_home_key(self.registrar, destroy_old=destroy))
        except StepError as err:
            assert err.reason in {"rotation_in_progress", "storage_failed", "rotation_unfinished"}
            if err.reason == "storage_failed":
                assert failing, "a rotation failed to store without an injected failure"
                assert self.registrar.state.as_dict() == before.as_dict()
        except Crash:
            self.boot(crashed=True)
            return
        self.remember_keys()
        self.settle()

    @rule(sim=devices, deliver=st.sampled_from(["push", "file"]))
    def hand_over(self, sim: SimDevice, deliver: str) -> None:
        if deliver == "file":
            sim.online, was_online = False, sim.online
        result = self.owner_step(
            handover.hand_over(self.registrar, sim.device_id, BUYER.public_key()),
            {"unknown_device", "handover_in_progress", "not_owner", "key_lost", "storage_failed"},
        )
        if deliver == "file":
            sim.online = was_online
        if result is not None:
            self.transfers[sim.device_id] = result.transfer

    @rule(sim=devices)
    def hand_over_to_own_key(self, sim: SimDevice) -> None:
        record = self.registrar.state.devices.get(sim.device_id)
        if record is None or not record.is_member or not self.home_publics:
            return
        before = proven_view(self.registrar, sim.device_id)
        known = self.registrar.keys.fingerprints()  # (a key an older backup never held is a stranger's)
        for public in (key for fp, key in self.home_publics.items() if fp in known):
            try:
                self.loop.run_until_complete(handover.hand_over(self.registrar, sim.device_id, public))
            except StepError as err:
                assert err.reason in {"own_key", "handover_in_progress", "not_owner", "key_lost"}, err.reason
            else:
                raise AssertionError("a hand-over to one of this home's own keys was signed")
        assert proven_view(self.registrar, sim.device_id) == before

    @rule(sim=devices)
    def buyer_uses_transfer_file(self, sim: SimDevice) -> None:
        """The buyer's home pushes the links from the file to the device."""
        data = self.transfers.get(sim.device_id)
        if data is None:
            return
        links = decode_chain(data)
        try:
            sim.take_links(list(links[len(sim.chain.links) :]))
        except Exception:
            return
        self.announce(sim)

    def with_change(self, kind: ChangeKind | None = None) -> list[SimDevice]:
        """Devices with a pending change (of `kind`), to make the rules about them likely."""
        records = self.registrar.state.devices
        return [
            sim
            for device_id, sim in self.sims.items()
            if (change := getattr(records.get(device_id), "change", None)) is not None
            and (kind is None or change.kind is kind)
        ]

    @precondition(lambda self: bool(self.with_change(ChangeKind.HANDOVER)))
    @rule(data=st.data())
    def cancel_a_pending_hand_over(self, data: st.DataObject) -> None:
        sim = data.draw(st.sampled_from(self.with_change(ChangeKind.HANDOVER)))
        self.cancel_hand_over(sim)

    @precondition(lambda self: bool(self.with_change()))
    @rule(data=st.data())
    def pending_device_returns(self, data: st.DataObject) -> None:
        sim = data.draw(st.sampled_from(self.with_change()))
        sim.online = True
        self.announce(sim)

    @precondition(lambda self: bool(self.with_change(ChangeKind.HANDOVER)) and self.transfers != {})
    @rule(data=st.data())
    def buyer_delivers_a_pending_hand_over(self, data: st.DataObject) -> None:
        self.buyer_uses_transfer_file(data.draw(st.sampled_from(self.with_change(ChangeKind.HANDOVER))))

    @rule(sim=devices)
    def cancel_hand_over(self, sim: SimDevice) -> None:
        self.owner_step(
            handover.cancel_hand_over(self.registrar, sim.device_id),
            {"no_handover", "already_taken", "not_owner", "storage_failed"},
        )

    def awaiting(self) -> list[SimDevice]:
        records = self.registrar.state.devices
        return [
            sim
            for device_id, sim in self.sims.items()
            if getattr(records.get(device_id), "phase", None) is Phase.AWAITING_APPROVAL
        ]

    @precondition(lambda self: bool(self.awaiting()))
    @rule(data=st.data(), accept=st.booleans())
    def owner_decides(self, data: st.DataObject, accept: bool) -> None:
        sim = data.draw(st.sampled_from(self.awaiting()))
        (ownership.approve if accept else ownership.reject)(self.registrar, sim.device_id)
        self.settle()

    @rule()
    def accept_transfer_file(self) -> None:
        """A seller hands a device to this home by file; the device still holds the seller's chain."""
        if len(self.sims) >= MAX_DEVICES:
            return
        sim = self.place(SimDevice.made(MAKER, f"SN{len(self.sims):04d}", [SELLER.public_key()], self.clock))
        sim.owner = fingerprint(SELLER.public_key())
        link = issue_link(
            signer=SELLER,
            head=sim.chain.head,
            owners=[self.registrar.home.key.public_key()],
            reason=LinkReason.HANDOVER,
            issued_at=NOW_TS + 1,
        )
        transfer = ownership.read_transfer(self.registrar, encode_chain([*sim.chain.links, link]))
        ownership.accept_transfer(self.registrar, transfer)
        self.settle()
        self.announce(sim)

    @rule(sim=devices)
    def seller_cancels(self, sim: SimDevice) -> None:
        """The seller keeps the device after all (before this home delivered the file's link)."""
        if fingerprint(SELLER.public_key()) not in sim.head_owners:
            return
        sim.take_links(
            [
                issue_link(
                    signer=SELLER,
                    head=sim.chain.head,
                    owners=[SELLER.public_key()],
                    reason=LinkReason.ROTATE,
                    issued_at=NOW_TS + len(sim.chain.links),
                )
            ]
        )
        self.announce(sim)

    def stock(self) -> list[SimDevice]:
        return [sim for sim in self.sims.values() if sim.code is not None]

    @precondition(lambda self: bool(self.stock()))
    @rule(data=st.data(), right=st.booleans())
    def owner_types_the_claim_code(self, data: st.DataObject, right: bool) -> None:
        """The owner types the code printed on the device (or mistypes its secret: the checksum of a
        typo is caught before anything is sent, so this is a wrong code that passes its checksum)."""
        sim = data.draw(st.sampled_from(self.stock()))
        assert sim.code is not None
        code = sim.code if right else ClaimCode(sim.code.hint, b"guessed!")
        before = proven_view(self.registrar, sim.device_id)
        try:
            result = self.run(claims.claim(self.registrar, format_claim_code(code)))
            if result is None:  # Home Assistant crashed at a write: before the finish, or in the attempt
                if right and sim.head_owners:
                    self.claimed.add(sim.device_id)
                assert right or not sim.head_owners
                return
        except PersistError:  # the verified claim could not be written: the device names this home
            assert right  # (and is asked about when next heard, as one that named it by itself)
            self.claimed.add(sim.device_id)
            self.settle()
            return
        except AutoAddError as err:
            code_of = getattr(err, "peer_code", err.code)
            assert code_of in {"no_device_for_code", "wrong_claim_code", "already_claimed", "unreachable"}, (
                code_of
            )
            event(f"claim refused: {code_of}")
            if code_of == "wrong_claim_code":
                assert not right
                assert sim.head_owners == set()
                assert proven_view(self.registrar, sim.device_id) == before  # nothing moved
            self.settle()
            return
        if result is not None and not result.ran:  # it named this home already: no code was run
            assert sim.device_id in self.claimed
            return
        assert right, "a wrong claim code claimed the device"
        self.claimed.add(sim.device_id)
        event(f"claimed: {'added' if sim.owner is not None else 'not added yet'}")

    @rule(sim=devices)
    def remove_device(self, sim: SimDevice) -> None:
        ownership.remove(self.registrar, sim.device_id)
        self.settle()

    # --- the disk and Home Assistant itself -----------------------------------------------------------------

    @rule(count=st.integers(1, 3))
    def writes_fail(self, count: int) -> None:
        self.disk.failing = count

    @rule(count=st.integers(1, 4), landed=st.booleans())
    def crash_at_write(self, count: int, landed: bool) -> None:
        self.disk.crash_in, self.disk.crash_after_write = count, landed

    @rule()
    def debounced_save(self) -> None:
        try:
            written = self.persistence.flush()
        except Crash:
            self.boot(crashed=True)
            return
        if written:  # every change was named to the store, so the JSON kept of each record is current
            assert self.disk.state == orjson.loads(orjson.dumps(self.registrar.state.as_dict()))

    @rule()
    def restart(self) -> None:
        self.boot(crashed=False)

    @rule()
    def power_cut(self) -> None:
        self.boot(crashed=True)

    # --- the recovery key ----------------------------------------------------------------------------------

    @precondition(lambda self: self.registrar.keys.recovery is None)
    @rule()
    def make_recovery_key(self) -> None:
        """The owner prints a recovery key; a rotation names it on every device."""
        before = copy.deepcopy(self.disk.keys)
        made = RecoveryKey(public=RECOVERY.public_key(), created_at=self.clock().isoformat())
        try:
            self.loop.run_until_complete(
                rotation.rotate_home_key(self.registrar, destroy_old=False, recovery=(made,))
            )
        except StepError as err:
            assert err.reason in {"rotation_in_progress", "storage_failed", "rotation_unfinished"}
            if err.reason == "storage_failed":  # nothing signed: no recovery key, in memory or on disk
                assert self.registrar.keys.recovery is None
                assert (self.disk.keys or {}).get("recovery") == (before or {}).get("recovery")
        except Crash:
            self.boot(crashed=True)
            return
        self.remember_keys()
        self.settle()

    @precondition(lambda self: self.registrar.keys.recovery is not None)
    @rule()
    def remove_recovery_key(self) -> None:
        previous = self.registrar.keys.recovery
        try:
            self.loop.run_until_complete(
                rotation.rotate_home_key(self.registrar, destroy_old=False, recovery=(None,))
            )
        except StepError as err:
            assert err.reason in {"rotation_in_progress", "storage_failed", "rotation_unfinished"}
            if err.reason == "storage_failed":
                assert self.registrar.keys.recovery is previous
        except Crash:
            self.boot(crashed=True)
            return
        self.restoring = self.restoring and self.registrar.keys.recovery is not None
        self.remember_keys()
        self.settle()

    @precondition(lambda self: self.registrar.keys.confirmed_recovery() is not None)
    @rule()
    def lose_home_assistant_and_restore(self) -> None:
        """Home Assistant is lost with no backup: a new one, with a new home key, holds the recovery key."""
        self.registrar.stop()
        self.scheduler.cancel_all()
        keys = HomeKeys(HomeKey.generate(KeyType.ED25519, self.clock()))
        restore.hold(keys, RECOVERY)
        self.disk.keys, self.disk.state = keys.as_dict(), None
        self.restoring = True
        self.backups.clear()  # nothing of the lost one is left to restore
        self.boot(crashed=True)
        self.remember_keys()

    @precondition(lambda self: self.restoring)
    @rule()
    def finish_restore(self) -> None:
        try:
            self.loop.run_until_complete(restore.finish_restore(self.registrar))
        except StepError as err:
            assert err.reason in {"storage_failed", "not_restoring"}
            if err.reason == "not_restoring":
                self.restoring = False
            return
        except Crash:
            self.boot(crashed=True)
            return
        self.restoring = False

    @rule(data=st.data())
    def restore_older_backup(self, data: st.DataObject) -> None:
        if not self.backups:
            return
        keys, state = data.draw(st.sampled_from(self.backups))
        self.disk.keys, self.disk.state = keys, state  # type: ignore[assignment]
        # A backup taken during a restore holds the recovery key: restored, the restore runs again.
        self.restoring = bool(((keys or {}).get("recovery") or {}).get("private_pem"))  # type: ignore[attr-defined]
        self.boot(crashed=True)
        self.unproven_since_restore |= {sim.device_id for sim in self.sims.values() if not sim.online}

    @rule()
    def remove_and_add_the_integration(self) -> None:
        """async_remove_entry, then a new entry: what reaches devices stays with the key store."""
        try:
            self.persistence.flush()
        except Crash:
            self.boot(crashed=True)
        self.registrar.stop()
        self.scheduler.cancel_all()
        assert self.disk.keys is not None
        keys = HomeKeys.from_dict(self.disk.keys)
        state = RegistrarState.from_dict(self.disk.state) if self.disk.state else RegistrarState()
        keys.kept = {**keys.kept, **ownership.reachability(state)}
        try:
            self.disk._write("keys", keys.as_dict())
        except (PersistError, Crash):
            pass  # the registrar store is kept
        else:
            self.disk.state = None
        self.boot(crashed=True)

    @rule(hours=st.sampled_from([3, 24 * 31]))
    def time_passes(self, hours: int) -> None:
        if hours > 24 * 30:
            self.note_unknown_devices()
        self.clock.now += dt.timedelta(hours=hours)
        self.scheduler.fire_due()
        rotation.after_confirmation(self.registrar)  # (Home Assistant's twice-daily check)
        self.settle()

    def note_unknown_devices(self) -> None:
        state = self.disk.state or {}
        kept = (self.disk.keys or {}).get("kept", {})
        for device_id in self.sims:
            record = state.get("devices", {}).get(device_id) or kept.get(device_id)
            if not record or not record.get("chain"):
                self.unknown_when_a_key_went.add(device_id)

    # --- what must hold after every step --------------------------------------------------------------------

    @invariant()
    def never_locked_out(self) -> None:
        if not hasattr(self, "registrar"):
            return
        self.backups.append(self.disk.image())
        del self.backups[:-6]
        assert self.disk.keys is not None
        keys = HomeKeys.from_dict(self.disk.keys)
        state = RegistrarState.from_dict(self.disk.state) if self.disk.state else RegistrarState()
        known = keys.fingerprints()
        for sim in self.sims.values():
            if not sim.head_owners & set(self.home_publics) or sim.device_id in (
                self.unproven_since_restore | self.unknown_when_a_key_went
            ):
                continue
            if getattr(self.registrar.state.devices.get(sim.device_id), "phase", None) is Phase.REMOVED:
                continue  # the owner let it go; it is heard again (and told about) when reset
            if not any(set(head.owner_fingerprints) & known for head in sim.chain.history):
                continue  # taken in after the backup, under a key it never knew: nothing says it is ours
            if fingerprint(RECOVERY.public_key()) in sim.head_owners:
                continue  # the owner's printed recovery key reaches it (a restore moves it, §14.8)
            assert reachable(sim, keys, state) or self.owner.told("key_lost", sim.device_id), (
                f"{sim.device_id[:12]} is owned by this home but unreachable with what is on disk"
            )

    @invariant()
    def the_recovery_key_is_on_disk_only_while_restoring(self) -> None:
        recovery = (self.disk.keys or {}).get("recovery") or {}
        assert recovery.get("private_pem") is None or self.restoring

    @invariant()
    def a_restore_link_names_the_home_key_and_the_recovery_key_only(self) -> None:
        for sim in self.sims.values():
            for link in sim.chain.links[1:]:
                obj = cose.parse(link, ContentType.LINK, max_size=16384, what="link")
                if obj.kid == fingerprint(RECOVERY.public_key()):
                    owners = verify_chain(
                        sim.chain.links[: sim.chain.links.index(link) + 1], roots=None, now=self.clock()
                    )
                    assert owners.head.owner_fingerprints[1:] == (fingerprint(RECOVERY.public_key()),)
                    assert owners.head.owner_fingerprints[0] in self.home_publics

    @invariant()
    def only_the_right_code_claims_and_names_this_home(self) -> None:
        for sim in self.sims.values():
            if sim.code is None or len(sim.chain.history) < 2:
                continue
            assert sim.device_id in self.claimed
            claim = sim.chain.history[1]
            assert claim.reason is LinkReason.CLAIM
            assert claim.owner_fingerprints[0] in self.home_publics
            assert set(claim.owner_fingerprints[1:]) <= {fingerprint(RECOVERY.public_key())}

    @invariant()
    def stored_chain_is_a_prefix(self) -> None:
        if not hasattr(self, "registrar"):
            return
        for device_id, record in self.registrar.state.devices.items():
            sim = self.sims.get(device_id)
            if sim is not None and record.chain:
                assert tuple(record.chain) == sim.chain.links[: len(record.chain)]

    @invariant()
    def one_line_of_pending_links(self) -> None:
        if not hasattr(self, "registrar"):
            return
        for record in self.registrar.state.devices.values():
            if record.change is not None:
                verify_chain(held_links(record), roots=None, now=self.clock())


Home.TestCase.settings = settings(
    max_examples=int(os.environ.get("AUTOADD_HYPOTHESIS_EXAMPLES", "60")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRegistrarLifecycle = Home.TestCase


class HomeWithStock(Home):
    """The same home, whose first device is unassigned stock waiting for its claim code (§14.9), so that
    claims meet every other step (crashes, failed writes, rotations, restores) in most examples."""

    @initialize()
    def install(self) -> None:
        super().install()
        self.switch_on_new_device("unassigned")


HomeWithStock.TestCase.settings = Home.TestCase.settings
TestRegistrarLifecycleWithStock = HomeWithStock.TestCase

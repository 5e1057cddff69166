"""One attempt at a device: hello and proof, the verdict, and what follows it (a note, a push, or
recording what the proof showed). Everything learnt here comes from a proof or a receipt."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from enum import StrEnum
import functools
import logging
from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.chain import VerifiedChain
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    NotOwnerError,
    UntrustedManufacturerError,
    WrongDeviceError,
)
from custom_components.autoadd.protocol.handshake import ProvenDevice, RegistrarHandshake

from . import claims, failures, machine, new_manufacturers, reachability
from .ports import DeviceConnection, DeviceSaidError, DeviceUnreachableError
from .record import Address, DeviceRecord, Phase
from .rotation import after_confirmation, sign_rotation_for
from .text import Place, shown
from .verdict import AskOwner, KeyLost, Left, Present, Push, Refuse, Rotate, Unassigned, judge_proof

if TYPE_CHECKING:
    from .core import Registrar

_LOGGER = logging.getLogger(__name__)


class Purpose(StrEnum):
    """Why an attempt is made."""

    ONBOARD = "onboard"
    DELIVER = "deliver"
    CHECK = "check"


#: A proof bundle larger than this (bytes: about ten links) with nothing verified before is checked off
#: the event loop.
OFF_LOOP_SIZE = 8 * 1024

#: Device answers to a note that mean "start a new handshake" (§12).
NEW_SESSION = frozenset({"unknown_session", "chain_head_mismatch"})
MAX_NEW_SESSIONS = 2


async def ask[T](call: Awaitable[T]) -> T:
    """Await a device call; the device's error answers become DeviceSaidError (its words, not ours)."""
    try:
        return await call
    except (DeviceUnreachableError, DeviceSaidError):
        raise
    except AutoAddError as err:
        raise DeviceSaidError(getattr(err, "peer_code", err.code), err.detail) from err


async def prove(
    registrar: Registrar, conn: DeviceConnection, device_id: str, address: Address
) -> tuple[RegistrarHandshake, ProvenDevice]:
    """Hello and proof: the only way to learn anything about a device."""
    session = RegistrarHandshake(registrar.home.key, issued_at=registrar.timestamp())
    bundle: bytes = await ask(conn.hello(session.hello))
    known = registrar.verified.get(device_id)
    read = functools.partial(
        session.read_proof, bundle, roots=registrar.roots, now=registrar.clock(), known=known
    )
    # A long chain seen for the first time is many signature checks (64 links: ~10 ms here, several
    # times that on a small board): checked in a worker thread, so the event loop never waits for it.
    try:
        proven = await asyncio.to_thread(read) if known is None and len(bundle) > OFF_LOOP_SIZE else read()
    except UntrustedManufacturerError as err:
        if type(err) is not UntrustedManufacturerError:  # a counterfeit's chain claims a trusted root
            raise
        proven = await new_manufacturers.offer(
            registrar,
            conn,
            session=session,
            bundle=bundle,
            where=(device_id, address),
            refused=err,
            off_loop=len(bundle) > OFF_LOOP_SIZE,
        )
    if proven.device_id.hex() != device_id:
        raise WrongDeviceError(f"the device announced {device_id[:12]} but proved another identity")
    reachability.proved(registrar, device_id)
    registrar.verified.put(device_id, proven.known)
    return session, proven


async def run(registrar: Registrar, device_id: str, address: Address, purpose: Purpose) -> None:
    """One attempt: prove, decide, and act, starting over where §12 says so."""
    conn = registrar.transport(address.host, address.port)
    sessions = pushes = 0
    while True:
        session, proven = await prove(registrar, conn, device_id, address)
        verdict = judge_proof(registrar.state.devices.get(device_id), proven.chain, registrar.keys)
        if not isinstance(verdict, Refuse) and await _held_elsewhere(registrar, device_id, address):
            return  # the same IDevID answers at another address: nothing is sent until the owner decides
        registrar.checked.add(device_id)
        if isinstance(verdict, Rotate):
            await sign_rotation_for(registrar, device_id, proven.chain, verdict.chain, verdict.signer)
            verdict = judge_proof(registrar.state.devices.get(device_id), proven.chain, registrar.keys)
        if registrar.blocked(device_id):
            return  # blocked during the attempt: nothing more is sent
        if isinstance(verdict, Push) and pushes == 0:
            pushes += 1
            _mark_sent(registrar, device_id)
            try:
                await ask(conn.links(list(verdict.links)))
            except DeviceSaidError as err:
                _LOGGER.info(
                    "Device %s did not take the hand-over (%s)",
                    device_id[:12],
                    shown(err.peer_code, Place.LOG),
                )
            continue  # only a new proof says whether it took them
        if isinstance(verdict, Present):
            try:
                await _onboard(
                    registrar,
                    conn,
                    proved=(session, proven),
                    verdict=verdict,
                    address=address,
                    purpose=purpose,
                )
            except DeviceSaidError as err:
                if err.peer_code in NEW_SESSION and sessions < MAX_NEW_SESSIONS:
                    sessions += 1
                    continue
                raise
            return
        _apply(registrar, device_id, proven, verdict, address)
        return


async def _onboard(
    registrar: Registrar,
    conn: DeviceConnection,
    *,
    proved: tuple[RegistrarHandshake, ProvenDevice],
    verdict: Present,
    address: Address,
    purpose: Purpose,
) -> None:
    session, proven = proved
    record = registrar.state.devices.get(proven.device_id.hex())
    quiet = (
        purpose is Purpose.CHECK
        and not verdict.links
        and record is not None
        and record.is_member
        and record.phase is not Phase.KEY_LOST
    )
    if quiet and record is not None:
        _learn(registrar, record, proven)
        registrar.tell(record, machine.on_check(record, proven.chain, address, registrar.now()))
        failures.clear_tampered(registrar, record)
        registrar.changed(record.device_id)
        return
    if registrar.blocked(proven.device_id.hex()):
        return  # blocked during the attempt: nothing more is sent
    if proven.device_id.hex() not in registrar.durable:
        await registrar.commit(lambda: _remember(registrar, proven), devices=[proven.device_id.hex()])
    if verdict.links:
        _mark_sent(registrar, proven.device_id.hex())
    note = session.make_note(signer=verdict.signer, issued_at=registrar.timestamp(), links=verdict.links)
    receipt: bytes = await ask(conn.note(note))
    session.read_receipt(receipt)
    _joined(registrar, proven, verdict.chain, address)


#: A proof from a second address this soon after one from the device's address means a cloned IDevID.
CLONE_WINDOW = timedelta(minutes=10)


async def _held_elsewhere(registrar: Registrar, device_id: str, address: Address) -> bool:
    """Whether a valid proof from `address` must be ignored because the device is followed elsewhere.

    A device that moves proves itself at its new address and is followed there. One whose IDevID key is
    on two hosts would be followed back and forth, handing this home's messages to whichever answered
    last. So when a device proves itself at a new address soon (CLONE_WINDOW) after proving itself at
    its known one, the known one is asked for a fresh proof too: if it gives one, the key answers at
    both, the address is held where it was and the owner is asked (a repair issue); until then proofs
    from anywhere else change nothing. If it gives none, the device moved. A hold lasts only while the
    kept address still proves it: one that stopped (a relay that quit, a clone switched off) is let go,
    so that no one can hold a device at an address it no longer answers at."""
    record = registrar.state.devices.get(device_id)
    if record is None or record.address is None or address == record.address:
        return False
    held = record.clone is not None
    seen = record.last_seen
    if not held and (not seen or registrar.clock() - datetime.fromisoformat(seen) >= CLONE_WINDOW):
        return False
    known = record.address
    try:
        await prove(registrar, registrar.transport(known.host, known.port), device_id, known)
    except AutoAddError:
        record = registrar.state.devices.get(device_id)
        if held and record is not None and record.clone is not None:
            registrar.tell(record, machine.on_clone_gone(record, registrar.now()))
            registrar.owner.clear_issue("clone", device_id)
        return False  # nothing proves it at the old address any more: it moved
    record = registrar.state.devices.get(device_id)
    if record is None or record.address != known or record.clone is not None:
        return record is not None and record.clone is not None
    registrar.tell(record, machine.on_clone(record, address, registrar.now()))
    failures.raise_clone(registrar, record)
    registrar.changed(device_id)
    return True


def _remember(registrar: Registrar, proven: ProvenDevice) -> None:
    """Before a note makes the device this home's: its record, with the chain it proved, is on disk, so
    that a crash right after can't make a later rotation forget it (and destroy the key it trusts)."""
    record = registrar.record(proven.device_id.hex())
    if not record.chain:
        record.chain = list(proven.chain.links)


def _learn(registrar: Registrar, record: DeviceRecord, proven: ProvenDevice) -> None:
    identity = proven.identity
    record.manufacturer = identity.manufacturer
    record.model = proven.chain.model or identity.model or "AutoAdd device"
    record.serial_number = identity.serial_number
    record.manufacturer_root = identity.issuer.root_fingerprint.hex()


def _mark_sent(registrar: Registrar, device_id: str) -> None:
    record = registrar.state.devices.get(device_id)
    if record is not None and record.change is not None and not record.change.sent:
        record.change.sent = True
        registrar.changed(device_id)


def _joined(registrar: Registrar, proven: ProvenDevice, chain: VerifiedChain, address: Address) -> None:
    record = registrar.record(proven.device_id.hex())
    _learn(registrar, record, proven)
    was_member = record.is_member
    first = record.onboarded_at is None
    events = machine.on_receipt(record, chain, address, registrar.now())
    if record.is_member:  # in the registry first: its history events then link to the device
        registrar.owner.device_joined(record, first=first or not was_member)
    registrar.tell(record, events)
    registrar.owner.clear_issue("approve", record.device_id)
    registrar.owner.clear_issue("key_lost", record.device_id)
    registrar.owner.clear_issue(claims.ISSUE, record.device_id)
    failures.clear_tampered(registrar, record)
    failures.clear_counterfeit(registrar, record)
    if record.is_member and (not was_member or first):
        _LOGGER.info(
            "Onboarded %s %s (%s)",
            shown(record.manufacturer, Place.LOG),
            shown(record.model, Place.LOG),
            record.device_id[:12],
        )
    registrar.failures.pop(record.device_id, None)
    registrar.changed(record.device_id)
    after_confirmation(registrar)


def _apply(
    registrar: Registrar,
    device_id: str,
    proven: ProvenDevice,
    verdict: Left | KeyLost | AskOwner | Unassigned | Refuse | Push | Rotate,
    address: Address,
) -> None:
    record = registrar.record(device_id)
    _learn(registrar, record, proven)
    now = registrar.now()
    if not isinstance(verdict, Unassigned):
        registrar.owner.clear_issue(claims.ISSUE, device_id)  # it has owners now: no code to ask for
    if isinstance(verdict, Left):
        was_member = record.is_member
        registrar.tell(record, machine.on_left(record, proven.chain, address, now))
        if was_member and not record.is_member:
            registrar.owner.device_left(record)
        after_confirmation(registrar)
    elif isinstance(verdict, KeyLost):
        registrar.tell(record, machine.on_key_lost(record, proven.chain, address, verdict.expected[0], now))
        failures.raise_key_lost(registrar, record)
    elif isinstance(verdict, AskOwner):
        registrar.tell(
            record, machine.on_ask_owner(record, proven.chain, address, verdict.previous_owner, now)
        )
        failures.raise_approval(registrar, record)
    elif isinstance(verdict, Unassigned):
        error = claims.UnassignedError("the device's invoice names no owner: it waits for its claim code")
        failures.refuse(registrar, device_id, error, address, proven=True, proven_not_ours=True)
        claims.noticed(registrar, registrar.record(device_id), address)
        return
    elif isinstance(verdict, Refuse):
        failures.refuse(
            registrar,
            device_id,
            verdict.error,
            address,
            proven=True,
            proven_not_ours=True,
            outdated=verdict.outdated,
        )
        return
    else:  # a push that did not move the device's head: the device keeps refusing the links
        failures.refuse(
            registrar,
            device_id,
            NotOwnerError("the device did not take the links it was sent"),
            address,
            proven=True,
        )
        return
    registrar.changed(device_id)

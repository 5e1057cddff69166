"""A manufacturer this home does not trust yet, made explicit (§14.7): a device whose certificates reach
no trusted root may offer its root (`GET /autoadd/v1/root`); if its whole proof verifies under that root
and its chain names this home, the owner is asked whether to trust the root. Never automatic.

The offer itself proves nothing: anyone can make a root, and a device whose invoice names this home
(home keys are public). What this home verified is the root's own fingerprint and that a device proved,
over this home's fresh nonce, that it holds an IDevID key certified by that root; the name, model and
serial are text under that root, the device's words. So approvals are bounded (MAX_WAITING_ROOTS, each
for WAITING_FOR), a rejection is remembered per root, and the owner can turn the question off.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import functools
import logging
from typing import TYPE_CHECKING, Any
import unicodedata

from cryptography import x509

from custom_components.autoadd.protocol.certificates import (
    certificate_key_fingerprint,
    certificate_to_pem,
    load_pem_certificates,
    read_root_offer,
)
from custom_components.autoadd.protocol.chain import compare_with_known
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    UntrustedManufacturerError,
    WrongDeviceError,
)
from custom_components.autoadd.protocol.handshake import ProvenDevice, RegistrarHandshake
from custom_components.autoadd.protocol.keys import format_fingerprint

from .machine import digest
from .manufacturers import RejectedManufacturerError, UnknownManufacturerError, add_root
from .ports import DeviceConnection, Issue, StepError
from .record import Address
from .text import Place, shown

if TYPE_CHECKING:
    from .core import Registrar

_LOGGER = logging.getLogger(__name__)

#: Roots waiting for the owner's decision at once; a device offering one more is refused as before.
MAX_WAITING_ROOTS = 8
#: Devices remembered per waiting root (tried at once when it is approved; others when they announce).
MAX_DEVICES_PER_ROOT = 16
#: The repair issue's kind: one issue per waiting root, filed under its fingerprint.
ISSUE = "manufacturer"
#: The issue raised while MAX_WAITING_ROOTS wait (filed under FULL_ID).
FULL = "manufacturers_full"
FULL_ID = "waiting"
#: A root waits this long for the owner at most; then it is dropped (a device offering it asks again).
WAITING_FOR = timedelta(days=30)
#: Rejections remembered (the oldest forgotten first).
MAX_REJECTED_ROOTS = 256
#: Device text kept per waiting root (name, model, serial), in characters.
MAX_TEXT = 128


#: The local codes of this module (never sent; a newly trusted root answers them, manufacturers.py).
CODES = frozenset({UnknownManufacturerError.code, RejectedManufacturerError.code})


async def offer(
    registrar: Registrar,
    conn: DeviceConnection,
    *,
    session: RegistrarHandshake,
    bundle: bytes,
    where: tuple[str, Address],
    refused: UntrustedManufacturerError,
    off_loop: bool = False,
) -> ProvenDevice:
    """The proof failed with `refused` (no trusted root, none claimed): ask the device for its root and, if
    the proof verifies under it for this home, ask the owner (O1-O9). Raises `refused` itself when the
    offer changes nothing, else why the device waits; returns the proof only when the root was trusted
    meanwhile (O6), or when the chain names no owner yet (unassigned stock: its claim code is asked
    for, and its root only once the device names this home). `where`: the device id it announced and
    the address the attempt is at; `off_loop`: verify in a worker thread (a long chain)."""
    device_id, address = where
    if not registrar.ask_about_manufacturers:
        raise refused  # O1
    try:
        cert = read_root_offer(await conn.root())  # O1-O5
    except AutoAddError as err:
        _LOGGER.debug("Device %s offers no usable root: %s", device_id[:12], err.code)
        raise refused from None
    root = certificate_key_fingerprint(cert).hex()
    state = registrar.state
    if root in state.revoked_roots:
        raise refused  # O6: the owner revoked it
    if any(known.fingerprint == root for known in state.roots):  # O6: trusted meanwhile (or re-issued)
        return await _read(session, bundle, registrar.roots, registrar.clock(), off_loop=off_loop)
    if root in state.rejected_roots:
        raise RejectedManufacturerError("the owner rejected this device's manufacturer")  # O7
    try:
        proven = await _read(session, bundle, [cert], registrar.clock(), off_loop=off_loop)  # O8
        if proven.device_id.hex() != device_id:
            raise WrongDeviceError("the device proved another identity than it announced")
        record = state.devices.get(device_id)
        compare_with_known([digest(link) for link in record.chain] if record else [], proven.chain.digests)
    except AutoAddError as err:
        _LOGGER.debug("Device %s: its proof fails under the root it offers: %s", device_id[:12], err.code)
        raise refused from None
    if not proven.chain.head.owners:
        return proven  # O9: unassigned stock asks for its claim code first (§14.9); its root once it is ours
    if not set(proven.chain.head.owner_fingerprints) & registrar.keys.with_recovery():
        raise refused  # O9: not this home's device; its owner's registrar may ask
    _wait(registrar, cert, proven, address)
    raise UnknownManufacturerError("the device's manufacturer waits for the owner's approval")


async def _read(
    session: RegistrarHandshake,
    bundle: bytes,
    roots: list[x509.Certificate],
    now: datetime,
    *,
    off_loop: bool,
) -> ProvenDevice:
    read = functools.partial(session.read_proof, bundle, roots=roots, now=now)
    return await asyncio.to_thread(read) if off_loop else read()


def _expire(registrar: Registrar) -> None:
    """Waiting roots older than WAITING_FOR are dropped: a flood of made-up roots blocks new ones for that
    long at most."""
    now = registrar.clock()
    for root, entry in list(registrar.state.waiting_roots.items()):
        if now - datetime.fromisoformat(entry["at"]) > WAITING_FOR:
            del registrar.state.waiting_roots[root]
            registrar.owner.clear_issue(ISSUE, root)
    _raise_full(registrar)


def _raise_full(registrar: Registrar) -> None:
    """One issue while the waiting roots are at their cap: new manufacturers are refused meanwhile."""
    if len(registrar.state.waiting_roots) >= MAX_WAITING_ROOTS:
        registrar.owner.raise_issue(Issue(FULL, FULL_ID, {"count": str(MAX_WAITING_ROOTS)}))
    else:
        registrar.owner.clear_issue(FULL, FULL_ID)


def _capped(text: str) -> str:
    return text[:MAX_TEXT]


def _wait(registrar: Registrar, cert: x509.Certificate, proven: ProvenDevice, address: Address) -> None:
    root = certificate_key_fingerprint(cert).hex()
    _expire(registrar)
    waiting = registrar.state.waiting_roots
    device_id = proven.device_id.hex()
    entry = waiting.get(root)
    if entry is None:
        if len(waiting) >= MAX_WAITING_ROOTS:
            _LOGGER.debug("Device %s offers a root; %d already wait", device_id[:12], len(waiting))
            raise UntrustedManufacturerError("too many manufacturers wait for the owner's approval")
        identity = proven.identity
        entry = {
            "name": _capped(identity.manufacturer),
            "pem": certificate_to_pem(cert).decode(),
            "model": _capped(proven.chain.model or identity.model or "AutoAdd device"),
            "serial": _capped(identity.serial_number or device_id[:8]),
            "devices": {},
            "at": registrar.now(),
        }
        waiting[root] = entry
        _LOGGER.info(
            "Device %s comes from a manufacturer this home does not trust (%s); the owner is asked",
            device_id[:12],
            shown(entry["name"], Place.LOG),
        )
    if device_id in entry["devices"] or len(entry["devices"]) < MAX_DEVICES_PER_ROOT:
        entry["devices"][device_id] = address.as_dict()  # where it proved itself
    registrar.persistence.schedule_save()
    raise_manufacturer(registrar, root)
    _raise_full(registrar)


def _folded(name: str) -> str:
    """A name as a look-alike would match it: compatibility forms and case folded, only letters and
    digits kept (so "ACME", "Acme " and "Ac\u200bme" are one name)."""
    return "".join(char for char in unicodedata.normalize("NFKC", name).casefold() if char.isalnum())


def placeholders(registrar: Registrar, root: str) -> dict[str, str]:
    """What the owner decides on: the manufacturer's name, model and serial (the device's words), the
    root's fingerprint and how many devices wait (what this home verified), and whether a trusted or
    another waiting root has a name that reads the same."""
    state = registrar.state
    entry = state.waiting_roots[root]
    names = [known.name for known in state.roots] + [
        other["name"] for key, other in state.waiting_roots.items() if key != root
    ]
    same_name = any(_folded(name) == _folded(entry["name"]) for name in names)
    count = len(entry["devices"])
    return {
        "manufacturer": entry["name"],
        "manufacturer_root": format_fingerprint(bytes.fromhex(root)),
        "model": entry["model"],
        "serial_number": entry["serial"],
        "count": str(count) if count < MAX_DEVICES_PER_ROOT else f"{count} or more",
        "when": entry["at"][:16].replace("T", " ") + " UTC",
        "same_name": "yes" if same_name else "no",
    }


def raise_manufacturer(registrar: Registrar, root: str) -> None:
    """The approval repair issue of a waiting root."""
    registrar.owner.raise_issue(Issue(ISSUE, root, placeholders(registrar, root), fixable=True))


def raise_waiting(registrar: Registrar) -> None:
    """At start: the approvals still waiting (those too old dropped)."""
    _expire(registrar)
    for root in registrar.state.waiting_roots:
        raise_manufacturer(registrar, root)


def _waiting(registrar: Registrar, root: str) -> dict[str, Any]:
    entry = registrar.state.waiting_roots.get(root)
    if entry is None:
        raise StepError("no_longer_waiting")
    return entry


def approve_root(registrar: Registrar, root: str) -> None:
    """The owner trusts the offered root: it is added like any manufacturer, and the devices that offered
    it are tried now."""
    entry = _waiting(registrar, root)
    cert = load_pem_certificates(entry["pem"].encode())[0]
    add_root(registrar, cert, entry["name"])  # it stops waiting there (as when the owner adds it by hand)
    for device_id, address in entry["devices"].items():
        registrar.try_now(device_id, at=Address(str(address["host"]), int(address["port"])))


def reject_root(registrar: Registrar, root: str) -> None:
    """The owner rejects the offered root: its devices are refused, and it is not asked about again
    (adding the root by hand, Configure → Add manufacturer, undoes this)."""
    entry = _waiting(registrar, root)
    state = registrar.state
    del state.waiting_roots[root]
    state.rejected_roots[root] = {"name": entry["name"], "at": registrar.now()}
    while len(state.rejected_roots) > MAX_REJECTED_ROOTS:  # the oldest rejection goes first
        del state.rejected_roots[next(iter(state.rejected_roots))]
    registrar.owner.clear_issue(ISSUE, root)
    _raise_full(registrar)
    for device_id in entry["devices"]:
        record = state.devices.get(device_id)
        if record is not None and record.refusal is not None and record.refusal.code in CODES:
            record.refusal.code = RejectedManufacturerError.code
            record.refusal.detail = "the owner rejected this device's manufacturer"
            registrar.changed(device_id)
    registrar.persistence.schedule_save()

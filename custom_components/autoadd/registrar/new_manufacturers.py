"""A manufacturer this home does not trust yet, made explicit (§14.7): a device whose certificates reach
no trusted root may offer its root (`GET /autoadd/v1/root`); if its whole proof verifies under that root
and its chain names this home, the owner is asked whether to trust the root. Never automatic.

The offer itself proves nothing: anyone can make a root, and a device whose invoice names this home
(home keys are public). What the owner sees is what this home verified: the root's own fingerprint, and
the model and serial of a device that proved, over this home's fresh nonce, that it holds an IDevID key
certified by that root. So approvals are bounded (MAX_WAITING_ROOTS), a rejection is remembered per root,
and the owner can turn the question off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography import x509

from custom_components.autoadd.protocol.certificates import (
    certificate_key_fingerprint,
    certificate_to_pem,
    load_pem_certificates,
    read_root_offer,
)
from custom_components.autoadd.protocol.chain import compare_with_known
from custom_components.autoadd.protocol.errors import AutoAddError, UntrustedManufacturerError
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
) -> NoReturn:
    """The proof failed with `refused` (no trusted root, none claimed): ask the device for its root and, if
    the proof verifies under it for this home, ask the owner (O1-O9). Always raises: `refused` itself
    when the offer changes nothing, else why the device waits. `where`: the device id it announced and
    the address the attempt is at."""
    device_id, address = where
    if not registrar.ask_about_manufacturers:
        raise refused  # O1
    try:
        cert = read_root_offer(await conn.root())  # O2-O5
    except AutoAddError:
        raise refused from None  # no offer, or not a root: nothing to ask about
    root = certificate_key_fingerprint(cert).hex()
    state = registrar.state
    if root in state.revoked_roots or any(known.fingerprint == root for known in state.roots):
        raise refused  # O6: the owner revoked it (or trusts this key under another certificate)
    if root in state.rejected_roots:
        raise RejectedManufacturerError("the owner rejected this device's manufacturer")  # O7
    try:
        proven = session.read_proof(bundle, roots=[cert], now=registrar.clock())  # O8
        record = state.devices.get(device_id)
        compare_with_known([digest(link) for link in record.chain] if record else [], proven.chain.digests)
    except AutoAddError:
        raise refused from None
    if not set(proven.chain.head.owner_fingerprints) & registrar.keys.fingerprints():
        raise refused  # O9: not this home's device; its owner's registrar may ask
    _wait(registrar, cert, proven, address)
    raise UnknownManufacturerError("the device's manufacturer waits for the owner's approval")


def _wait(registrar: Registrar, cert: x509.Certificate, proven: ProvenDevice, address: Address) -> None:
    root = certificate_key_fingerprint(cert).hex()
    waiting = registrar.state.waiting_roots
    device_id = proven.device_id.hex()
    entry = waiting.get(root)
    if entry is None:
        if len(waiting) >= MAX_WAITING_ROOTS:
            _LOGGER.debug("Device %s offers a root; %d already wait", device_id[:12], len(waiting))
            raise UntrustedManufacturerError("too many manufacturers wait for the owner's approval")
        identity = proven.identity
        entry = {
            "name": identity.manufacturer,
            "pem": certificate_to_pem(cert).decode(),
            "model": proven.chain.model or identity.model or "AutoAdd device",
            "serial": identity.serial_number or device_id[:8],
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
    raise_manufacturer(registrar, root)
    registrar.persistence.schedule_save()


def placeholders(registrar: Registrar, root: str) -> dict[str, str]:
    """What the owner decides on: the manufacturer's name (its words), the root's fingerprint, the first
    device's model and serial (its words), how many wait, and whether a trusted root has the same name."""
    entry = registrar.state.waiting_roots[root]
    same_name = [known.name for known in registrar.state.roots if known.name == entry["name"]]
    return {
        "manufacturer": entry["name"],
        "manufacturer_root": format_fingerprint(bytes.fromhex(root)),
        "model": entry["model"],
        "serial_number": entry["serial"],
        "count": str(len(entry["devices"])),
        "when": entry["at"][:16].replace("T", " ") + " UTC",
        "same_name": "yes" if same_name else "no",
    }


def raise_manufacturer(registrar: Registrar, root: str) -> None:
    """The approval repair issue of a waiting root."""
    registrar.owner.raise_issue(Issue(ISSUE, root, placeholders(registrar, root), fixable=True))


def raise_waiting(registrar: Registrar) -> None:
    """At start: the approvals still waiting."""
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
        registrar.try_at(device_id, Address(str(address["host"]), int(address["port"])))


def reject_root(registrar: Registrar, root: str) -> None:
    """The owner rejects the offered root: its devices are refused, and it is not asked about again
    (adding the root by hand, Configure → Add manufacturer, undoes this)."""
    entry = _waiting(registrar, root)
    state = registrar.state
    del state.waiting_roots[root]
    state.rejected_roots[root] = {"name": entry["name"], "at": registrar.now()}
    registrar.owner.clear_issue(ISSUE, root)
    for device_id in entry["devices"]:
        record = state.devices.get(device_id)
        if record is not None and record.refusal is not None and record.refusal.code in CODES:
            record.refusal.code = RejectedManufacturerError.code
            registrar.changed(device_id)
    registrar.persistence.schedule_save()

"""When an attempt fails: back-off for no answer, a remembered refusal otherwise, and what the owner
is told (a repair issue only for what this home verified itself, never for a device's own words)."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.errors import AutoAddError, NotOwnerError, WrongManufacturerRootError
from custom_components.autoadd.protocol.keys import format_fingerprint

from . import candidates, machine
from .ports import DeviceSaidError, Issue
from .record import Address, DeviceRecord, Phase, Refusal
from .text import Place, shown

if TYPE_CHECKING:
    from .core import Registrar
    from .session import Purpose

_LOGGER = logging.getLogger(__name__)

RETRY_BASE = 15.0
RETRY_MAX = 15 * 60.0
REFUSAL_BACKOFF = timedelta(hours=1)


def approval_placeholders(record: DeviceRecord) -> dict[str, str]:
    """What the owner decides an approval on: the device (its words), who handed it over, under which
    manufacturer root, where and when it proved that (UTC, as stored; "-" when not known: approvals
    asked before 0.2.0 kept neither)."""
    assert record.approval is not None
    address = record.address  # where it proved itself (an announced address proves nothing)
    return {
        "manufacturer": record.manufacturer,
        "model": record.model or "AutoAdd device",
        "serial_number": record.serial_number or record.device_id[:8],
        "device": record.device_id[:16],
        "previous_owner": format_fingerprint(bytes.fromhex(record.approval.previous_owner)),
        "manufacturer_root": format_fingerprint(bytes.fromhex(record.manufacturer_root))
        if record.manufacturer_root
        else "-",
        "address": f"{address.host} port {address.port}" if address else "-",
        "when": record.approval.at[:16].replace("T", " ") + " UTC" if record.approval.at else "-",
    }


def raise_approval(registrar: Registrar, record: DeviceRecord) -> None:
    assert record.approval is not None
    registrar.owner.raise_issue(
        Issue(
            "approve",
            record.device_id,
            approval_placeholders(record),
            fixable=True,
        )
    )


def raise_clone(registrar: Registrar, record: DeviceRecord) -> None:
    """The device's IDevID answered at two addresses: the owner chooses which one is followed."""
    assert record.address is not None
    assert record.clone is not None
    registrar.owner.raise_issue(
        Issue(
            "clone",
            record.device_id,
            {
                "model": record.model or "AutoAdd device",
                "device": record.device_id[:16],
                "kept": f"{record.address.host} port {record.address.port}",
                "other": f"{record.clone.host} port {record.clone.port}",
            },
            fixable=True,
        )
    )


def raise_key_lost(registrar: Registrar, record: DeviceRecord) -> None:
    registrar.owner.raise_issue(
        Issue(
            "key_lost",
            record.device_id,
            {
                "model": record.model or "AutoAdd device",
                "device": record.device_id[:16],
                "expected": format_fingerprint(bytes.fromhex(record.lost_key)) if record.lost_key else "",
            },
        )
    )


def retry(
    registrar: Registrar, device_id: str, address: Address, purpose: Purpose, err: AutoAddError
) -> None:
    record = registrar.state.devices.get(device_id)
    if record is None or candidates.disposable(record):
        candidates.follow(registrar, device_id)
        if device_id not in registrar.tracked:
            return  # forgotten at once (a flood): tried again when it announces again
    failures = registrar.failures.get(device_id, 0) + 1
    registrar.failures[device_id] = failures
    delay = min(RETRY_BASE * 2 ** (failures - 1), RETRY_MAX)
    if failures == 1:  # a warning for a device this home knows; a flood of fake ids is no log flood
        _LOGGER.log(
            logging.WARNING if record is not None and not candidates.disposable(record) else logging.DEBUG,
            "Device %s at %s:%s did not answer (%s); retrying with back-off",
            device_id[:12],
            shown(address.host, Place.LOG),
            address.port,
            err.code,
        )

    retry_in(registrar, device_id, address, purpose, delay)


def retry_in(registrar: Registrar, device_id: str, address: Address, purpose: Purpose, delay: float) -> None:
    """Try the device at `address` in `delay` seconds (replacing a retry already set for it, unless that
    one is at the device's proven address and this one is not: anyone can announce its id elsewhere)."""
    record = registrar.state.devices.get(device_id)
    proven = record.address if record is not None else None
    if proven is not None and address != proven and registrar.retry_at.get(device_id) == proven:
        return

    def again() -> None:
        registrar.retries.pop(device_id, None)
        registrar.retry_at.pop(device_id, None)
        if not registrar.closed:
            registrar._launch(device_id, address, purpose)

    if old := registrar.retries.pop(device_id, None):
        old()
    if not registrar.closed:
        registrar.retries[device_id] = registrar.scheduler.call_later(delay, again)
        registrar.retry_at[device_id] = address


def refuse(
    registrar: Registrar,
    device_id: str,
    err: AutoAddError,
    address: Address,
    *,
    proven: bool = False,
    proven_not_ours: bool = False,
    outdated: bool = False,
) -> None:
    """Remember a refusal (its back-off grows with each one) and tell the owner what this home verified.

    `proven`: the refusal follows from a proof whose signatures verified (a validly signed rollback or
    fork of a chain this home knows, links the device would not take). Only those can raise the
    security repair issue: anything before a valid proof (a bad signature, garbage, a device's own error
    code) could come from anyone on the network, and is only remembered.

    A member refused at an address it never proved (an impostor announcing its id there) keeps its
    record as it is: only that address is held back, in memory."""
    known = registrar.state.devices.get(device_id)
    if not proven and known is not None and known.is_member and address != known.address:
        _refused_elsewhere(registrar, device_id, err, address)
        return
    record = registrar.record(device_id)
    previous = record.refusal
    attempts = previous.attempts + 1 if previous else 1
    now = registrar.clock()
    code = err.peer_code if isinstance(err, DeviceSaidError) else err.code
    record.refusal = Refusal(
        code=code,
        detail="" if isinstance(err, DeviceSaidError) else err.detail[: Refusal.MAX_DETAIL],
        at=now.isoformat(),
        retry_after=(now + REFUSAL_BACKOFF * min(attempts, 24)).isoformat(),
        attempts=attempts,
        txt_digest=registrar.tried_txt.get(device_id, registrar.announced_txt.get(device_id, ""))
        or (previous.txt_digest if previous else ""),
        by_device=isinstance(err, DeviceSaidError),
    )
    registrar.tell(
        record,
        machine.on_refused(record, record.refusal, proven_not_ours=proven_not_ours, outdated=outdated),
    )
    if outdated:
        registrar.owner.clear_issue("approve", device_id)
        registrar.owner.raise_issue(
            Issue("transfer_outdated", device_id, {"model": record.model, "device": device_id[:16]})
        )
    # A device this home handed over or removed is tried when it is unclaimed (it may come back): that
    # it is someone else's now is no warning.
    gone = (
        known is not None and known.phase in (Phase.HANDED_OVER, Phase.REMOVED) and code == NotOwnerError.code
    )
    if previous is None or previous.code != code:
        _LOGGER.log(
            logging.DEBUG if candidates.disposable(record) or gone else logging.WARNING,
            "Device %s refused: %s%s",
            device_id[:12],
            shown(code, Place.LOG),
            " (the device's own error code)" if isinstance(err, DeviceSaidError) else "",
        )
    if code == WrongManufacturerRootError.code and not isinstance(err, DeviceSaidError):
        _counterfeit(registrar, record, first=previous is None or previous.code != code)
    ours_known = known is not None and known.is_member
    if proven and (err.suspicious or (ours_known and isinstance(err, NotOwnerError) and not proven_not_ours)):
        if ours_known:
            registrar.tell(record, [("tamper_evidence", {"code": code})])
        if TAMPERED not in record.flags:
            record.flags.append(TAMPERED)
        raise_suspicious(registrar)
    if candidates.disposable(record):
        candidates.follow(registrar, device_id)
        if candidates.prune_refusals(registrar, now):
            raise_counterfeit(registrar)  # it may have named some of them
    registrar.changed(device_id)


#: Members' refusals at addresses they never proved, kept in memory.
MAX_ELSEWHERE = 256


def _refused_elsewhere(registrar: Registrar, device_id: str, err: AutoAddError, address: Address) -> None:
    key = (device_id, address)
    code = err.peer_code if isinstance(err, DeviceSaidError) else err.code
    registrar.elsewhere.pop(key, None)
    registrar.elsewhere[key] = (registrar.clock() + REFUSAL_BACKOFF, code)
    while len(registrar.elsewhere) > MAX_ELSEWHERE:
        registrar.elsewhere.popitem(last=False)
    _LOGGER.debug(
        "Device %s: what answered at %s:%s, where it never proved itself, was refused: %s",
        device_id[:12],
        shown(address.host, Place.LOG),
        address.port,
        shown(code, Place.LOG),
    )


#: Flag of a device whose certificates claim a trusted manufacturer root that did not sign them.
COUNTERFEIT = "counterfeit"
#: The counterfeit repair issue is one for all such devices (filed under this `device_id`).
COUNTERFEIT_ID = "devices"


def _counterfeit(registrar: Registrar, record: DeviceRecord, *, first: bool) -> None:
    """A device claimed a trusted manufacturer's root that did not sign its certificates: the owner is
    told once per device (logbook) and in one repair issue naming them all. Only this home's own check
    leads here; anyone can make such a device (the issuer name it needs is public), so the issue is one
    and capped, and an id this home never had anything to do with gets no logbook entry of its own."""
    if first and not candidates.disposable(record):  # an unknown id: only the grouped issue names it
        registrar.tell(record, [("counterfeit", {})])
    if COUNTERFEIT not in record.flags:
        record.flags.append(COUNTERFEIT)
    raise_counterfeit(registrar)


def raise_counterfeit(registrar: Registrar) -> None:
    """One repair issue naming the devices flagged counterfeit (none: it goes away)."""
    flagged = [  # a device the owner blocked is dealt with
        r for r in registrar.state.devices.values() if COUNTERFEIT in r.flags and r.phase is not Phase.BLOCKED
    ]
    if not flagged:
        registrar.owner.clear_issue("counterfeit", COUNTERFEIT_ID)
        return
    named = [f"device {r.device_id[:16]}" for r in flagged[:MAX_NAMED]]
    if len(flagged) > MAX_NAMED:
        named.append(f"{len(flagged) - MAX_NAMED} more")
    registrar.owner.raise_issue(
        Issue("counterfeit", COUNTERFEIT_ID, {"devices": "; ".join(named), "count": str(len(flagged))})
    )


def raise_stored_issues(registrar: Registrar) -> None:
    """At start: the grouped issues for what the stored records are flagged with."""
    raise_counterfeit(registrar)
    raise_suspicious(registrar)


def clear_counterfeit(registrar: Registrar, record: DeviceRecord) -> None:
    """The device proved a chain to a trusted root after all (the owner trusted its real root)."""
    if COUNTERFEIT in record.flags:
        record.flags.remove(COUNTERFEIT)
        raise_counterfeit(registrar)


#: Flag of a device a validly signed proof showed tampered with (rollback, fork, links refused).
TAMPERED = "tampered"
#: The security repair issue is one for all devices: at most this many are named in it.
MAX_NAMED = 10


def raise_suspicious(registrar: Registrar) -> None:
    """One security repair issue naming every device proven tampered with (none: it goes away)."""
    tampered = [r for r in registrar.state.devices.values() if TAMPERED in r.flags]
    if not tampered:
        registrar.owner.clear_issue("suspicious", SUSPICIOUS_ID)
        return
    named = [
        f"{shown(r.model or 'AutoAdd device', Place.NAME, cap=40)} {r.device_id[:16]}"
        for r in tampered[:MAX_NAMED]
    ]
    if len(tampered) > MAX_NAMED:
        named.append(f"{len(tampered) - MAX_NAMED} more")
    registrar.owner.raise_issue(
        Issue(
            "suspicious",
            SUSPICIOUS_ID,
            {
                "devices": "; ".join(named),
                "count": str(len(tampered)),
                "home": format_fingerprint(registrar.home.fingerprint),
            },
        )
    )


def clear_tampered(registrar: Registrar, record: DeviceRecord) -> None:
    """The device proved itself and took this home's note: it is no longer named in the security issue."""
    if TAMPERED in record.flags:
        record.flags.remove(TAMPERED)
        raise_suspicious(registrar)


#: The `device_id` the grouped security issue is filed under (it is about several devices).
SUSPICIOUS_ID = "devices"

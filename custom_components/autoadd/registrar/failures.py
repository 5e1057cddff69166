"""When an attempt fails: back-off for no answer, a remembered refusal otherwise, and what the owner
is told (a repair issue only for what this home verified itself, never for a device's own words)."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.errors import AutoAddError, NotOwnerError
from custom_components.autoadd.protocol.keys import format_fingerprint

from . import machine
from .ports import DeviceSaidError, Issue
from .record import Address, DeviceRecord, Refusal

if TYPE_CHECKING:
    from .core import Registrar
    from .session import Purpose

_LOGGER = logging.getLogger(__name__)

RETRY_BASE = 15.0
RETRY_MAX = 15 * 60.0
REFUSAL_BACKOFF = timedelta(hours=1)


def raise_approval(registrar: Registrar, record: DeviceRecord) -> None:
    assert record.approval is not None
    registrar.owner.raise_issue(
        Issue(
            "approve",
            record.device_id,
            {
                "manufacturer": record.manufacturer,
                "model": record.model,
                "device": record.device_id[:16],
                "previous_owner": format_fingerprint(bytes.fromhex(record.approval.previous_owner), 4),
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
    failures = registrar.failures.get(device_id, 0) + 1
    registrar.failures[device_id] = failures
    delay = min(RETRY_BASE * 2 ** (failures - 1), RETRY_MAX)
    if failures == 1:
        _LOGGER.warning(
            "Device %s at %s:%s did not answer (%s); retrying with back-off",
            device_id[:12],
            address.host,
            address.port,
            err.code,
        )

    def again() -> None:
        registrar.retries.pop(device_id, None)
        if not registrar.closed:
            registrar._launch(device_id, address, purpose)

    if old := registrar.retries.pop(device_id, None):
        old()
    if not registrar.closed:
        registrar.retries[device_id] = registrar.scheduler.call_later(delay, again)


def refuse(
    registrar: Registrar,
    device_id: str,
    err: AutoAddError,
    address: Address,
    *,
    proven_not_ours: bool = False,
    outdated: bool = False,
) -> None:
    known = registrar.state.devices.get(device_id)
    record = registrar.record(device_id)
    previous = record.refusal
    attempts = previous.attempts + 1 if previous else 1
    now = registrar.clock()
    code = err.peer_code if isinstance(err, DeviceSaidError) else err.code
    txt = registrar.announced_txt.get(device_id) or (previous.txt if previous else {})
    record.refusal = Refusal(
        code=code,
        detail="" if isinstance(err, DeviceSaidError) else err.detail,
        at=now.isoformat(),
        retry_after=(now + REFUSAL_BACKOFF * min(attempts, 24)).isoformat(),
        attempts=attempts,
        txt=txt,
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
    if previous is None or previous.code != code:
        _LOGGER.warning("Device %s refused: %s", device_id[:12], code)
    ours_known = known is not None and known.is_member
    if not isinstance(err, DeviceSaidError) and (
        err.suspicious or (ours_known and isinstance(err, NotOwnerError) and not proven_not_ours)
    ):
        if ours_known:
            registrar.tell(record, [("tamper_evidence", {"code": code})])
        registrar.owner.raise_issue(
            Issue(
                "suspicious",
                device_id,
                {
                    "device": device_id[:16],
                    "code": code,
                    "home": format_fingerprint(registrar.home.fingerprint, 4),
                },
            )
        )
    registrar.changed(device_id)

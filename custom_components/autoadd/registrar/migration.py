"""Reading what older releases stored: 0.1.0's maps (store version 1) become one record per device.

Nothing is dropped: every device, pending link, pending hand-over, approval, refusal, block, removal and
history entry of version 1 is carried into a record. 0.1.0 could sign a rotation link and a hand-over link
on the same parent; such a hand-over is kept as superseded (it still counts as taken if the device took
it) and the rotation stays pending, so that the owner hands the device over again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.errors import AutoAddError

from .machine import digest
from .record import (
    Address,
    Approval,
    ChangeKind,
    DeviceRecord,
    PendingChange,
    Phase,
    Refusal,
    b64,
    unb64,
)


class NewerStoreError(Exception):
    """The registrar store was written by a later release: reading it would drop what this one can't
    name, so it is left as it is."""

    def __init__(self, version: int) -> None:
        """Keep the version found."""
        self.version = version
        super().__init__(f"registrar store version {version} is newer than this release reads")


def migrate(version: int, data: dict[str, Any]) -> dict[str, Any]:
    """The version-2 form of a stored registrar state; a newer one (a later release's) is not read."""
    if version > 2:
        raise NewerStoreError(version)
    if version == 2:
        return data
    records: dict[str, DeviceRecord] = {}

    def record(device_id: str) -> DeviceRecord:
        return records.setdefault(device_id, DeviceRecord(device_id=device_id))

    for device_id, old in data.get("devices", {}).items():
        _device(record(device_id), old)
    for device_id, where in data.get("pending", {}).items():
        record(device_id).hint = Address(str(where["host"]), int(where["port"]))
    for device_id, old in data.get("refused", {}).items():
        record(device_id).refusal = Refusal.from_dict(old)
    for device_id, at in data.get("removed", {}).items():
        removed = record(device_id)
        removed.phase = Phase.REMOVED
        removed.history.append({"at": str(at), "event": "removed"})
    for device_id, waiting in data.get("awaiting", {}).items():
        _awaiting(record(device_id), waiting)
    for device_id, approval in data.get("approvals", {}).items():
        approved = record(device_id)
        approved.phase = Phase.APPROVED
        approved.approval = Approval(
            head=approval["head"],
            previous_owner=approval.get("previous_owner", ""),
            at="",
            transfer=[unb64(link) for link in approval.get("links", [])],
        )
    for device_id, head in data.get("rejected", {}).items():
        rejected = record(device_id)
        if rejected.phase is Phase.SEEN:
            rejected.phase = Phase.REJECTED
            rejected.approval = rejected.approval or Approval(head=head, previous_owner="", at="")
    for device_id, block in data.get("blocked", {}).items():
        _block(record(device_id), block, data.get("history", {}).get(device_id, []))
    for device_id, events in data.get("history", {}).items():
        record(device_id).history = [*events, *record(device_id).history]
    return {
        "roots": data.get("roots", []),
        "devices": {device_id: rec.as_dict() for device_id, rec in records.items()},
        "revoked_roots": data.get("revoked_roots", {}),
        "rotation": data.get("rotation"),
        "waiting_roots": {},
        "rejected_roots": {},
    }


def _block(blocked: DeviceRecord, block: dict[str, Any], history: list[dict[str, Any]]) -> None:
    blocked.blocked_from = blocked.phase
    blocked.phase = Phase.BLOCKED
    if not any(event.get("event") == "blocked" for event in history):  # 0.1.0 recorded it already
        blocked.history.append(
            {"at": block.get("at", ""), "event": "blocked", "reason": block.get("reason", "")}
        )


def _device(record: DeviceRecord, old: dict[str, Any]) -> None:
    record.manufacturer = old.get("manufacturer", "")
    record.model = old.get("model", "")
    record.serial_number = old.get("serial_number")
    record.manufacturer_root = old.get("manufacturer_root", "")
    record.chain = [unb64(link) for link in old.get("chain", [])]
    record.owners = list(old.get("owners", []))
    record.onboarded_at = old.get("onboarded_at")
    record.last_seen = old.get("last_seen")
    record.address = Address(str(old["host"]), int(old["port"]))
    record.flags = [flag for flag in old.get("flags", []) if flag != "blocked"]
    record.phase = Phase.ONBOARDED
    pending = [unb64(link) for link in old.get("pending_links", [])]
    at = old.get("onboarded_at") or datetime.now(UTC).isoformat()
    if pending:
        record.change = PendingChange(ChangeKind.ROTATE, pending, at=at, rotation=True)
    handover = old.get("handover")
    if handover:
        link = unb64(handover["link"])
        if _extends(record.chain, [*pending, link]):
            record.change = PendingChange(
                ChangeKind.HANDOVER,
                [*pending, link],
                at=handover.get("at", at),
                new_owner=handover.get("new_owner", ""),
                rotation=bool(pending),
            )
        elif record.change is not None:
            record.change.superseded.append(digest(link).hex())
            record.history.append({"at": at, "event": "handover_superseded", "link": b64(digest(link))})
    if record.change is not None:
        record.phase = Phase.CHANGING_OWNER


def _extends(chain: list[bytes], links: list[bytes]) -> bool:
    try:
        verify_chain([*chain, *links], roots=None, now=datetime.now(UTC))
    except AutoAddError:
        return False
    return True


def _awaiting(record: DeviceRecord, waiting: dict[str, Any]) -> None:
    record.phase = Phase.AWAITING_APPROVAL
    record.manufacturer = waiting.get("manufacturer", "")
    record.model = waiting.get("model", "")
    record.serial_number = waiting.get("serial_number") or None
    record.approval = Approval(head=waiting["head"], previous_owner=waiting["previous_owner"], at="")
    if "host" in waiting:
        record.hint = Address(str(waiting["host"]), int(waiting["port"]))

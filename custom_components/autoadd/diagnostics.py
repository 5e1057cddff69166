"""Diagnostics: what the registrar knows, with nothing private (addresses, chains, serial numbers
redacted). Device ids are given whole, as support needs them; key fingerprints in the one form every
screen shows (§2.3: 8 groups of 4 hex digits). Devices' words (manufacturer, model, TXT values, error
codes) are made safe as plain text: a diagnostics file is read in editors and terminals, where a control
or bidi character would hide or fake what it says."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from . import AutoAddConfigEntry
from .const import DOMAIN
from .protocol.keys import format_fingerprint
from .registrar.record import DeviceRecord, Phase
from .registrar.text import shown_all

TO_REDACT = {"host", "chain", "serial_number", "change", "address", "hint", "approval"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: AutoAddConfigEntry
) -> dict[str, Any]:
    """The registrar's state. The home's private key is never part of it."""
    registrar = entry.runtime_data.registrar
    state = registrar.state
    diagnostics: dict[str, Any] = {
        "home_key": {
            "type": registrar.home.key_type.value,
            "fingerprint": format_fingerprint(registrar.home.fingerprint),
            "created_at": registrar.home.created_at.isoformat(),
        },
        "trusted_manufacturers": [
            {"name": root.name, "fingerprint": _shown(root.fingerprint), "added_on": root.added_on}
            for root in state.roots
        ],
        "devices": [_device(record) for record in state.devices.values() if record.is_member],
        "refused": [
            {
                "device_id": r.device_id,
                "code": r.refusal.code,
                "by_device": r.refusal.by_device,  # the device's own code, not this home's finding
                "detail": r.refusal.detail,
                "at": r.refusal.at,
            }
            for r in state.devices.values()
            if r.refusal is not None and not r.is_member
        ],
        "awaiting_approval": [
            {
                "device_id": r.device_id,
                "manufacturer": r.manufacturer,
                "model": r.model,
                "serial_number": r.serial_number or "",
                "previous_owner": _shown(r.approval.previous_owner) if r.approval else "",
            }
            for r in state.devices.values()
            if r.phase is Phase.AWAITING_APPROVAL
        ],
        "phases": {r.device_id: r.phase.value for r in state.devices.values()},
        "history": {
            r.device_id: [async_redact_data(entry, {"host"}) for entry in r.history]
            for r in state.devices.values()
            if r.history
        },
        "retired_home_keys": [
            {
                "fingerprint": _shown(old.fingerprint),
                "retired_at": old.retired_at,
                "private_key_kept": old.key is not None,
            }
            for old in registrar.keys.retired
        ],
        "kept_for_reachability": len(registrar.keys.kept),
        "rotation": _rotation(state.rotation),
        "revoked_manufacturers": {_shown(digest): revoked for digest, revoked in state.revoked_roots.items()},
        "manufacturers_waiting_for_approval": {
            _shown(digest): {"name": waiting["name"], "at": waiting["at"], "devices": len(waiting["devices"])}
            for digest, waiting in state.waiting_roots.items()
        },
        "rejected_manufacturers": {
            _shown(digest): rejected for digest, rejected in state.rejected_roots.items()
        },
    }
    safe: dict[str, Any] = shown_all(diagnostics)
    return safe


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: AutoAddConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    """One device's record and history, redacted as the entry's diagnostics redact them (the device
    page's "Download diagnostics")."""
    record = next(
        (
            entry.runtime_data.registrar.state.devices.get(identifier)
            for domain, identifier in device.identifiers
            if domain == DOMAIN
        ),
        None,
    )
    if record is None:
        return {"device": None}
    safe: dict[str, Any] = shown_all(
        {
            "device": _device(record),
            "history": [async_redact_data(event, {"host"}) for event in record.history],
        }
    )
    return safe


def _device(record: DeviceRecord) -> dict[str, Any]:
    """A member's record as diagnostics give it."""
    redacted: dict[str, Any] = async_redact_data(
        {
            **record.as_dict(),
            "owners": [_shown(owner) for owner in record.owners],
            "chain_length": len(record.chain),
            "change": record.change.kind.value if record.change else None,
            "change_sent": bool(record.change and record.change.sent),
        },
        TO_REDACT - {"change"},
    )
    return redacted


def _shown(digest: str) -> str:
    """A stored fingerprint (hex) as people see it."""
    return format_fingerprint(bytes.fromhex(digest))


def _rotation(rotation: dict[str, Any] | None) -> dict[str, Any] | None:
    """A rotation under way, its two keys' fingerprints as people see them."""
    if rotation is None:
        return None
    return {**rotation, "old": _shown(rotation["old"]), "new": _shown(rotation["new"])}

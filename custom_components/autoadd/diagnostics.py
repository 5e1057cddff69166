"""Diagnostics: what the registrar knows, with nothing private and identifiers shortened. Devices' words
(manufacturer, model, TXT values, error codes) are made safe as plain text: a diagnostics file is read in
editors and terminals, where a control or bidi character would hide or fake what it says."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from . import AutoAddConfigEntry
from .protocol.keys import format_fingerprint
from .registrar.record import Phase
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
            {"name": root.name, "fingerprint": root.fingerprint, "added_on": root.added_on}
            for root in state.roots
        ],
        "devices": [
            async_redact_data(
                {
                    **record.as_dict(),
                    "chain_length": len(record.chain),
                    "change": record.change.kind.value if record.change else None,
                    "change_sent": bool(record.change and record.change.sent),
                },
                TO_REDACT - {"change"},
            )
            for record in state.devices.values()
            if record.is_member
        ],
        "refused": [
            {"device_id": r.device_id, "code": r.refusal.code, "at": r.refusal.at}
            for r in state.devices.values()
            if r.refusal is not None and not r.is_member
        ],
        "awaiting_approval": [
            {
                "device_id": r.device_id,
                "manufacturer": r.manufacturer,
                "model": r.model,
                "serial_number": r.serial_number or "",
                "previous_owner": r.approval.previous_owner if r.approval else "",
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
                "fingerprint": old.fingerprint,
                "retired_at": old.retired_at,
                "private_key_kept": old.key is not None,
            }
            for old in registrar.keys.retired
        ],
        "kept_for_reachability": len(registrar.keys.kept),
        "rotation": state.rotation,
        "revoked_manufacturers": state.revoked_roots,
    }
    safe: dict[str, Any] = shown_all(diagnostics)
    return safe

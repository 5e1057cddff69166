"""Diagnostics: what the registrar knows, with nothing private and identifiers shortened."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from . import AutoAddConfigEntry
from .protocol.keys import format_fingerprint

TO_REDACT = {"host", "chain", "serial_number", "pending_links", "handover"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: AutoAddConfigEntry
) -> dict[str, Any]:
    """The registrar's state. The home's private key is never part of it."""
    registrar = entry.runtime_data.registrar
    data = registrar.store.data
    return {
        "home_key": {
            "type": registrar.home.key_type.value,
            "fingerprint": format_fingerprint(registrar.home.fingerprint),
            "created_at": registrar.home.created_at.isoformat(),
        },
        "trusted_manufacturers": [
            {"name": root.name, "fingerprint": root.fingerprint, "added_on": root.added_on}
            for root in data.roots
        ],
        "devices": [
            async_redact_data({**vars(record), "chain_length": len(record.chain)}, TO_REDACT)
            for record in data.devices.values()
        ],
        "refused": [vars(refusal) for refusal in data.refused.values()],
        "pending": len(data.pending),
        "removed": len(data.removed),
        "retired_home_keys": [
            {
                "fingerprint": old.fingerprint,
                "retired_at": old.retired_at,
                "private_key_kept": old.key is not None,
            }
            for old in registrar.keys.retired
        ],
        "rotation": data.rotation,
        "awaiting_approval": [
            {k: v for k, v in waiting.items() if k not in ("host", "port")}
            for waiting in data.awaiting.values()
        ],
        "approved_transfers": {device_id: approval["head"] for device_id, approval in data.approvals.items()},
        "rejected_hand_overs": data.rejected,
        "blocked": data.blocked,
        "revoked_manufacturers": data.revoked_roots,
        "history": data.history,
    }

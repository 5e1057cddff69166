"""Logbook entries for AutoAdd events. Their data may be a device's words, or anything an automation fired
under AutoAdd's event types: every value shown is made safe first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_OWNERSHIP
from .registrar.text import Place, shown

OWNERSHIP_MESSAGES = {
    "onboarded": "was added securely by AutoAdd",
    "accepted": "was taken in from its previous owner",
    "approval_requested": "was handed to this home and waits for approval",
    "approved": "was approved by the owner",
    "rejected": "was rejected by the owner",
    "transfer_accepted": "has a transfer file accepted by the owner",
    "rotation_signed": "got a link to the new home key",
    "rotated": "moved to the new home key",
    "handover_signed": "was signed over to a new owner",
    "handover_cancelled": "had its hand-over cancelled",
    "handed_over": "left this home for its new owner",
    "revoked": "lost its manufacturer's trust (revoked)",
    "blocked": "was blocked by the owner",
    "unblocked": "was unblocked by the owner",
    "tamper_evidence": "failed a security check",
    "counterfeit": "was refused: its certificates name a trusted manufacturer's root that did not sign them",
    "key_lost": "is owned by a home key this Home Assistant no longer has",
    "transfer_outdated": "has an outdated transfer file (cancelled, or the chain moved on)",
    "handover_cancel_signed": "had its hand-over cancel sent (not confirmed yet)",
    "change_dropped": "had a pending change dropped: its chain moved on",
    "moved": "proved itself at a new address",
    "removed": "was removed by the owner",
    "kept_across_removal": "was kept across removing AutoAdd (links still to deliver)",
}


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe AutoAdd's events for the logbook: its ownership events, one entry each (the onboarding
    event is for automations: the ownership event `onboarded` is its logbook entry)."""

    @callback
    def describe_ownership(event: Event) -> dict[str, Any]:
        data = event.data
        name = data.get("event", "changed")
        what = (OWNERSHIP_MESSAGES.get(name) if isinstance(name, str) else None) or shown(name, Place.NAME)
        if isinstance(named := data.get("name"), str) and named:
            return {LOGBOOK_ENTRY_NAME: shown(named, Place.NAME), LOGBOOK_ENTRY_MESSAGE: what}
        device = data.get("autoadd_id")
        short = shown(device[:12] if isinstance(device, str) else device, Place.NAME) if device else ""
        return {LOGBOOK_ENTRY_NAME: f"AutoAdd device {short}", LOGBOOK_ENTRY_MESSAGE: what}

    async_describe_event(DOMAIN, EVENT_OWNERSHIP, describe_ownership)

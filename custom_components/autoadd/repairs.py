"""Repair flows: the owner approves or rejects a device another owner handed to this home."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult

from .const import DOMAIN
from .protocol.keys import format_fingerprint
from .registrar.core import Registrar
from .registrar.ownership import approve, reject
from .registrar.record import DeviceRecord, Phase


class ApproveDeviceFlow(RepairsFlow):
    """Accept or reject a handed-over device, after seeing who had it."""

    def __init__(self, registrar: Registrar, device_id: str) -> None:
        """Bind to the device waiting for approval."""
        self._registrar = registrar
        self._device_id = device_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Show the device and the previous owner; offer accept or reject."""
        record = self._waiting()
        if record is None or record.approval is None:
            return self.async_abort(reason="no_longer_waiting")
        return self.async_show_menu(
            step_id="init",
            menu_options=["accept", "reject"],
            description_placeholders={
                "manufacturer": record.manufacturer,
                "model": record.model,
                "serial_number": record.serial_number or "-",
                "device": self._device_id,
                "previous_owner": format_fingerprint(bytes.fromhex(record.approval.previous_owner)),
            },
        )

    def _waiting(self) -> DeviceRecord | None:
        record = self._registrar.state.devices.get(self._device_id)
        return record if record is not None and record.phase is Phase.AWAITING_APPROVAL else None

    async def async_step_accept(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Take the device in: it is onboarded now."""
        if self._waiting() is None:
            return self.async_abort(reason="no_longer_waiting")  # decided meanwhile (another flow, a file)
        approve(self._registrar, self._device_id)
        return self.async_create_entry(data={})

    async def async_step_reject(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Refuse the device; it is not asked about again until its chain changes."""
        if self._waiting() is None:
            return self.async_abort(reason="no_longer_waiting")
        reject(self._registrar, self._device_id)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow for an approval issue."""
    entry = next(
        entry for entry in hass.config_entries.async_entries(DOMAIN) if entry.state is ConfigEntryState.LOADED
    )
    assert data is not None
    return ApproveDeviceFlow(entry.runtime_data.registrar, str(data["device_id"]))

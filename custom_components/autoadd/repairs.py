"""Repair flows: the owner approves or rejects a device another owner handed to this home, or a
manufacturer a device of this home offered, decides where a device whose identity answers at two
addresses is followed, and gives an unassigned device its claim code (claim_steps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

if TYPE_CHECKING:
    # Repair steps return RepairsFlowResult from Home Assistant 2026.10 on (what mypy checks against);
    # 2026.3, the minimum, has no such name and types them FlowResult. Only annotations use it.
    from homeassistant.components.repairs import RepairsFlowResult as FlowResult

from .claim_steps import ClaimDeviceFlow
from .const import DOMAIN
from .registrar import claims, new_manufacturers
from .registrar.core import Registrar
from .registrar.failures import approval_placeholders
from .registrar.ownership import approve, decide_clone, reject
from .registrar.ports import StepError
from .registrar.record import DeviceRecord, Phase
from .registrar.text import placeholders


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
            description_placeholders=placeholders(approval_placeholders(record)),  # device text made safe
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


class ClonedDeviceFlow(RepairsFlow):
    """Keep following a device at its known address, or follow it to the other one."""

    def __init__(self, registrar: Registrar, device_id: str) -> None:
        """Bind to the device whose address is held."""
        self._registrar = registrar
        self._device_id = device_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Show both addresses; offer keep or follow."""
        record = self._registrar.state.devices.get(self._device_id)
        if record is None or record.clone is None or record.address is None:
            return self.async_abort(reason="no_longer_waiting")
        return self.async_show_menu(
            step_id="init",
            menu_options=["keep", "follow"],
            description_placeholders=placeholders(
                {
                    "model": record.model or "AutoAdd device",
                    "device": self._device_id[:16],
                    "kept": f"{record.address.host} port {record.address.port}",
                    "other": f"{record.clone.host} port {record.clone.port}",
                }
            ),
        )

    async def async_step_keep(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Keep the known address."""
        return self._decide(follow_new=False)

    async def async_step_follow(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """The device moved: follow it to the other address."""
        return self._decide(follow_new=True)

    def _decide(self, *, follow_new: bool) -> FlowResult:
        try:
            decide_clone(self._registrar, self._device_id, follow_new=follow_new)
        except StepError as err:
            return self.async_abort(reason=err.reason)
        return self.async_create_entry(data={})


class ApproveManufacturerFlow(RepairsFlow):
    """Trust or reject a manufacturer root a device of this home offered, after seeing what was proven."""

    def __init__(self, registrar: Registrar, root: str) -> None:
        """Bind to the waiting root (its key fingerprint)."""
        self._registrar = registrar
        self._root = root

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Show the root and the device that proved itself under it; offer approve or reject. A root
        named like one already trusted gets the words that say so."""
        if self._root not in self._registrar.state.waiting_roots:
            return self.async_abort(reason="no_longer_waiting")
        shown = new_manufacturers.placeholders(self._registrar, self._root)
        return self.async_show_menu(
            step_id="same_name" if shown["same_name"] == "yes" else "init",
            menu_options=["approve", "reject"],
            description_placeholders=placeholders(shown),  # device text made safe
        )

    async def async_step_same_name(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """The menu of a root named like a trusted one (Home Assistant needs a step for each menu)."""
        return await self.async_step_init(user_input)

    async def async_step_approve(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Trust the root; its waiting devices are tried now."""
        return self._decide(new_manufacturers.approve_root)

    async def async_step_reject(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Reject the root; it is not asked about again."""
        return self._decide(new_manufacturers.reject_root)

    def _decide(self, decide: Callable[[Registrar, str], None]) -> FlowResult:
        try:
            decide(self._registrar, self._root)
        except StepError as err:
            return self.async_abort(reason=err.reason)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow for a fixable issue: an approval, or a device answering at two addresses."""
    entry = next(
        entry for entry in hass.config_entries.async_entries(DOMAIN) if entry.state is ConfigEntryState.LOADED
    )
    assert data is not None
    registrar = entry.runtime_data.registrar
    if issue_id.startswith("clone_"):
        return ClonedDeviceFlow(registrar, str(data["device_id"]))
    if issue_id.startswith(f"{claims.ISSUE}_"):
        return ClaimDeviceFlow(registrar, str(data["device_id"]))
    if issue_id.startswith(f"{new_manufacturers.ISSUE}_"):
        return ApproveManufacturerFlow(registrar, str(data["device_id"]))
    return ApproveDeviceFlow(registrar, str(data["device_id"]))

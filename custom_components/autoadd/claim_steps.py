"""Claim codes in the UI (§14.9): the repair that asks for a waiting device's code, and the options step
that takes a code alone. Both run the claim at once and say what happened in this home's words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
)
import voluptuous as vol

from .options_base import CONF_DEVICE, OptionsSteps, device_label
from .protocol.errors import AutoAddError
from .registrar.claims import Claimed, ClaimedElsewhereError, claim, matching, waiting
from .registrar.core import Registrar
from .registrar.ports import DeviceSaidError, DeviceUnreachableError, PersistError
from .registrar.record import DeviceRecord, Phase
from .registrar.text import placeholders

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlowResult as FlowResult

CONF_CODE = "claim_code"
CODE_SCHEMA = vol.Schema({vol.Required(CONF_CODE): TextSelector()})

#: This home's findings, by code, and the key of the words each is shown with.
ERRORS = {
    "invalid_claim_code_string": "invalid_claim_code",
    "no_device_for_code": "no_device_for_code",
    "ambiguous_claim_code": "ambiguous_claim_code",
    "claim_unproven": "claim_unproven",
    "already_claimed": "already_claimed",
}
#: The codes a device may answer a claim run with (§14.9 Q, F), and their words. Any other code from a
#: device is "claim_failed": a device never gets to choose one of this home's own messages.
DEVICE_ERRORS = {
    "wrong_claim_code": "wrong_claim_code",
    "claim_wait": "claim_wait",
    "already_claimed": "already_claimed",
}


async def run_claim(registrar: Registrar, text: str, device_id: str | None = None) -> Claimed | str:
    """Claim and add the device; the record, or the error key to show (nothing changed then)."""
    try:
        return await claim(registrar, text, device_id)
    except DeviceUnreachableError:
        return "claim_unreachable"
    except DeviceSaidError as err:
        return DEVICE_ERRORS.get(err.peer_code, "claim_failed")
    except ClaimedElsewhereError:
        return "claimed_elsewhere"
    except PersistError:
        return "claim_storage_failed"
    except AutoAddError as err:
        return ERRORS.get(err.code, "claim_failed")


def outcome(claimed: Claimed) -> tuple[str, dict[str, str]]:
    """How a claim ended once the device names this home: added, or why not yet (the attempt's
    refusal); a device that named this home already was not asked about its code."""
    record = claimed.record
    shown = {"device": device_label(record)}
    if not claimed.ran:
        return "already_this_homes", shown
    if record.phase is Phase.ONBOARDED:
        return "claimed", shown
    refusal = record.refusal
    if refusal is None:
        return "claimed_pending", shown
    if refusal.by_device:  # the device's own code is never shown as this home's finding
        return "claimed_device_refused", shown
    return "claimed_not_added", shown | {"code": refusal.code}


class ClaimDeviceFlow(RepairsFlow):
    """The repair of a waiting unassigned device: type or scan its claim code."""

    def __init__(self, registrar: Registrar, device_id: str) -> None:
        """Bind to the waiting device."""
        self._registrar = registrar
        self._device_id = device_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Ask for the code; claim the device with it."""
        record = next((r for r in waiting(self._registrar) if r.device_id == self._device_id), None)
        if record is None:
            return self.async_abort(reason="no_longer_waiting")
        errors: dict[str, str] = {}
        if user_input and CONF_CODE in user_input:  # the repairs API opens the flow with the data
            result = await run_claim(self._registrar, user_input[CONF_CODE], self._device_id)
            if not isinstance(result, str):
                return self.async_create_entry(data={})
            errors["base"] = result
        return self.async_show_form(
            step_id="init",
            data_schema=CODE_SCHEMA,
            errors=errors,
            description_placeholders=placeholders(
                {
                    "manufacturer": record.manufacturer,
                    "model": record.model or "AutoAdd device",
                    "serial_number": record.serial_number or record.device_id[:8],
                }
            ),
        )


class ClaimOptions(OptionsSteps):
    """Configure → Add a device with its claim code."""

    _claim_code: str = ""

    async def async_step_claim_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A code alone: the device it is for must have been seen (switched on, on this network). A code
        that matches two waiting devices asks which one (AutoAdd never guesses: one may be pretending)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await run_claim(self._registrar, user_input[CONF_CODE])
            if not isinstance(result, str):
                return self._finished(*outcome(result))
            if result == "ambiguous_claim_code":
                self._claim_code = user_input[CONF_CODE]
                return await self.async_step_claim_device_pick()
            errors["base"] = result
        count = len(waiting(self._registrar))
        return self.async_show_form(
            step_id="claim_device",
            data_schema=CODE_SCHEMA,
            errors=errors,
            description_placeholders={"waiting": str(count)},
        )

    async def async_step_claim_device_pick(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The devices the code may be for, each with where it proved itself: the owner picks the one in
        front of them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await run_claim(self._registrar, self._claim_code, user_input[CONF_DEVICE])
            if not isinstance(result, str):
                return self._finished(*outcome(result))
            errors["base"] = result
        found = matching(self._registrar, self._claim_code)
        if not found:
            return self._finished("no_longer_waiting")
        options = [
            SelectOptionDict(
                value=r.device_id, label=f"{device_label(r)}, at {r.hint.host if r.hint else '-'}"
            )
            for r in found
        ]
        schema = vol.Schema(
            {vol.Required(CONF_DEVICE): SelectSelector(SelectSelectorConfig(options=options))}
        )
        return self.async_show_form(step_id="claim_device_pick", data_schema=schema, errors=errors)


def _host(record: DeviceRecord) -> str:
    return record.hint.host if record.hint else "-"

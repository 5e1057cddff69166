"""Claim codes in the UI (§14.9): the repair that asks for a waiting device's code, and the options step
that takes a code alone. Both run the claim at once and say what happened in this home's words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.helpers.selector import TextSelector
import voluptuous as vol

from .options_base import OptionsSteps, device_label
from .protocol.errors import AutoAddError
from .registrar.claims import Claimed, ClaimedElsewhereError, claim, waiting
from .registrar.core import Registrar
from .registrar.ports import DeviceSaidError, DeviceUnreachableError
from .registrar.record import Phase
from .registrar.text import placeholders

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlowResult as FlowResult

CONF_CODE = "claim_code"
CODE_SCHEMA = vol.Schema({vol.Required(CONF_CODE): TextSelector()})

#: The code an error is shown with in the form; the device's own words are never shown.
ERRORS = {
    "invalid_claim_code_string": "invalid_claim_code",
    "no_device_for_code": "no_device_for_code",
    "wrong_claim_code": "wrong_claim_code",
    "claim_wait": "claim_wait",
    "already_claimed": "already_claimed",
    "claimed_elsewhere": "claimed_elsewhere",
    "ambiguous_claim_code": "ambiguous_claim_code",
    "claim_unproven": "claim_unproven",
    "unreachable": "claim_unreachable",
}


async def run_claim(registrar: Registrar, text: str, device_id: str | None = None) -> Claimed | str:
    """Claim and add the device; the record, or the error key to show (nothing changed then)."""
    try:
        return await claim(registrar, text, device_id)
    except DeviceUnreachableError:
        return ERRORS["unreachable"]
    except DeviceSaidError as err:
        return ERRORS.get(err.peer_code, "claim_failed")
    except ClaimedElsewhereError:
        return ERRORS["claimed_elsewhere"]
    except AutoAddError as err:
        return ERRORS.get(getattr(err, "peer_code", err.code), "claim_failed")


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
        reason = "it is added when it next shows up"
    elif refusal.by_device:  # the device's own code is never shown as this home's finding
        reason = "the device refused to be added, with an error code of its own"
    else:
        reason = f"AutoAdd's reason: {refusal.code}"
    return "claimed_not_added", shown | {"reason": reason}


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

    async def async_step_claim_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A code alone: the device it is for must have been seen (switched on, on this network)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await run_claim(self._registrar, user_input[CONF_CODE])
            if not isinstance(result, str):
                return self._finished(*outcome(result))
            errors["base"] = result
        count = len(waiting(self._registrar))
        return self.async_show_form(
            step_id="claim_device",
            data_schema=CODE_SCHEMA,
            errors=errors,
            description_placeholders={"waiting": str(count)},
        )

"""The options steps that move a device between homes: handing one over (and cancelling or finishing a
hand-over in progress), and accepting a transfer file from a previous owner."""

from __future__ import annotations

from typing import Any

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    FileSelector,
    FileSelectorConfig,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
)
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .options_base import (
    CONF_DEVICE,
    CONFIRM_SCHEMA,
    OptionsSteps,
    confirm_errors,
    device_label,
    device_select,
)
from .protocol.errors import AutoAddError, HomeKeyStringError, NotOwnerError, UntrustedManufacturerError
from .protocol.home_key import parse_home_keys
from .protocol.keys import PublicKey, fingerprint, format_fingerprint
from .registrar.handover import HandOver, cancel_hand_over, hand_over
from .registrar.ownership import Transfer, accept_transfer, read_transfer, remove
from .registrar.ports import StepError
from .registrar.record import ChangeKind, DeviceRecord, Phase
from .registrar.text import Place, placeholders, shown
from .transfer_view import transfer_link

CONF_NEW_OWNER = "new_owner"
CONF_ACTION = "action"
CONF_FILE = "file"


def read_upload(hass: HomeAssistant, file_id: str) -> bytes:
    """The bytes of a file the owner uploaded (in the executor)."""
    with process_uploaded_file(hass, file_id) as path:
        return path.read_bytes()


def when(iso: str) -> str:
    """A stored time as the owner reads it: local date and minute."""
    moment = dt_util.parse_datetime(iso)
    return dt_util.as_local(moment).strftime("%Y-%m-%d %H:%M") if moment else iso[:16]


class HandOverSteps(OptionsSteps):
    """Hand-overs out of this home and into it."""

    _device_id: str
    _new_owner: tuple[PublicKey, ...]
    _transfer: Transfer

    def _pending(self) -> list[DeviceRecord]:
        return [
            r
            for r in self._registrar.state.devices.values()
            if r.change is not None and r.change.kind is ChangeKind.HANDOVER and r.is_member
        ]

    # --- handing a device over ------------------------------------------------------------------------

    async def async_step_hand_over(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick a device and paste the new owner's home key string."""
        records = [
            r
            for r in self._registrar.state.devices.values()
            if r.phase in (Phase.ONBOARDED, Phase.CHANGING_OWNER)
            and (r.change is None or r.change.kind is ChangeKind.ROTATE)
        ]
        if not records:
            return self.async_abort(reason="no_devices")
        errors: dict[str, str] = {}
        reason = {"reason": ""}
        if user_input is not None:
            try:
                self._new_owner = parse_home_keys(user_input[CONF_NEW_OWNER])
            except HomeKeyStringError as err:
                errors[CONF_NEW_OWNER] = "invalid_home_key_string"
                reason["reason"] = shown(err.detail, Place.MARKDOWN)  # quotes what was pasted
            else:
                self._device_id = user_input[CONF_DEVICE]
                return await self.async_step_hand_over_confirm()
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): device_select(records),
                vol.Required(CONF_NEW_OWNER): TextSelector(TextSelectorConfig(multiline=True)),
            }
        )
        return self.async_show_form(
            step_id="hand_over",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders=reason,  # for the field's error text
        )

    async def async_step_hand_over_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Both fingerprints side by side; signed only once the owner turned the switch on."""
        record = self._registrar.state.devices.get(self._device_id)
        if record is None or not record.is_member:
            return self.async_abort(reason="device_gone")
        values = placeholders(
            {
                "device": device_label(record),
                "this_home": format_fingerprint(self._registrar.home.fingerprint),
                "new_owner": format_fingerprint(fingerprint(self._new_owner[0])),
                # A string naming the new home's recovery key too (AAHK2): the link names it as well.
                "new_owner_recovery": format_fingerprint(fingerprint(self._new_owner[1]))
                if len(self._new_owner) > 1
                else "-",
            }
        )
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := confirm_errors(user_input)):
            try:
                done = await hand_over(self._registrar, self._device_id, self._new_owner)
            except StepError as err:
                errors["base"] = err.reason
            else:
                return self._hand_over_done(done, values)
        return self.async_show_form(
            step_id="hand_over_confirm",
            data_schema=CONFIRM_SCHEMA,
            errors=errors,
            description_placeholders=values,
        )

    def _hand_over_done(self, done: HandOver, values: dict[str, str]) -> ConfigFlowResult:
        """What became of it: taken at once (the device left), or signed and waiting for the device."""
        if done.delivered:
            return self._finished("handed_over", values)
        link = transfer_link(self.hass, done.device_id)
        size = str(len(done.transfer))
        return self._finished("hand_over_signed", {**values, "download": link, "size": size})

    async def async_step_pending_hand_overs(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Every hand-over the device has not taken: to whom, since when, its transfer file; then cancel
        one, or let the device go now."""
        records = self._pending()
        if not records:
            return self.async_abort(reason="no_pending_hand_overs")
        if user_input is not None:
            self._device_id = user_input[CONF_DEVICE]
            if user_input[CONF_ACTION] == "cancel":
                return await self.async_step_cancel_hand_over()
            return await self.async_step_let_go()
        lines = []
        for record in records:
            assert record.change is not None
            values = placeholders(
                {
                    "device": device_label(record),
                    "owner": format_fingerprint(bytes.fromhex(record.change.new_owner)),
                }
            )
            link = transfer_link(self.hass, record.device_id)
            file = f" [transfer file]({link})" if link else ""
            lines.append(
                f"- **{values['device']}** to `{values['owner']}`, signed {when(record.change.at)}.{file}"
            )
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): device_select(records),
                vol.Required(CONF_ACTION, default="cancel"): SelectSelector(
                    SelectSelectorConfig(options=["cancel", "finish"], translation_key=CONF_ACTION)
                ),
            }
        )
        return self.async_show_form(
            step_id="pending_hand_overs",
            data_schema=schema,
            description_placeholders={"hand_overs": "\n".join(lines)},
        )

    def _pending_values(self) -> dict[str, str] | None:
        record = self._registrar.state.devices.get(self._device_id)
        if record is None or record not in self._pending() or record.change is None:
            return None
        return placeholders(
            {
                "device": device_label(record),
                "new_owner": format_fingerprint(bytes.fromhex(record.change.new_owner)),
            }
        )

    async def async_step_cancel_hand_over(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Sign a link that keeps this home the owner, once the owner turned the switch on."""
        if (values := self._pending_values()) is None:
            return self.async_abort(reason="no_pending_hand_overs")
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := confirm_errors(user_input)):
            try:
                confirmed = await cancel_hand_over(self._registrar, self._device_id)
            except StepError as err:
                errors["base"] = err.reason
            else:
                return self._finished("hand_over_cancelled" if confirmed else "cancel_signed", values)
        return self.async_show_form(
            step_id="cancel_hand_over",
            data_schema=CONFIRM_SCHEMA,
            description_placeholders=values,
            errors=errors,
        )

    async def async_step_let_go(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Remove the device from this home now, its hand-over still owed, once the switch is on."""
        if (values := self._pending_values()) is None:
            return self.async_abort(reason="no_pending_hand_overs")
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := confirm_errors(user_input)):
            remove(self._registrar, self._device_id)  # leaves this home; the hand-over stays owed
            return self._finished("let_go_done", values)
        return self.async_show_form(
            step_id="let_go", data_schema=CONFIRM_SCHEMA, description_placeholders=values, errors=errors
        )

    # --- taking a device in ---------------------------------------------------------------------------

    async def async_step_accept_transfer(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Upload a transfer file from the previous owner."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = await self.hass.async_add_executor_job(read_upload, self.hass, user_input[CONF_FILE])
            except ValueError:  # the upload expired or never arrived
                data = b""
            try:
                self._transfer = read_transfer(self._registrar, data)
            except NotOwnerError:
                errors[CONF_FILE] = "not_for_this_home"
            except UntrustedManufacturerError:
                errors[CONF_FILE] = "untrusted_manufacturer"
            except StepError as err:
                errors[CONF_FILE] = err.reason
            except AutoAddError:
                errors[CONF_FILE] = "invalid_transfer"
            else:
                return await self.async_step_accept_transfer_confirm()
        return self.async_show_form(
            step_id="accept_transfer",
            data_schema=vol.Schema(
                {vol.Required(CONF_FILE): FileSelector(FileSelectorConfig(accept=".cbor"))}
            ),
            errors=errors,
        )

    async def async_step_accept_transfer_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show what the file hands over, and from whom, before accepting it."""
        transfer = self._transfer
        values = placeholders(  # the file's and the device's words
            {
                "manufacturer": transfer.manufacturer,
                "model": transfer.model,
                "order_ref": transfer.order_ref or "none",
                "device": transfer.device_id[:16],
                "previous_owner": format_fingerprint(transfer.previous_owner),
            }
        )
        if user_input is not None:
            try:
                accept_transfer(self._registrar, transfer)
            except StepError as err:
                return self.async_abort(reason=err.reason)
            return self._finished("transfer_accepted", values)
        return self.async_show_form(step_id="accept_transfer_confirm", description_placeholders=values)

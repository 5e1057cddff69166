"""The options flow: the home key and its rotation, hand-overs both ways, manufacturers, blocks, settings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    BooleanSelector,
    FileSelector,
    FileSelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
)
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import CONF_MAX_KEY_AGE_DAYS, DOMAIN
from .home_key_view import home_key_placeholders
from .protocol.errors import AutoAddError, HomeKeyStringError, NotOwnerError, UntrustedManufacturerError
from .protocol.home_key import format_home_key, parse_home_key
from .protocol.keys import PublicKey, fingerprint, format_fingerprint
from .registrar.core import Registrar
from .registrar.handover import HandOver, cancel_hand_over, hand_over
from .registrar.keys import HomeKey
from .registrar.manufacturers import add_root, remove_root
from .registrar.ownership import Transfer, accept_transfer, block, read_transfer, remove, unblock
from .registrar.ports import StepError
from .registrar.record import ChangeKind, DeviceRecord, Phase
from .registrar.rotation import rotate_home_key, rotation_progress
from .registrar.text import Place, placeholders, shown
from .transfer_view import transfer_placeholders
from .trust import RootError, parse_root
from .views import async_register_views

if TYPE_CHECKING:
    from . import AutoAddConfigEntry

CONF_PEM = "pem"
CONF_NAME = "name"
CONF_ROOTS = "roots"
CONF_DESTROY_OLD_KEY = "destroy_old_key"
CONF_DEVICE = "device"
CONF_NEW_OWNER = "new_owner"
CONF_ACTION = "action"
CONF_FILE = "file"
CONF_BLOCK = "block"
CONF_UNBLOCK = "unblock"
_DEVICE_ID = re.compile(r"^[0-9a-f]{64}$")

MENU = [
    "home_key",
    "rotate_home_key",
    "hand_over",
    "pending_hand_overs",
    "accept_transfer",
    "add_manufacturer",
    "remove_manufacturer",
    "block_device",
    "settings",
]


def home_key_form_placeholders(hass: HomeAssistant, home: HomeKey) -> dict[str, str]:
    """The home key string, its fingerprint and its QR code, for a form's description (the set-up flow
    shows it before the integration's own set-up registered the QR code's view)."""
    async_register_views(hass)
    return home_key_placeholders(hass, format_home_key(home.key.public_key()), home.fingerprint)


def _device_label(record: DeviceRecord) -> str:
    """A device as a select option shows it: its manufacturer's, model and serial, the device's words;
    an id this home never saw prove itself (a pasted one, blocked) by the start of its id."""
    if not (record.manufacturer or record.model):
        return f"device {record.device_id[:16]}"
    serial = record.serial_number or record.device_id[:8]
    return " ".join(shown(text, Place.NAME, cap=40) for text in (record.manufacturer, record.model, serial))


def _device_select(records: list[DeviceRecord]) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=[SelectOptionDict(value=r.device_id, label=_device_label(r)) for r in records]
        )
    )


def _read_upload(hass: HomeAssistant, file_id: str) -> bytes:
    with process_uploaded_file(hass, file_id) as path:
        return path.read_bytes()


class AutoAddOptionsFlow(OptionsFlow):
    """Everything the owner manages after setup."""

    def __init__(self) -> None:
        """Start empty."""
        self._device_id = ""
        self._new_owner: PublicKey | None = None
        self._hand_over: HandOver | None = None
        self._transfer: Transfer | None = None

    @property
    def _entry(self) -> AutoAddConfigEntry:
        return self.config_entry

    @property
    def _registrar(self) -> Registrar:
        registrar: Registrar = self._entry.runtime_data.registrar
        return registrar

    def _done(self, **changes: Any) -> ConfigFlowResult:
        return self.async_create_entry(data={**self.config_entry.options, **changes})

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu (the registrar must be running: its keys and store are what the steps show)."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        return self.async_show_menu(step_id="init", menu_options=MENU)

    # --- the home key ---------------------------------------------------------------------------------

    async def async_step_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the home key string and QR code."""
        if user_input is not None:
            return self._done()
        return self.async_show_form(
            step_id="home_key",
            description_placeholders=home_key_form_placeholders(self.hass, self._registrar.home),
        )

    def _rotation_placeholders(self) -> dict[str, str]:
        progress = rotation_progress(self._registrar)
        home = self._registrar.home
        return {
            "fingerprint": format_fingerprint(home.fingerprint),
            "age": str((dt_util.utcnow() - home.created_at).days),
            "moved": str(progress.moved),
            "pending": str(progress.pending),
        }

    async def async_step_rotate_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Make a new home key and move every device to it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                await rotate_home_key(self._registrar, destroy_old=user_input[CONF_DESTROY_OLD_KEY])
            except StepError as err:
                errors["base"] = err.reason
            else:
                ir.async_delete_issue(self.hass, DOMAIN, "home_key_old")  # the key is new
                return await self.async_step_rotation_started()
        return self.async_show_form(
            step_id="rotate_home_key",
            data_schema=vol.Schema({vol.Required(CONF_DESTROY_OLD_KEY, default=False): BooleanSelector()}),
            description_placeholders=self._rotation_placeholders(),
            errors=errors,
        )

    async def async_step_rotation_started(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The new key and how many devices still have to get their link."""
        if user_input is not None:
            return self._done()
        return self.async_show_form(
            step_id="rotation_started",
            description_placeholders={
                **self._rotation_placeholders(),
                **home_key_form_placeholders(self.hass, self._registrar.home),
            },
        )

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
        placeholders = {"reason": ""}
        if user_input is not None:
            try:
                self._new_owner = parse_home_key(user_input[CONF_NEW_OWNER])
            except HomeKeyStringError as err:
                errors[CONF_NEW_OWNER] = "invalid_home_key_string"
                placeholders["reason"] = shown(err.detail, Place.MARKDOWN)  # quotes what was pasted
            else:
                self._device_id = user_input[CONF_DEVICE]
                return await self.async_step_hand_over_confirm()
        schema = vol.Schema(
            {vol.Required(CONF_DEVICE): _device_select(records), vol.Required(CONF_NEW_OWNER): TextSelector()}
        )
        return self.async_show_form(
            step_id="hand_over",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_hand_over_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Both fingerprints side by side before anything is signed."""
        assert self._new_owner is not None
        record = self._registrar.state.devices.get(self._device_id)
        if record is None or not record.is_member:
            return self.async_abort(reason="device_gone")
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                self._hand_over = await hand_over(self._registrar, self._device_id, self._new_owner)
            except StepError as err:
                errors["base"] = err.reason
            else:
                return await self.async_step_hand_over_done()
        return self.async_show_form(
            step_id="hand_over_confirm",
            errors=errors,
            description_placeholders=placeholders(
                {
                    "device": _device_label(record),
                    "this_home": format_fingerprint(self._registrar.home.fingerprint),
                    "new_owner": format_fingerprint(fingerprint(self._new_owner)),
                }
            ),
        )

    async def async_step_hand_over_done(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Whether the device took it, and the transfer file for the buyer."""
        assert self._hand_over is not None
        if user_input is not None:
            return self._done()
        placeholders = transfer_placeholders(self.hass, self._hand_over.device_id, self._hand_over.transfer)
        placeholders["delivered"] = "yes" if self._hand_over.delivered else "no"
        return self.async_show_form(step_id="hand_over_done", description_placeholders=placeholders)

    async def async_step_pending_hand_overs(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Cancel a hand-over the device has not taken, or let the device go now."""
        records = [
            r
            for r in self._registrar.state.devices.values()
            if r.change is not None and r.change.kind is ChangeKind.HANDOVER and r.is_member
        ]
        if not records:
            return self.async_abort(reason="no_pending_hand_overs")
        errors: dict[str, str] = {}
        if user_input is not None:
            device_id = user_input[CONF_DEVICE]
            try:
                if user_input[CONF_ACTION] == "cancel":
                    if not await cancel_hand_over(self._registrar, device_id):
                        errors["base"] = "cancel_not_confirmed"
                else:
                    remove(self._registrar, device_id)  # leaves this home; the hand-over stays owed
            except StepError as err:
                errors["base"] = err.reason
            if not errors:
                return self._done()
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): _device_select(records),
                vol.Required(CONF_ACTION, default="cancel"): SelectSelector(
                    SelectSelectorConfig(options=["cancel", "finish"], translation_key=CONF_ACTION)
                ),
            }
        )
        return self.async_show_form(step_id="pending_hand_overs", data_schema=schema, errors=errors)

    # --- taking a device in ---------------------------------------------------------------------------

    async def async_step_accept_transfer(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Upload a transfer file from the previous owner."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = await self.hass.async_add_executor_job(_read_upload, self.hass, user_input[CONF_FILE])
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
        assert self._transfer is not None
        if user_input is not None:
            try:
                accept_transfer(self._registrar, self._transfer)
            except StepError as err:
                return self.async_abort(reason=err.reason)
            return self._done()
        return self.async_show_form(
            step_id="accept_transfer_confirm",
            description_placeholders=placeholders(  # the file's and the device's words
                {
                    "manufacturer": self._transfer.manufacturer,
                    "model": self._transfer.model,
                    "device": self._transfer.device_id,
                    "previous_owner": format_fingerprint(self._transfer.previous_owner),
                }
            ),
        )

    # --- manufacturers --------------------------------------------------------------------------------

    async def async_step_add_manufacturer(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Trust a manufacturer root from pasted PEM."""
        errors: dict[str, str] = {}
        registrar = self._registrar
        if user_input is not None:
            try:
                cert, name = parse_root(user_input[CONF_PEM], user_input.get(CONF_NAME))
                add_root(registrar, cert, name)
            except (RootError, StepError) as err:
                errors[CONF_PEM] = err.reason
            else:
                return self._done()
        schema = vol.Schema(
            {
                vol.Optional(CONF_NAME): str,
                vol.Required(CONF_PEM): TextSelector(TextSelectorConfig(multiline=True)),
            }
        )
        return self.async_show_form(
            step_id="add_manufacturer",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders={"count": str(len(registrar.state.roots))},
        )

    async def async_step_remove_manufacturer(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Revoke one or more manufacturer roots: their devices are flagged, new ones refused."""
        registrar = self._registrar
        roots = registrar.state.roots
        if not roots:
            return self.async_abort(reason="no_manufacturers")
        if user_input is not None:
            for digest in user_input[CONF_ROOTS]:
                remove_root(registrar, digest)
            return self._done()
        options = [
            SelectOptionDict(
                value=root.fingerprint,
                label=f"{shown(root.name, Place.NAME)} "
                f"({format_fingerprint(bytes.fromhex(root.fingerprint))}, added {root.added_on[:10]})",
            )
            for root in roots
        ]
        return self.async_show_form(
            step_id="remove_manufacturer",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_ROOTS): SelectSelector(
                        SelectSelectorConfig(options=options, multiple=True)
                    )
                }
            ),
        )

    # --- blocking -------------------------------------------------------------------------------------

    async def async_step_block_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Block a device identifier (a known device or a pasted one), or lift blocks."""
        registrar = self._registrar
        errors: dict[str, str] = {}
        if user_input is not None:
            to_block = (user_input.get(CONF_BLOCK) or "").strip().lower()
            if to_block and not _DEVICE_ID.match(to_block):
                errors[CONF_BLOCK] = "invalid_device_id"
            else:
                if to_block:
                    block(registrar, to_block, "blocked by the owner")
                for device_id in user_input.get(CONF_UNBLOCK, []):
                    unblock(registrar, device_id)
                return self._done()
        known = [r for r in registrar.state.devices.values() if r.is_member and r.phase is not Phase.BLOCKED]
        blocked = [r for r in registrar.state.devices.values() if r.phase is Phase.BLOCKED]
        schema: dict[Any, Any] = {
            vol.Optional(CONF_BLOCK): SelectSelector(
                SelectSelectorConfig(
                    options=[SelectOptionDict(value=r.device_id, label=_device_label(r)) for r in known],
                    custom_value=True,
                )
            )
        }
        if blocked:
            schema[vol.Optional(CONF_UNBLOCK)] = SelectSelector(
                SelectSelectorConfig(
                    options=[SelectOptionDict(value=r.device_id, label=_device_label(r)) for r in blocked],
                    multiple=True,
                )
            )
        return self.async_show_form(step_id="block_device", data_schema=vol.Schema(schema), errors=errors)

    # --- settings -------------------------------------------------------------------------------------

    async def async_step_settings(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """How old the home key may get before a reminder to rotate it (0: never remind)."""
        if user_input is not None:
            return self._done(**{CONF_MAX_KEY_AGE_DAYS: int(user_input[CONF_MAX_KEY_AGE_DAYS])})
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_MAX_KEY_AGE_DAYS, default=self.config_entry.options.get(CONF_MAX_KEY_AGE_DAYS, 0)
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=0, max=3650, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="d"
                    )
                )
            }
        )
        return self.async_show_form(step_id="settings", data_schema=schema)

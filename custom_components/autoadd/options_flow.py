"""The options flow: its menu, the home key and its rotation, the refused devices, the settings. Hand-overs
are in options_handover.py, manufacturers and blocks in options_trust.py."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .claim_steps import ClaimOptions
from .const import CONF_ASK_ABOUT_MANUFACTURERS, CONF_MAX_KEY_AGE_DAYS, DOMAIN
from .home_key_view import home_key_placeholders
from .options_base import device_label
from .options_handover import HandOverSteps, when
from .options_recovery import RecoveryOptions
from .options_trust import TrustSteps
from .protocol.home_key import format_home_key
from .protocol.keys import format_fingerprint
from .registrar.keys import HomeKeys
from .registrar.ports import StepError
from .registrar.rotation import rotate_home_key, rotation_progress
from .registrar.text import Place, shown
from .views import async_register_views

CONF_DESTROY_OLD_KEY = "destroy_old_key"

MENU = [
    "home_key",
    "claim_device",
    "rotate_home_key",
    "recovery_key",
    "restore_from_recovery_key",
    "finish_restore",
    "hand_over",
    "pending_hand_overs",
    "accept_transfer",
    "add_manufacturer",
    "remove_manufacturer",
    "block_device",
    "refused_devices",
    "settings",
]
#: Where the words for each refusal code are (translations of the `refusal` selector's options).
SELECTOR = f"component.{DOMAIN}.selector.refusal.options"
#: The refused devices step lists at most this many, newest first.
MAX_REFUSED_LISTED = 20


def home_key_form_placeholders(hass: HomeAssistant, keys: HomeKeys) -> dict[str, str]:
    """The home key string (naming the recovery key too, when there is one), the home key's fingerprint
    and the QR code, for a form's description (the set-up flow shows it before the integration's own
    set-up registered the QR code's view)."""
    async_register_views(hass)
    return home_key_placeholders(hass, format_home_key(*keys.owner_keys()), keys.current.fingerprint)


class AutoAddOptionsFlow(HandOverSteps, TrustSteps, RecoveryOptions, ClaimOptions):
    """Everything the owner manages after setup."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu (the registrar must be running: its keys and store are what the steps show)."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        return self.async_show_menu(step_id="init", menu_options=MENU)

    # --- the home key ---------------------------------------------------------------------------------

    async def async_step_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the home key string and QR code."""
        return self._finished("home_key", home_key_form_placeholders(self.hass, self._registrar.keys))

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
                return self._finished(
                    "rotated",
                    {
                        **self._rotation_placeholders(),
                        **home_key_form_placeholders(self.hass, self._registrar.keys),
                    },
                )
        return self.async_show_form(
            step_id="rotate_home_key",
            data_schema=vol.Schema({vol.Required(CONF_DESTROY_OLD_KEY, default=False): BooleanSelector()}),
            description_placeholders=self._rotation_placeholders(),
            errors=errors,
        )

    # --- refused devices ----------------------------------------------------------------------------

    async def async_step_refused_devices(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Every device AutoAdd refused, newest first: which, why, and what the owner can do."""
        refused = sorted(
            (r for r in self._registrar.state.devices.values() if r.refusal is not None),
            key=lambda r: r.refusal.at if r.refusal else "",
            reverse=True,
        )
        if not refused:
            return self.async_abort(reason="no_refused_devices")
        words = await async_get_translations(self.hass, self.hass.config.language, "selector", {DOMAIN})
        lines = []
        for record in refused[:MAX_REFUSED_LISTED]:
            assert record.refusal is not None
            code = record.refusal.code
            # A device's own code is its words: quoted, never explained as if this home had found it.
            by_device = record.refusal.by_device
            meaning = None if by_device else words.get(f"{SELECTOR}.{code}")
            if meaning is None:
                meaning = words.get(f"{SELECTOR}.{'device_said' if by_device else 'other'}", "")
            label = shown(device_label(record), Place.MARKDOWN)
            quoted = shown(code, Place.MARKDOWN, cap=40)  # escaped text, not a code span (escapes show there)
            lines.append(f"- **{label}**, {when(record.refusal.at)}, code {quoted}: {meaning}")
        return self._finished(
            "refused_devices",
            {"devices": "\n".join(lines), "count": str(len(refused)), "listed": str(len(lines))},
        )

    # --- settings -------------------------------------------------------------------------------------

    async def async_step_settings(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """How old the home key may get before a reminder to rotate it (0: never remind), and whether
        devices from manufacturers this home does not trust may ask the owner to trust them."""
        options = self.config_entry.options
        if user_input is not None:
            return self._saved(
                **{
                    CONF_MAX_KEY_AGE_DAYS: int(user_input[CONF_MAX_KEY_AGE_DAYS]),
                    CONF_ASK_ABOUT_MANUFACTURERS: bool(user_input[CONF_ASK_ABOUT_MANUFACTURERS]),
                }
            )
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_MAX_KEY_AGE_DAYS, default=options.get(CONF_MAX_KEY_AGE_DAYS, 0)
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=0, max=3650, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="d"
                    )
                ),
                vol.Required(
                    CONF_ASK_ABOUT_MANUFACTURERS, default=options.get(CONF_ASK_ABOUT_MANUFACTURERS, True)
                ): BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="settings", data_schema=schema)

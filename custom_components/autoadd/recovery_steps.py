"""The recovery key in the set-up and options flows (§14.8): making one (shown once, typed back), and
reading one back to restore the home. The flows decide what follows; this module only shows and reads."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryBaseFlow, ConfigFlowResult
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig
import voluptuous as vol

from .const import DOMAIN
from .protocol.errors import RecoveryKeyStringError
from .protocol.keys import KeyType, PrivateKey, fingerprint, format_fingerprint, generate_private_key
from .protocol.recovery_key import CONFIRM_CHARACTERS, format_recovery_key, parse_recovery_key
from .recovery_view import forget, show
from .registrar.keys import HomeKeys, RecoveryKey, utcnow
from .registrar.ports import StepError
from .views import async_register_views

CONF_CONFIRM_CHARACTERS = "confirm_characters"
CONF_RECOVERY_KEY = "recovery_key"
#: The repair issue raised while Home Assistant holds the recovery key (a restore in progress).
RESTORING_ISSUE = "restoring"


def read_recovery(text: str) -> tuple[PrivateKey | None, dict[str, str]]:
    """A pasted recovery key string, or the form error naming its reason (whether it is this home's is
    the registrar's to say: restore.hold)."""
    try:
        return parse_recovery_key(text), {}
    except RecoveryKeyStringError as err:
        return None, {CONF_RECOVERY_KEY: f"recovery_{err.reason}"}


def step_errors(err: StepError) -> dict[str, str]:
    """A refused restore as the form shows it: a key that is not this home's on its field."""
    return {CONF_RECOVERY_KEY if err.reason == "not_this_home" else "base": err.reason}


@callback
def async_raise_restoring(hass: HomeAssistant, keys: HomeKeys) -> None:
    """The owner is told while Home Assistant holds the recovery key, and until they finish."""
    if keys.recovery is not None and keys.recovery.key is not None:
        ir.async_create_issue(
            hass,
            DOMAIN,
            RESTORING_ISSUE,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=RESTORING_ISSUE,
            translation_placeholders={"fingerprint": format_fingerprint(keys.recovery.fingerprint)},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, RESTORING_ISSUE)


class RecoverySteps(ConfigEntryBaseFlow):
    """The step that shows a new recovery key once and asks for its last characters back; the flow that
    uses it says what happens once the owner kept it (`_recovery_kept`)."""

    _new_recovery: PrivateKey | None = None
    _shown_token: str | None = None

    async def _recovery_kept(self, recovery: RecoveryKey) -> ConfigFlowResult:
        """The owner typed the characters back: the flow goes on."""
        raise NotImplementedError

    def _recovery_key_type(self) -> KeyType:
        return KeyType.ED25519

    async def async_step_new_recovery_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show a new recovery key (string and QR code) once; go on when its last group is typed back.
        Nothing is kept until then, and the private key never is."""
        if self._new_recovery is None:
            self._new_recovery = generate_private_key(self._recovery_key_type())
        text = format_recovery_key(self._new_recovery)
        errors: dict[str, str] = {}
        if user_input is not None:
            typed = "".join(str(user_input.get(CONF_CONFIRM_CHARACTERS, "")).split()).replace("-", "").upper()
            if typed == text.replace("-", "")[-CONFIRM_CHARACTERS:]:
                forget(self.hass, self._shown_token)
                recovery = RecoveryKey(
                    public=self._new_recovery.public_key(), created_at=utcnow().isoformat()
                )
                self._new_recovery = None
                return await self._recovery_kept(recovery)
            errors[CONF_CONFIRM_CHARACTERS] = "recovery_mismatch"
        async_register_views(self.hass)
        forget(self.hass, self._shown_token)
        self._shown_token, qr = show(self.hass, text)
        return self.async_show_form(
            step_id="new_recovery_key",
            data_schema=vol.Schema({vol.Required(CONF_CONFIRM_CHARACTERS): str}),
            description_placeholders={
                "recovery_key": text,
                "qr_code": qr,
                "fingerprint": format_fingerprint(fingerprint(self._new_recovery.public_key())),
                "count": str(CONFIRM_CHARACTERS),
            },
            errors=errors,
        )

    def async_remove(self) -> None:
        """The flow is closed: its recovery key's QR code is no longer served."""
        forget(self.hass, self._shown_token)


#: The form of a step that reads a recovery key string back.
RECOVERY_SCHEMA = vol.Schema(
    {vol.Required(CONF_RECOVERY_KEY): TextSelector(TextSelectorConfig(multiline=True))}
)

"""Config and options flows: set the registrar up, show the home key, manage trusted manufacturers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import voluptuous as vol

from .const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from .options_flow import AutoAddOptionsFlow, home_key_form_placeholders
from .protocol.keys import KeyType
from .recovery_steps import CONF_RECOVERY_KEY, RECOVERY_SCHEMA, RecoverySteps, read_recovery, step_errors
from .registrar.keys import HomeKey, HomeKeys, RecoveryKey
from .registrar.ports import PersistError, StepError
from .registrar.restore import hold
from .registrar.text import Place, shown
from .storage import async_create_home_keys, async_load_home_keys

if TYPE_CHECKING:
    from . import AutoAddConfigEntry

CONF_MAKE_RECOVERY_KEY = "make_recovery_key"
CONF_RESTORE = "restore"


class AutoAddConfigFlow(RecoverySteps, ConfigFlow, domain=DOMAIN):
    """Set up the home registrar: name the home, make (or find) its key and, if the owner wants, a
    recovery key, or restore the home from its recovery key; show the home key string."""

    VERSION = 1

    def __init__(self) -> None:
        """Start empty."""
        self._keys: HomeKeys | None = None
        self._data: dict[str, Any] = {}
        self._key_type = KeyType.ED25519

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: AutoAddConfigEntry) -> AutoAddOptionsFlow:
        """The options flow."""
        return AutoAddOptionsFlow()

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """An AutoAdd device is on the network but there is no registrar yet: offer to set one up."""
        await self.async_set_unique_id(DOMAIN)  # one offer, however many devices announce themselves
        self._abort_if_unique_id_configured()
        model = discovery_info.properties.get("md") or "AutoAdd"  # an announcement's words: anyone's
        self.context["title_placeholders"] = {"model": shown(model, Place.NAME)}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before setting up."""
        if user_input is not None:
            return await self.async_step_user()
        return self.async_show_form(step_id="discovery_confirm")

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name the home and choose the key type; an existing home key is kept. An offer open from a
        discovered device does not stop the owner's own set-up: the entry made ends the offer."""
        await self.async_set_unique_id(DOMAIN, raise_on_progress=False)
        self._abort_if_unique_id_configured()
        existing = await async_load_home_keys(self.hass)
        errors: dict[str, str] = {}
        if user_input is not None:
            self._data = {CONF_HOME_NAME: user_input[CONF_HOME_NAME]}
            self._key_type = KeyType(user_input.get(CONF_KEY_TYPE, KeyType.ED25519.value))
            if user_input.get(CONF_RESTORE):
                return await self.async_step_restore()
            if existing is not None:
                self._keys = existing
            else:
                keys = HomeKeys(HomeKey.generate(self._key_type))
                if await self._saved(keys, errors):
                    self._keys = keys
            if self._keys is not None:
                self._data[CONF_KEY_TYPE] = self._keys.current.key_type.value
                if existing is None and user_input.get(CONF_MAKE_RECOVERY_KEY):
                    return await self.async_step_new_recovery_key()
                return await self.async_step_home_key()
        schema: dict[Any, Any] = {vol.Required(CONF_HOME_NAME, default=self.hass.config.location_name): str}
        if existing is None:
            schema[vol.Required(CONF_KEY_TYPE, default=KeyType.ED25519.value)] = SelectSelector(
                SelectSelectorConfig(
                    options=[key_type.value for key_type in KeyType],
                    translation_key=CONF_KEY_TYPE,
                    mode=SelectSelectorMode.LIST,
                )
            )
        if existing is None:  # over kept keys, Configure makes one: a rotation adds it to their devices
            schema[vol.Required(CONF_MAKE_RECOVERY_KEY, default=True)] = BooleanSelector()
        schema[vol.Required(CONF_RESTORE, default=False)] = BooleanSelector()
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(schema),
            description_placeholders={"existing": "yes" if existing else "no"},
            errors=errors,
        )

    async def _saved(self, keys: HomeKeys, errors: dict[str, str]) -> bool:
        """Write the keys before anything names them; a failed write is the form's error."""
        try:
            await async_create_home_keys(self.hass, keys)
        except PersistError:
            errors["base"] = "storage_failed"
            return False
        return True

    def _recovery_key_type(self) -> KeyType:
        return self._keys.current.key_type if self._keys is not None else KeyType.ED25519

    async def _recovery_kept(self, recovery: RecoveryKey) -> ConfigFlowResult:
        """The owner kept the new recovery key: its public part is stored with the home key."""
        assert self._keys is not None
        self._keys.recovery = recovery
        errors: dict[str, str] = {}
        if not await self._saved(self._keys, errors):
            self._keys.recovery = None
            return self.async_abort(reason="storage_failed")
        return await self.async_step_home_key()

    async def async_step_restore(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Restore this home from its recovery key (§14.8): a new home key (or the one found) and the
        recovery key held until the owner finishes; every device that shows up and names the recovery
        key is moved to the home key."""
        errors: dict[str, str] = {}
        if user_input is not None:
            existing = await async_load_home_keys(self.hass)
            key, errors = read_recovery(user_input[CONF_RECOVERY_KEY])
            if key is not None:
                keys = existing or HomeKeys(HomeKey.generate(self._key_type))
                try:
                    hold(keys, key)
                except StepError as err:
                    errors = step_errors(err)
                else:
                    if await self._saved(keys, errors):
                        self._keys = keys
                        self._data[CONF_KEY_TYPE] = keys.current.key_type.value
                        return await self.async_step_home_key()
        return self.async_show_form(step_id="restore", data_schema=RECOVERY_SCHEMA, errors=errors)

    async def async_step_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the home key string and its QR code, then create the entry."""
        assert self._keys is not None
        if user_input is not None:
            return self.async_create_entry(title=self._data[CONF_HOME_NAME], data=self._data)
        return self.async_show_form(
            step_id="home_key", description_placeholders=home_key_form_placeholders(self.hass, self._keys)
        )

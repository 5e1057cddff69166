"""Config and options flows: set the registrar up, show the home key, manage trusted manufacturers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import voluptuous as vol

from .const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from .options_flow import AutoAddOptionsFlow, home_key_form_placeholders
from .protocol.keys import KeyType
from .registrar.keys import HomeKey, HomeKeys
from .registrar.ports import PersistError
from .registrar.text import Place, shown
from .storage import async_create_home_keys, async_load_home_keys

if TYPE_CHECKING:
    from . import AutoAddConfigEntry


class AutoAddConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the home registrar: name the home, make (or find) its key, show it."""

    VERSION = 1

    def __init__(self) -> None:
        """Start empty."""
        self._home: HomeKey | None = None
        self._data: dict[str, Any] = {}

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
            if existing is not None:
                self._home = existing.current
            else:
                keys = HomeKeys(HomeKey.generate(KeyType(user_input[CONF_KEY_TYPE])))
                try:
                    await async_create_home_keys(self.hass, keys)  # on disk before anything names it
                except PersistError:
                    errors["base"] = "storage_failed"
                else:
                    self._home = keys.current
            if self._home is not None:
                self._data[CONF_KEY_TYPE] = self._home.key_type.value
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
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(schema),
            description_placeholders={"existing": "yes" if existing else "no"},
            errors=errors,
        )

    async def async_step_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the home key string and its QR code, then create the entry."""
        assert self._home is not None
        if user_input is not None:
            return self.async_create_entry(title=self._data[CONF_HOME_NAME], data=self._data)
        return self.async_show_form(
            step_id="home_key", description_placeholders=home_key_form_placeholders(self.hass, self._home)
        )

"""Config and options flows: set the registrar up, show the home key, manage trusted manufacturers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState, ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import voluptuous as vol

from .const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from .home_key_view import home_key_placeholders
from .protocol.home_key import format_home_key
from .protocol.keys import KeyType
from .storage import HomeKey, HomeKeyStore
from .trust import RootError, parse_root

if TYPE_CHECKING:
    from . import AutoAddConfigEntry

CONF_PEM = "pem"
CONF_NAME = "name"
CONF_ROOTS = "roots"


def _home_key_form_placeholders(flow: ConfigFlow | OptionsFlow, home: HomeKey) -> dict[str, str]:
    return home_key_placeholders(flow.hass, format_home_key(home.key.public_key()), home.fingerprint)


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
        self.context["title_placeholders"] = {"model": str(discovery_info.properties.get("md", "AutoAdd"))}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before setting up."""
        if user_input is not None:
            return await self.async_step_user()
        return self.async_show_form(step_id="discovery_confirm")

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name the home and choose the key type; an existing home key is kept."""
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        existing = await HomeKeyStore(self.hass).async_load()
        if user_input is not None:
            self._data = {CONF_HOME_NAME: user_input[CONF_HOME_NAME]}
            if existing is not None:
                self._home = existing.current
            else:
                keys = await HomeKeyStore(self.hass).async_create(KeyType(user_input[CONF_KEY_TYPE]))
                self._home = keys.current
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
        )

    async def async_step_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the home key string and its QR code, then create the entry."""
        assert self._home is not None
        if user_input is not None:
            return self.async_create_entry(title=self._data[CONF_HOME_NAME], data=self._data)
        return self.async_show_form(
            step_id="home_key", description_placeholders=_home_key_form_placeholders(self, self._home)
        )


class AutoAddOptionsFlow(OptionsFlow):
    """See the home key; add and remove trusted manufacturers."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu (the registrar must be running: its home key and store are what the steps show)."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        return self.async_show_menu(
            step_id="init", menu_options=["home_key", "add_manufacturer", "remove_manufacturer"]
        )

    async def async_step_home_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the home key string and QR code."""
        if user_input is not None:
            return self.async_create_entry(data=dict(self.config_entry.options))
        home = self._entry.runtime_data.registrar.home
        return self.async_show_form(
            step_id="home_key", description_placeholders=_home_key_form_placeholders(self, home)
        )

    @property
    def _entry(self) -> AutoAddConfigEntry:
        return self.config_entry

    async def async_step_add_manufacturer(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Trust a manufacturer root from pasted PEM."""
        errors: dict[str, str] = {}
        registrar = self._entry.runtime_data.registrar
        if user_input is not None:
            try:
                cert, name = parse_root(user_input[CONF_PEM], user_input.get(CONF_NAME))
                registrar.async_add_root(cert, name)
            except RootError as err:
                errors[CONF_PEM] = err.reason
            else:
                return self.async_create_entry(data=dict(self.config_entry.options))
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
            description_placeholders={"count": str(len(registrar.store.data.roots))},
        )

    async def async_step_remove_manufacturer(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Stop trusting one or more manufacturer roots."""
        registrar = self._entry.runtime_data.registrar
        roots = registrar.store.data.roots
        if not roots:
            return self.async_abort(reason="no_manufacturers")
        if user_input is not None:
            for digest in user_input[CONF_ROOTS]:
                registrar.async_remove_root(digest)
            return self.async_create_entry(data=dict(self.config_entry.options))
        options = [
            SelectOptionDict(
                value=root.fingerprint,
                label=f"{root.name} ({root.fingerprint[:16]}, added {root.added_on[:10]})",
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

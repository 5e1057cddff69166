"""Config flow for AutoAdd: one registrar per Home Assistant instance."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
import voluptuous as vol

from .const import CONF_HOME_NAME, DOMAIN


class AutoAddConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the home registrar."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name the home."""
        if user_input is not None:
            return self.async_create_entry(title=user_input[CONF_HOME_NAME], data=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema({vol.Required(CONF_HOME_NAME, default="Home"): str}),
        )

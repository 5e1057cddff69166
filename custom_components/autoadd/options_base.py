"""What every part of the options flow shares: the running registrar, how a step ends, how a device is
named in a list, and the confirmation a destructive step asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    BooleanSelector,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
)
import voluptuous as vol

from .registrar.core import Registrar
from .registrar.record import DeviceRecord
from .registrar.text import Place, shown

if TYPE_CHECKING:
    from . import AutoAddConfigEntry

CONF_CONFIRM = "confirm"
CONF_DEVICE = "device"


def device_label(record: DeviceRecord) -> str:
    """A device as a list shows it: its manufacturer's, model and serial, the device's words; an id this
    home never saw prove itself (a pasted one, blocked) by the start of its id."""
    if not (record.manufacturer or record.model):
        return f"device {record.device_id[:16]}"
    serial = record.serial_number or record.device_id[:8]
    return " ".join(shown(text, Place.NAME, cap=40) for text in (record.manufacturer, record.model, serial))


def device_select(records: list[DeviceRecord]) -> SelectSelector:
    """A select of devices, by their labels."""
    return SelectSelector(
        SelectSelectorConfig(
            options=[SelectOptionDict(value=r.device_id, label=device_label(r)) for r in records]
        )
    )


#: The form of a destructive step: one switch the owner turns on to go ahead (off by default).
CONFIRM_SCHEMA = vol.Schema({vol.Required(CONF_CONFIRM, default=False): BooleanSelector()})


def confirm_errors(user_input: dict[str, Any]) -> dict[str, str]:
    """The error of a confirmation submitted with its switch off (nothing is done then)."""
    return {} if user_input.get(CONF_CONFIRM) is True else {CONF_CONFIRM: "not_confirmed"}


class OptionsSteps(OptionsFlow):
    """The registrar the steps act on, and how they end."""

    @property
    def _entry(self) -> AutoAddConfigEntry:
        return self.config_entry

    @property
    def _registrar(self) -> Registrar:
        registrar: Registrar = self._entry.runtime_data.registrar
        return registrar

    def _saved(self, **changes: Any) -> ConfigFlowResult:
        """End by saving options (the settings step: the only one that changes the entry's options)."""
        return self.async_create_entry(data={**self.config_entry.options, **changes})

    def _finished(self, outcome: str, shown_values: dict[str, str] | None = None) -> ConfigFlowResult:
        """End by telling what happened (or what is shown), in words of its own, with a Close button:
        steps that act on the registrar change no option, so "Options saved" would not be true."""
        return self.async_abort(reason=outcome, description_placeholders=shown_values)

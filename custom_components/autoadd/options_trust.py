"""The options steps that decide whom this home listens to: trusting and revoking manufacturers, blocking
and unblocking devices. What cannot be undone asks first, saying what it will do."""

from __future__ import annotations

import re
from typing import Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
)
import voluptuous as vol

from .options_base import CONFIRM_SCHEMA, OptionsSteps, confirm_errors, device_label
from .protocol.keys import format_fingerprint
from .registrar.manufacturers import add_root, remove_root
from .registrar.ownership import block, unblock
from .registrar.ports import StepError
from .registrar.record import DeviceRecord, Phase
from .registrar.state import TrustedRoot
from .registrar.text import Place, placeholders, shown
from .trust import RootError, parse_root

CONF_PEM = "pem"
CONF_NAME = "name"
CONF_ROOTS = "roots"
CONF_BLOCK = "block"
CONF_BLOCK_ID = "block_id"
CONF_UNBLOCK = "unblock"
_DEVICE_ID = re.compile(r"^[0-9a-f]{64}$")


def _root_label(root: TrustedRoot) -> str:
    return (
        f"{shown(root.name, Place.NAME)} "
        f"({format_fingerprint(bytes.fromhex(root.fingerprint))}, added {root.added_on[:10]})"
    )


class TrustSteps(OptionsSteps):
    """Manufacturers and blocks."""

    _revoking: list[str]
    _blocking: str

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
                root = registrar.state.roots[-1]
                digest = format_fingerprint(bytes.fromhex(root.fingerprint))
                return self._finished(
                    "manufacturer_trusted", placeholders({"name": root.name, "fingerprint": digest})
                )
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
        """Pick the manufacturer roots to revoke (none is picked for the owner)."""
        roots = self._registrar.state.roots
        if not roots:
            return self.async_abort(reason="no_manufacturers")
        errors: dict[str, str] = {}
        if user_input is not None:
            known = {root.fingerprint for root in roots}
            self._revoking = [digest for digest in user_input.get(CONF_ROOTS, []) if digest in known]
            if self._revoking:
                return await self.async_step_remove_manufacturer_confirm()
            errors[CONF_ROOTS] = "pick_manufacturer"
        options = [SelectOptionDict(value=root.fingerprint, label=_root_label(root)) for root in roots]
        return self.async_show_form(
            step_id="remove_manufacturer",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_ROOTS, default=[]): SelectSelector(
                        SelectSelectorConfig(options=options, multiple=True)
                    )
                }
            ),
            errors=errors,
        )

    def _vouched(self) -> list[DeviceRecord]:
        return [
            r
            for r in self._registrar.state.devices.values()
            if r.is_member and r.manufacturer_root in self._revoking
        ]

    async def async_step_remove_manufacturer_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say which manufacturers and how many devices, then revoke once the owner turned the switch on."""
        registrar = self._registrar
        roots = [root for root in registrar.state.roots if root.fingerprint in self._revoking]
        values = placeholders(
            {
                "manufacturers": "; ".join(_root_label(root) for root in roots),
                "devices": str(len(self._vouched())),
            },
            long={"manufacturers"},
        )
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := confirm_errors(user_input)):
            if not roots:
                return self.async_abort(reason="no_manufacturers")  # revoked meanwhile
            for root in roots:
                remove_root(registrar, root.fingerprint)
            return self._finished("manufacturer_revoked", values)
        return self.async_show_form(
            step_id="remove_manufacturer_confirm",
            data_schema=CONFIRM_SCHEMA,
            description_placeholders=values,
            errors=errors,
        )

    # --- blocking -------------------------------------------------------------------------------------

    async def async_step_block_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick a device to block (a known device or a pasted identifier), or blocks to lift."""
        registrar = self._registrar
        errors: dict[str, str] = {}
        if user_input is not None:
            to_block = (user_input.get(CONF_BLOCK_ID) or user_input.get(CONF_BLOCK) or "").strip().lower()
            to_unblock = [
                device_id
                for device_id in user_input.get(CONF_UNBLOCK, [])
                if (r := registrar.state.devices.get(device_id)) is not None and r.phase is Phase.BLOCKED
            ]
            if to_block and to_unblock:  # one decision per confirmation, said whole
                errors["base"] = "block_or_unblock"
            elif to_block and not _DEVICE_ID.match(to_block):
                errors[CONF_BLOCK_ID if user_input.get(CONF_BLOCK_ID) else CONF_BLOCK] = "invalid_device_id"
            elif to_block:
                self._blocking = to_block
                return await self.async_step_block_device_confirm()
            elif to_unblock:
                names = "; ".join(device_label(registrar.state.devices[d]) for d in to_unblock)
                for device_id in to_unblock:
                    unblock(registrar, device_id)
                return self._finished("unblocked", placeholders({"devices": names}, long={"devices"}))
            else:
                errors["base"] = "pick_device"
        known = [  # this home's devices, and the ones it refused (a counterfeit, say)
            r
            for r in registrar.state.devices.values()
            if r.phase is not Phase.BLOCKED and (r.is_member or r.refusal is not None)
        ]
        blocked = [r for r in registrar.state.devices.values() if r.phase is Phase.BLOCKED]
        schema: dict[Any, Any] = {}
        if known:
            schema[vol.Optional(CONF_BLOCK)] = SelectSelector(
                SelectSelectorConfig(
                    options=[SelectOptionDict(value=r.device_id, label=device_label(r)) for r in known]
                )
            )
        schema[vol.Optional(CONF_BLOCK_ID)] = TextSelector()  # a device this home never saw prove itself
        if blocked:
            schema[vol.Optional(CONF_UNBLOCK)] = SelectSelector(
                SelectSelectorConfig(
                    options=[SelectOptionDict(value=r.device_id, label=device_label(r)) for r in blocked],
                    multiple=True,
                )
            )
        return self.async_show_form(
            step_id="block_device",
            data_schema=self.add_suggested_values_to_schema(vol.Schema(schema), user_input or {}),
            errors=errors,
        )

    async def async_step_block_device_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say what blocking does to this device, then block once the owner turned the switch on."""
        registrar = self._registrar
        record = registrar.state.devices.get(self._blocking)
        label = device_label(record) if record is not None else f"device {self._blocking[:16]}"
        values = placeholders({"device": label})
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := confirm_errors(user_input)):
            block(registrar, self._blocking, "blocked by the owner")
            return self._finished("blocked_now", values)
        return self.async_show_form(
            step_id="block_device_confirm",
            data_schema=CONFIRM_SCHEMA,
            description_placeholders=values,
            errors=errors,
        )

"""Actions for automations: rotate the home key, hand a device over. Both are admin-only."""

from __future__ import annotations

import base64

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr, issue_registry as ir
from homeassistant.helpers.service import async_register_admin_service
import voluptuous as vol

from .const import DOMAIN
from .protocol.errors import HomeKeyStringError
from .protocol.home_key import parse_home_keys
from .registrar.core import Registrar
from .registrar.handover import hand_over
from .registrar.ports import StepError
from .registrar.rotation import rotate_home_key
from .registrar.text import Place, shown

SERVICE_ROTATE_HOME_KEY = "rotate_home_key"
SERVICE_HAND_OVER_DEVICE = "hand_over_device"
ATTR_DESTROY_OLD_KEY = "destroy_old_key"
ATTR_DEVICE_ID = "device_id"
ATTR_NEW_OWNER = "new_owner"

ROTATE_SCHEMA = vol.Schema({vol.Optional(ATTR_DESTROY_OLD_KEY, default=False): cv.boolean})
HAND_OVER_SCHEMA = vol.Schema(
    {vol.Required(ATTR_DEVICE_ID): cv.string, vol.Required(ATTR_NEW_OWNER): cv.string}
)


def _registrar(hass: HomeAssistant) -> Registrar:
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            registrar: Registrar = entry.runtime_data.registrar
            return registrar
    raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_loaded")


def _step_error(err: StepError) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=err.reason,
        translation_placeholders={key: shown(value, Place.PLAIN) for key, value in err.placeholders.items()},
    )


async def _rotate(call: ServiceCall) -> ServiceResponse:
    registrar = _registrar(call.hass)
    try:
        progress = await rotate_home_key(registrar, destroy_old=call.data[ATTR_DESTROY_OLD_KEY])
    except StepError as err:
        raise _step_error(err) from err
    ir.async_delete_issue(call.hass, DOMAIN, "home_key_old")  # the key is new
    return {"devices_pending": progress.pending, "devices_moved": progress.moved}


async def _hand_over(call: ServiceCall) -> ServiceResponse:
    registrar = _registrar(call.hass)
    device = dr.async_get(call.hass).async_get(call.data[ATTR_DEVICE_ID])
    autoadd_id = (
        next((ident for domain, ident in device.identifiers if domain == DOMAIN), None) if device else None
    )
    if autoadd_id is None:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="unknown_device")
    try:
        new_owner = parse_home_keys(call.data[ATTR_NEW_OWNER])
    except HomeKeyStringError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_home_key_string",
            translation_placeholders={"reason": shown(err.detail, Place.PLAIN, cap=160)},  # quotes the input
        ) from err
    try:
        result = await hand_over(registrar, autoadd_id, new_owner)
    except StepError as err:
        raise _step_error(err) from err
    return {"delivered": result.delivered, "transfer_file": base64.b64encode(result.transfer).decode("ascii")}


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, at integration setup)."""
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_ROTATE_HOME_KEY,
        _rotate,
        ROTATE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_HAND_OVER_DEVICE,
        _hand_over,
        HAND_OVER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )

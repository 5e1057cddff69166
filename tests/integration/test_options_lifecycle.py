"""The options flow for ownership over time: rotating the home key and the settings (the reminder to rotate
it). Driven as the frontend would, against reference devices on 127.0.0.1; the helpers are shared.

Handing devices over is in test_options_hand_over.py; accepting transfer files, revoking manufacturers
and blocking devices in test_options_devices.py.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util.file import WriteError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import CONF_ASK_ABOUT_MANUFACTURERS, CONF_MAX_KEY_AGE_DAYS, DOMAIN
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.handover import hand_over
from custom_components.autoadd.registrar.keys import HomeKey
from custom_components.autoadd.storage import REGISTRAR_STORE
from tests.reference_device import RunningDevice

from .conftest import onboard, registrar_of, settle

# --- helpers ------------------------------------------------------------------------------------------------


def fields(result: ConfigFlowResult) -> dict[str, Any]:
    """The form's fields by name."""
    schema = result["data_schema"]
    assert schema is not None
    return {str(marker.schema): marker for marker in schema.schema}


def field_options(result: ConfigFlowResult, name: str) -> list[Any]:
    """The options a select field offers."""
    selector = result["data_schema"].schema[fields(result)[name]]  # type: ignore[union-attr]
    return list(selector.config["options"])


def placeholders(result: ConfigFlowResult) -> dict[str, str]:
    """The form's description placeholders."""
    shown = result["description_placeholders"]
    assert shown is not None
    return dict(shown)


def assert_form(result: ConfigFlowResult, step_id: str, errors: dict[str, str] | None = None) -> None:
    """The result is the form of `step_id`, with these errors (none by default)."""
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == step_id
    assert (result.get("errors") or {}) == (errors or {})


async def open_options(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    """Open AutoAdd's options and pick a menu entry."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    return await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": step})


async def submit(
    hass: HomeAssistant, result: ConfigFlowResult, user_input: dict[str, Any]
) -> ConfigFlowResult:
    """Submit a form of the options flow; wait for whatever it started."""
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    await settle(hass)
    return result


async def handed_over_offline(
    hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice, buyer: PrivateKey
) -> bytes:
    """Onboard the device, take it offline and sign a hand-over it cannot take: the transfer file."""
    await onboard(hass, entry, device)
    await device.stop()
    result = await hand_over(registrar_of(entry), device.spec.device_id.hex(), buyer.public_key())
    assert not result.delivered
    return result.transfer


def writes_fail(store: str) -> AbstractContextManager[Any]:
    """One store cannot be written (the others still can)."""
    real = Store._async_write_data  # the hass_storage mock

    async def write(self: Store[Any], data: dict[str, Any]) -> None:
        if self.key == store:
            raise WriteError("disk full")
        await real(self, data)

    return patch.object(Store, "_async_write_data", write)


def registrar_writes_fail() -> AbstractContextManager[Any]:
    """The registrar store cannot be written (the key store still can)."""
    return writes_fail(REGISTRAR_STORE)


# --- rotating the home key ----------------------------------------------------------------------------------


async def test_rotate_home_key(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The form shows the key and the devices on it; rotating shows the new key and who still has to move."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    registrar = registrar_of(loaded)

    result = await open_options(hass, loaded, "rotate_home_key")
    assert_form(result, "rotate_home_key")
    assert set(fields(result)) == {"destroy_old_key"}
    assert fields(result)["destroy_old_key"].default() is False
    shown = placeholders(result)
    assert shown["fingerprint"] == format_fingerprint(fingerprint(home.public_key()))
    assert int(shown["age"]) >= 0
    assert (shown["moved"], shown["pending"]) == ("2", "0")

    result = await hass.config_entries.options.async_configure(result["flow_id"], {"destroy_old_key": False})
    # The new key, and how many are still to move (the words say the links are being sent now).
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "rotated"
    new_key = registrar.home
    assert new_key.fingerprint != fingerprint(home.public_key())
    shown = placeholders(result)
    assert shown["home_key"] == format_home_key(new_key.key.public_key())
    assert shown["fingerprint"] == format_fingerprint(new_key.fingerprint)
    assert (shown["moved"], shown["pending"]) == ("0", "2")  # links signed; none delivered yet
    await settle(hass)
    assert loaded.options == {}
    assert online.device is not None
    assert online.device.state.owner == new_key.fingerprint
    result = await open_options(hass, loaded, "rotate_home_key")
    assert (placeholders(result)["moved"], placeholders(result)["pending"]) == ("1", "1")


async def test_rotation_in_progress(hass: HomeAssistant, loaded: MockConfigEntry, home: PrivateKey) -> None:
    """While a new key is staged, a second rotation is refused on the form, which stays open."""
    registrar = registrar_of(loaded)
    registrar.keys.staged = HomeKey.generate(registrar.home.key_type)

    result = await open_options(hass, loaded, "rotate_home_key")
    result = await submit(hass, result, {"destroy_old_key": True})

    assert_form(result, "rotate_home_key", {"base": "rotation_in_progress"})
    assert registrar.home.fingerprint == fingerprint(home.public_key())
    assert registrar.keys.retired == []


async def test_rotation_that_cannot_be_stored(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The links cannot be written: the form says so and nothing changes, the home key neither."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)

    result = await open_options(hass, loaded, "rotate_home_key")
    with registrar_writes_fail():
        result = await submit(hass, result, {"destroy_old_key": True})

    assert_form(result, "rotate_home_key", {"base": "storage_failed"})
    assert registrar.home.fingerprint == fingerprint(home.public_key())
    assert registrar.keys.staged is None
    assert registrar.state.devices[device.spec.device_id.hex()].change is None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())


# --- settings -----------------------------------------------------------------------------------------------


async def test_settings_store_the_home_key_age(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """The maximum age is stored in the options, as whole days, and shown as the default next time; so is
    whether unknown manufacturers are asked about (on until the owner turns it off), which the registrar
    follows at once."""
    result = await open_options(hass, loaded, "settings")
    assert_form(result, "settings")
    assert fields(result)[CONF_MAX_KEY_AGE_DAYS].default() == 0
    assert fields(result)[CONF_ASK_ABOUT_MANUFACTURERS].default() is True

    result = await submit(hass, result, {CONF_MAX_KEY_AGE_DAYS: 365.0})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {CONF_MAX_KEY_AGE_DAYS: 365, CONF_ASK_ABOUT_MANUFACTURERS: True}

    result = await open_options(hass, loaded, "settings")
    assert fields(result)[CONF_MAX_KEY_AGE_DAYS].default() == 365
    result = await submit(hass, result, {CONF_MAX_KEY_AGE_DAYS: 365, CONF_ASK_ABOUT_MANUFACTURERS: False})
    assert loaded.options == {CONF_MAX_KEY_AGE_DAYS: 365, CONF_ASK_ABOUT_MANUFACTURERS: False}
    assert registrar_of(loaded).ask_about_manufacturers is False
    result = await open_options(hass, loaded, "settings")
    assert fields(result)[CONF_ASK_ABOUT_MANUFACTURERS].default() is False


async def test_old_home_key_reminder(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A key older than the age set raises a repair issue; 0 removes it; so does rotating the key."""
    registry = ir.async_get(hass)
    registrar = registrar_of(loaded)
    assert (registrar.home.created_at.year, registrar.home.created_at.month) == (2026, 6)  # long ago
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None

    await submit(hass, await open_options(hass, loaded, "settings"), {CONF_MAX_KEY_AGE_DAYS: 1})
    issue = registry.async_get_issue(DOMAIN, "home_key_old")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["max"] == "1"
    assert int(issue.translation_placeholders["age"]) > 1

    await submit(hass, await open_options(hass, loaded, "settings"), {CONF_MAX_KEY_AGE_DAYS: 0})
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None

    await submit(hass, await open_options(hass, loaded, "settings"), {CONF_MAX_KEY_AGE_DAYS: 1})
    assert registry.async_get_issue(DOMAIN, "home_key_old") is not None

    result = await open_options(hass, loaded, "rotate_home_key")
    result = await submit(hass, result, {"destroy_old_key": True})
    assert result["reason"] == "rotated"
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None  # the key is new
    assert loaded.options == {CONF_MAX_KEY_AGE_DAYS: 1, CONF_ASK_ABOUT_MANUFACTURERS: True}
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None

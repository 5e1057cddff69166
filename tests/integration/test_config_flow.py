"""Setting AutoAdd up: naming the home, making (or keeping) its key and showing it; discovery; the options.

The home key in the options and its QR code are in test_config_flow_home_key.py; trusting and revoking
manufacturers in test_config_flow_manufacturers.py.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any
from unittest.mock import patch

from homeassistant import config_entries
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN, SERVICE_TYPE
from custom_components.autoadd.home_key_view import QR_PATH
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_key
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    fingerprint,
    format_fingerprint,
    key_type_of,
    private_key_from_pem,
    public_key_to_bytes,
)
from custom_components.autoadd.storage import HOME_KEY_STORE, DurableStore

from .conftest import registrar_of

PEM_HEADER = "-----BEGIN PRIVATE KEY-----"


def fields(result: ConfigFlowResult) -> dict[str, Any]:
    """The form's fields by name."""
    schema = result["data_schema"]
    assert schema is not None
    return {str(marker.schema): marker for marker in schema.schema}


def placeholders(result: ConfigFlowResult) -> dict[str, str]:
    """The form's description placeholders."""
    shown = result["description_placeholders"]
    assert shown is not None
    return dict(shown)


def stored_private_key(hass_storage: dict[str, Any]) -> PrivateKey:
    """The current home key as stored, after checking it is a PEM private key."""
    pem = hass_storage[HOME_KEY_STORE]["data"]["current"]["private_pem"]
    assert isinstance(pem, str)
    assert pem.startswith(PEM_HEADER)
    return private_key_from_pem(pem.encode())


def same_key(shown: str, key: PrivateKey) -> bool:
    """Whether a home key string names this private key's public key."""
    return public_key_to_bytes(parse_home_key(shown)) == public_key_to_bytes(key.public_key())


def assert_shows_home_key(result: ConfigFlowResult, key: PrivateKey) -> None:
    """The home key step shows this key's string, its fingerprint and a signed link to its QR code (in the
    set-up flow a form that then creates the entry; in the options, a page with only a Close button)."""
    if result["type"] is FlowResultType.ABORT:
        assert result["reason"] == "home_key"
    else:
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "home_key"
    shown = placeholders(result)
    assert shown["home_key"].startswith("AAHK1-")
    assert shown["home_key"] == format_home_key(key.public_key())
    assert same_key(shown["home_key"], key)
    assert shown["fingerprint"] == format_fingerprint(fingerprint(key.public_key()))
    assert shown["qr_code"].startswith(f"![QR code]({QR_PATH}?authSig=")


def discovery(model: str | None = "Lamp 1", device_id: str = "00" * 16) -> ZeroconfServiceInfo:
    """What zeroconf hands the flow for an AutoAdd device's announcement."""
    properties = {"id": device_id, "v": "1", "st": "unclaimed"}
    if model is not None:
        properties["md"] = model
    return ZeroconfServiceInfo(
        ip_address=ip_address("192.0.2.10"),
        ip_addresses=[ip_address("192.0.2.10")],
        port=8443,
        hostname=f"autoadd-{device_id[:8]}.local.",
        type=SERVICE_TYPE,
        name=f"AutoAdd {device_id[:8]}.{SERVICE_TYPE}",
        properties=properties,
    )


async def open_options(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    """Open AutoAdd's options and pick a menu entry."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    return await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": step})


# --- setting up ---------------------------------------------------------------------------------------------


async def test_user_form_offers_a_key_type_when_there_is_no_home_key(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Setting up for the first time asks for the home's name and the type of key to make."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    assert placeholders(result) == {"existing": "no"}
    shown = fields(result)
    assert set(shown) == {CONF_HOME_NAME, CONF_KEY_TYPE, "make_recovery_key", "restore"}
    assert shown[CONF_HOME_NAME].default() == hass.config.location_name
    assert shown[CONF_KEY_TYPE].default() == KeyType.ED25519.value
    assert shown["make_recovery_key"].default() is True  # recommended; the owner may turn it off
    assert shown["restore"].default() is False
    assert HOME_KEY_STORE not in hass_storage  # nothing is made before the owner submits


@pytest.mark.parametrize("key_type", list(KeyType))
async def test_setting_up_makes_a_home_key_and_shows_it(
    hass: HomeAssistant, hass_storage: dict[str, Any], key_type: KeyType
) -> None:
    """Submitting makes a home key of the chosen type, shows its string, then creates the entry."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: key_type.value, "make_recovery_key": False},
    )

    key = stored_private_key(hass_storage)  # on disk before the flow names it
    assert key_type_of(key) is key_type
    assert hass_storage[HOME_KEY_STORE]["data"]["retired"] == []
    assert_shows_home_key(result, key)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Cottage"
    assert result["data"] == {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: key_type.value}
    entry = result["result"]
    assert entry.data == {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: key_type.value}
    assert PEM_HEADER not in repr(dict(entry.data))
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert registrar_of(entry).home.fingerprint == fingerprint(key.public_key())
    assert stored_private_key(hass_storage).public_key() == key.public_key()  # not replaced on setup


async def test_a_home_key_that_cannot_be_stored_is_not_used(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """If the new key cannot be written, the form says so and shows no key; submitting again works."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    user_input = {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: KeyType.ED25519.value, "make_recovery_key": False}

    with patch.object(DurableStore, "_async_write_data", side_effect=OSError("disk full")):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "storage_failed"}
    assert set(fields(result)) == {CONF_HOME_NAME, CONF_KEY_TYPE, "make_recovery_key", "restore"}
    assert HOME_KEY_STORE not in hass_storage
    assert not hass.config_entries.async_entries(DOMAIN)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert_shows_home_key(result, stored_private_key(hass_storage))


async def test_setting_up_again_keeps_the_stored_home_key(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """A home key left from an earlier setup is kept: no key type is asked and no new key is made."""
    stored_before = dict(hass_storage_with_home[HOME_KEY_STORE]["data"])

    with patch.object(DurableStore, "async_save_durable", side_effect=AssertionError("key written")) as save:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "user"
        assert placeholders(result) == {"existing": "yes"}
        assert set(fields(result)) == {CONF_HOME_NAME, "restore"}  # a recovery key: from Configure

        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_HOME_NAME: "Home"})
        assert_shows_home_key(result, home)

        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        await hass.async_block_till_done()
    save.assert_not_called()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Home"
    assert result["data"] == {CONF_HOME_NAME: "Home", CONF_KEY_TYPE: "ed25519"}
    assert registrar_of(result["result"]).home.fingerprint == fingerprint(home.public_key())
    assert hass_storage_with_home[HOME_KEY_STORE]["data"] == stored_before


async def test_a_second_registrar_is_refused(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """With AutoAdd set up, starting another setup stops at once: one registrar per Home Assistant."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# --- discovery ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "title"), [("Lamp 1", "Lamp 1"), (None, "AutoAdd")])
async def test_a_discovered_device_offers_to_set_up_autoadd(
    hass: HomeAssistant, hass_storage: dict[str, Any], model: str | None, title: str
) -> None:
    """A device on the network offers setup, titled with its model; confirming leads to the user step."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(model)
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"] == {"model": title}
    assert flow["context"]["unique_id"] == DOMAIN

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert set(fields(result)) == {CONF_HOME_NAME, CONF_KEY_TYPE, "make_recovery_key", "restore"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOME_NAME: "Flat", CONF_KEY_TYPE: "ed25519", "make_recovery_key": False}
    )
    assert_shows_home_key(result, stored_private_key(hass_storage))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_HOME_NAME: "Flat", CONF_KEY_TYPE: "ed25519"}


async def test_more_devices_do_not_offer_setup_twice(hass: HomeAssistant) -> None:
    """While one setup offer is open, another device's announcement adds no second offer."""
    first = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(device_id="01" * 16)
    )
    assert first["type"] is FlowResultType.FORM

    second = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(device_id="02" * 16)
    )

    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"
    assert len(hass.config_entries.flow.async_progress_by_handler(DOMAIN)) == 1


async def test_no_setup_offer_once_autoadd_is_set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """With a registrar already set up, a discovered device offers nothing (the registrar adds it)."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery()
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


# --- options ----------------------------------------------------------------------------------------------


async def test_options_menu(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """The options offer the home key, its rotation, hand-overs, manufacturers, blocks and settings."""
    result = await hass.config_entries.options.async_init(loaded.entry_id)

    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    assert result["menu_options"] == [
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


async def test_options_need_a_running_registrar(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Options on an entry that did not load (no home key) abort with a clear reason instead of failing."""
    assert not await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"


async def test_the_owners_own_set_up_goes_ahead_while_a_discovery_offer_is_open(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A device announced itself (an offer waits), and the owner adds AutoAdd from the integrations
    page instead: the set-up goes through and the offer is gone."""
    offer = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(device_id="01" * 16)
    )
    assert offer["type"] is FlowResultType.FORM

    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOME_NAME: "Flat", CONF_KEY_TYPE: "ed25519", "make_recovery_key": False}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []

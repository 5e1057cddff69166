"""The options flow for ownership over time: rotation, hand-overs both ways, revocation, blocks, settings.

What the owner sees in AutoAdd's options, driven as the frontend would, against reference devices on
127.0.0.1. The home key step and trusting manufacturers are in test_config_flow.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import CONF_MAX_KEY_AGE_DAYS, DOMAIN
from custom_components.autoadd.lifecycle import LifecycleError, async_hand_over, transfer_file
from custom_components.autoadd.options_flow import _read_upload
from custom_components.autoadd.protocol.chain import encode_chain
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import (
    PrivateKey,
    fingerprint,
    format_fingerprint,
)
from custom_components.autoadd.registrar.core import Registrar
from custom_components.autoadd.storage import HomeKey
from custom_components.autoadd.transfer_view import TRANSFER_PATH
from tests.factory import fixed_key
from tests.reference_device import RunningDevice

from .conftest import candidate_for, registered, switch_home

#: What file_upload returns for an uploaded file (the file selector takes only such identifiers).
FILE_ID = "0193d6c0b8f74a2c9d3b5e6f7a8b9c0d"

# --- helpers ------------------------------------------------------------------------------------------------


def registrar_of(entry: MockConfigEntry) -> Registrar:
    """The loaded entry's registrar."""
    registrar = entry.runtime_data.registrar
    assert isinstance(registrar, Registrar)
    return registrar


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
    """Submit a form of the options flow."""
    return await hass.config_entries.options.async_configure(result["flow_id"], user_input)


async def announce(
    hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice, *, claimed: bool = False
) -> None:
    """The device announces itself; wait for whatever the registrar starts."""
    registrar_of(entry).async_candidate(candidate_for(device, claimed=claimed))
    await hass.async_block_till_done(wait_background_tasks=True)


async def onboard(hass: HomeAssistant, entry: MockConfigEntry, *devices: RunningDevice) -> None:
    """Onboard devices whose invoice names the entry's home."""
    for device in devices:
        await announce(hass, entry, device)
        assert registered(hass, device.spec.device_id.hex()) is not None


async def handed_over_offline(
    hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice, buyer: PrivateKey
) -> bytes:
    """Onboard the device, take it offline and sign a hand-over it cannot take: the transfer file."""
    await onboard(hass, entry, device)
    await device.stop()
    result = await async_hand_over(registrar_of(entry), device.spec.device_id.hex(), buyer.public_key())
    assert not result.delivered
    return result.transfer


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
    shown = placeholders(result)
    assert shown["fingerprint"] == format_fingerprint(fingerprint(home.public_key()), 4)
    assert int(shown["age"]) >= 0
    assert (shown["moved"], shown["pending"]) == ("2", "0")

    result = await submit(hass, result, {"destroy_old_key": False})
    assert_form(result, "rotation_started")
    new_key = registrar.home
    assert new_key.fingerprint != fingerprint(home.public_key())
    shown = placeholders(result)
    assert shown["home_key"] == format_home_key(new_key.key.public_key())
    assert shown["home_key"] != format_home_key(home.public_key())
    assert shown["fingerprint"] == format_fingerprint(new_key.fingerprint, 4)
    assert (shown["moved"], shown["pending"]) == ("0", "2")  # links signed; none delivered yet

    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {}
    assert loaded.options == {}

    await hass.async_block_till_done(wait_background_tasks=True)
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
    registrar.keys.staged = None


# --- handing a device over ----------------------------------------------------------------------------------


async def test_hand_over_needs_a_device(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """With no device to hand over, the step says so."""
    result = await open_options(hass, loaded, "hand_over")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices"


async def test_hand_over_with_an_invalid_home_key_string(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A mistyped home key string keeps the form, says why, and keeps what was typed."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "hand_over")
    assert_form(result, "hand_over")
    assert set(fields(result)) == {"device", "new_owner"}
    assert field_options(result, "device") == [{"value": device_id, "label": "Acme Lamp 1 SN0001"}]
    assert placeholders(result) == {"reason": ""}

    result = await submit(hass, result, {"device": device_id, "new_owner": "AAHK1-NOT-A-KEY"})
    assert_form(result, "hand_over", {"new_owner": "invalid_home_key_string"})
    assert "characters after the prefix" in placeholders(result)["reason"]
    suggested = fields(result)["new_owner"].description
    assert suggested == {"suggested_value": "AAHK1-NOT-A-KEY"}
    assert device_id in registrar_of(loaded).store.data.devices


async def test_hand_over_pushed_to_an_online_device(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Both fingerprints are shown before signing; an online device takes the link and leaves this home."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "hand_over")
    result = await submit(
        hass, result, {"device": device_id, "new_owner": format_home_key(buyer.public_key())}
    )
    assert_form(result, "hand_over_confirm")
    assert placeholders(result) == {
        "device": "Acme Lamp 1 SN0001",
        "this_home": format_fingerprint(fingerprint(home.public_key())),
        "new_owner": format_fingerprint(fingerprint(buyer.public_key())),
    }
    assert registrar_of(loaded).store.data.devices[device_id].handover is None  # nothing signed yet

    result = await submit(hass, result, {})
    assert_form(result, "hand_over_done")
    shown = placeholders(result)
    assert shown["delivered"] == "yes"
    assert registered(hass, device_id) is None
    assert device_id not in registrar_of(loaded).store.data.devices
    assert device.device is not None
    assert device.device.chain.head.owner_fingerprints == (fingerprint(buyer.public_key()),)
    assert not device.device.claimed  # waits for its new owner

    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {}


async def test_hand_over_to_an_offline_device_gives_a_transfer_file(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """An offline device stays until it takes the link; the owner gets a download link and a QR code."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "hand_over")
    result = await submit(
        hass, result, {"device": device_id, "new_owner": format_home_key(buyer.public_key())}
    )
    result = await submit(hass, result, {})

    assert_form(result, "hand_over_done")
    shown = placeholders(result)
    assert shown["delivered"] == "no"
    data = transfer_file(registrar_of(loaded), device_id)
    assert shown["size"] == str(len(data))
    assert shown["download"].startswith(TRANSFER_PATH.format(device_id=device_id) + "?authSig=")
    assert shown["qr_code"].startswith("![QR code](data:image/svg+xml")
    assert registered(hass, device_id) is not None
    assert registrar_of(loaded).store.data.devices[device_id].handover is not None

    client = await hass_client()
    response = await client.get(shown["download"])
    assert response.status == HTTPStatus.OK
    assert await response.read() == data

    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_hand_over_refused_on_confirm(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A hand-over the lifecycle refuses keeps the confirmation open with the reason."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    result = await open_options(hass, loaded, "hand_over")
    result = await submit(
        hass, result, {"device": device_id, "new_owner": format_home_key(fixed_key("buyer").public_key())}
    )

    with patch(
        "custom_components.autoadd.options_flow.async_hand_over", side_effect=LifecycleError("not_owner")
    ):
        result = await submit(hass, result, {})

    assert_form(result, "hand_over_confirm", {"base": "not_owner"})
    assert placeholders(result)["device"] == "Acme Lamp 1 SN0001"
    assert registered(hass, device_id) is not None


# --- hand-overs in progress ---------------------------------------------------------------------------------


async def test_no_pending_hand_overs(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A device without a hand-over is not offered; with none in progress the step says so."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    result = await open_options(hass, loaded, "pending_hand_overs")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_pending_hand_overs"


async def test_cancel_a_pending_hand_over(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Cancelling needs the device: offline it is an error on the form, online the hand-over is undone."""
    device: RunningDevice = await devices([home])
    await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "pending_hand_overs")
    assert_form(result, "pending_hand_overs")
    assert field_options(result, "device") == [{"value": device_id, "label": "Acme Lamp 1 SN0001"}]
    assert fields(result)["action"].default() == "cancel"
    result = await submit(hass, result, {"device": device_id, "action": "cancel"})
    assert_form(result, "pending_hand_overs", {"base": "device_unreachable"})
    assert registrar_of(loaded).store.data.devices[device_id].handover is not None

    await device.start(device.port)
    result = await submit(hass, result, {"device": device_id, "action": "cancel"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {}
    record = registrar_of(loaded).store.data.devices[device_id]
    assert record.handover is None
    assert registered(hass, device_id) is not None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())
    result = await open_options(hass, loaded, "pending_hand_overs")
    assert result["type"] is FlowResultType.ABORT


async def test_let_a_pending_hand_over_go(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Letting the device go now: it leaves this home without having taken the link."""
    device: RunningDevice = await devices([home])
    await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "pending_hand_overs")
    result = await submit(hass, result, {"device": device_id, "action": "finish"})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert registered(hass, device_id) is None
    assert device_id not in registrar_of(loaded).store.data.devices
    last = registrar_of(loaded).store.data.history[device_id][-1]
    assert (last["event"], last["confirmed"]) == ("handed_over", "false")


# --- accepting a transfer file ------------------------------------------------------------------------------


async def upload(
    hass: HomeAssistant, entry: MockConfigEntry, data: bytes
) -> tuple[ConfigFlowResult, MagicMock]:
    """Open "Accept a device" and upload `data` as the transfer file."""
    result = await open_options(hass, entry, "accept_transfer")
    assert_form(result, "accept_transfer")
    assert set(fields(result)) == {"file"}
    with patch("custom_components.autoadd.options_flow._read_upload", return_value=data) as read:
        result = await submit(hass, result, {"file": FILE_ID})
    return result, read


async def test_accept_a_transfer_file(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """The buyer uploads the file, sees what it hands over and from whom, and accepts: the device is then
    added without asking when it shows up."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    transfer = await handed_over_offline(hass, loaded, device, buyer)
    device_id = device.spec.device_id.hex()
    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)

    result, read = await upload(hass, home_b, transfer)
    read.assert_called_once_with(hass, FILE_ID)
    assert_form(result, "accept_transfer_confirm")
    assert placeholders(result) == {
        "manufacturer": "Acme",
        "model": "Lamp 1",
        "device": device_id,
        "previous_owner": format_fingerprint(fingerprint(home.public_key())),
    }
    assert device_id not in registrar_of(home_b).store.data.approvals

    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    approval = registrar_of(home_b).store.data.approvals[device_id]
    assert approval["previous_owner"] == fingerprint(home.public_key()).hex()
    assert len(approval["links"]) == 2

    await device.start(device.port)
    await announce(hass, home_b, device, claimed=True)
    assert registered(hass, device_id) is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(buyer.public_key())


async def test_transfer_file_for_another_home(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The seller uploading their own transfer file is told it hands the device to another home."""
    device: RunningDevice = await devices([home])
    transfer = await handed_over_offline(hass, loaded, device, fixed_key("buyer home"))

    result, _ = await upload(hass, loaded, transfer)

    assert_form(result, "accept_transfer", {"file": "not_for_this_home"})


async def test_transfer_file_from_an_untrusted_manufacturer(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """A buyer who does not trust the device's manufacturer cannot accept its transfer file."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    transfer = await handed_over_offline(hass, loaded, device, buyer)
    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    registrar_of(home_b).store.data.roots.clear()

    result, _ = await upload(hass, home_b, transfer)

    assert_form(result, "accept_transfer", {"file": "untrusted_manufacturer"})
    assert registrar_of(home_b).store.data.approvals == {}


async def test_an_invoice_is_not_a_transfer_file(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An invoice chain naming this home directly is no hand-over from another owner."""
    device: RunningDevice = await devices([home])

    result, _ = await upload(hass, loaded, encode_chain(device.spec.links))

    assert_form(result, "accept_transfer", {"file": "not_a_handover"})


async def test_garbage_is_not_a_transfer_file(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Whatever else is uploaded is refused as an invalid transfer file."""
    result, _ = await upload(hass, loaded, b"this is not CBOR \xff\xfe")

    assert_form(result, "accept_transfer", {"file": "invalid_transfer"})


def test_read_upload_reads_the_uploaded_file(hass: HomeAssistant, tmp_path: Path) -> None:
    """The uploaded file is read through file_upload, which removes it afterwards."""
    path = tmp_path / "transfer.cbor"
    path.write_bytes(b"\x81\x41\x00")
    opened: list[str] = []

    @contextmanager
    def process_uploaded_file(hass_: HomeAssistant, file_id: str) -> Iterator[Path]:
        assert hass_ is hass
        opened.append(file_id)
        yield path

    with patch("custom_components.autoadd.options_flow.process_uploaded_file", process_uploaded_file):
        assert _read_upload(hass, "file-id") == b"\x81\x41\x00"
    assert opened == ["file-id"]


# --- revoking a manufacturer --------------------------------------------------------------------------------


async def test_revoking_a_manufacturer_flags_its_devices_and_refuses_new_ones(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    trusted: list[dict[str, str]],
) -> None:
    """Onboarded devices of a revoked root are flagged; a new device from it is refused."""
    first: RunningDevice = await devices([home], serial="SN0001")
    await onboard(hass, loaded, first)
    registrar = registrar_of(loaded)
    digest = trusted[0]["fingerprint"]

    result = await open_options(hass, loaded, "remove_manufacturer")
    result = await submit(hass, result, {"roots": [digest]})
    assert result["type"] is FlowResultType.CREATE_ENTRY

    record = registrar.store.data.devices[first.spec.device_id.hex()]
    assert "revoked_manufacturer" in record.flags
    assert registrar.store.data.revoked_roots[digest]["name"] == "Acme"
    assert registrar.store.data.history[record.device_id][-1]["event"] == "revoked"

    second: RunningDevice = await devices([home], serial="SN0002")
    await announce(hass, loaded, second)
    second_id = second.spec.device_id.hex()
    assert registered(hass, second_id) is None
    assert registrar.store.data.refused[second_id].code == "untrusted_manufacturer"


# --- blocking -----------------------------------------------------------------------------------------------


async def test_block_a_known_device_and_unblock_it(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A known device is picked from the list and flagged; the unblock field appears once one is blocked."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)

    result = await open_options(hass, loaded, "block_device")
    assert_form(result, "block_device")
    assert set(fields(result)) == {"block"}
    assert field_options(result, "block") == [{"value": device_id, "label": "Acme Lamp 1 SN0001"}]
    result = await submit(hass, result, {"block": device_id})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {}
    assert registrar.store.data.blocked[device_id]["reason"] == "blocked by the owner"
    assert registrar.store.data.devices[device_id].flags == ["blocked"]

    result = await open_options(hass, loaded, "block_device")
    assert set(fields(result)) == {"block", "unblock"}
    assert field_options(result, "block") == []  # a blocked device is not offered again
    assert field_options(result, "unblock") == [device_id]
    result = await submit(hass, result, {"unblock": [device_id]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert registrar.store.data.blocked == {}
    assert registrar.store.data.devices[device_id].flags == []
    events = [event["event"] for event in registrar.store.data.history[device_id]]
    assert events[-2:] == ["blocked", "unblocked"]


async def test_block_a_pasted_device_identifier(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A pasted identifier is blocked (spaces and case do not matter); the device's announcement then
    starts nothing."""
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)

    result = await open_options(hass, loaded, "block_device")
    result = await submit(hass, result, {"block": f"  {device_id.upper()} "})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert list(registrar.store.data.blocked) == [device_id]

    await announce(hass, loaded, device)
    assert registered(hass, device_id) is None
    assert device_id not in registrar.store.data.pending
    assert device_id not in registrar.store.data.refused
    assert device.device is not None
    assert not device.device.claimed


async def test_block_an_invalid_identifier(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Anything but 64 hexadecimal characters is refused on the form; nothing is blocked."""
    result = await open_options(hass, loaded, "block_device")
    result = await submit(hass, result, {"block": "not-a-device"})

    assert_form(result, "block_device", {"block": "invalid_device_id"})
    assert registrar_of(loaded).store.data.blocked == {}

    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert registrar_of(loaded).store.data.blocked == {}


# --- settings -----------------------------------------------------------------------------------------------


async def test_settings_store_the_home_key_age(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """The maximum age is stored in the options, as whole days, and shown as the default next time."""
    result = await open_options(hass, loaded, "settings")
    assert_form(result, "settings")
    assert fields(result)[CONF_MAX_KEY_AGE_DAYS].default() == 0

    result = await submit(hass, result, {CONF_MAX_KEY_AGE_DAYS: 365.0})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {CONF_MAX_KEY_AGE_DAYS: 365}

    result = await open_options(hass, loaded, "settings")
    assert fields(result)[CONF_MAX_KEY_AGE_DAYS].default() == 365


async def test_old_home_key_reminder(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A key older than the age set raises a repair issue; 0 removes it; so does rotating the key."""
    registry = ir.async_get(hass)
    registrar = registrar_of(loaded)
    assert (registrar.home.created_at.year, registrar.home.created_at.month) == (2026, 6)  # long ago
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None

    result = await open_options(hass, loaded, "settings")
    await submit(hass, result, {CONF_MAX_KEY_AGE_DAYS: 1})
    await hass.async_block_till_done()
    issue = registry.async_get_issue(DOMAIN, "home_key_old")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["max"] == "1"
    assert int(issue.translation_placeholders["age"]) > 1

    result = await open_options(hass, loaded, "settings")
    await submit(hass, result, {CONF_MAX_KEY_AGE_DAYS: 0})
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None

    result = await open_options(hass, loaded, "settings")
    await submit(hass, result, {CONF_MAX_KEY_AGE_DAYS: 1})
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, "home_key_old") is not None

    result = await open_options(hass, loaded, "rotate_home_key")
    result = await submit(hass, result, {"destroy_old_key": True})
    assert_form(result, "rotation_started")
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {CONF_MAX_KEY_AGE_DAYS: 1}
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, "home_key_old") is None


async def test_expired_upload_is_an_invalid_transfer(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """An upload that expired before the step read it is reported, not a crash."""
    result = await open_options(hass, loaded, "accept_transfer")
    with patch("custom_components.autoadd.options_flow._read_upload", side_effect=ValueError("unknown file")):
        result = await submit(hass, result, {"file": FILE_ID})
    assert_form(result, "accept_transfer", {"file": "invalid_transfer"})


async def test_device_that_left_before_confirming(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A device that left this home between the form and the confirmation ends the flow with a reason."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    result = await open_options(hass, loaded, "hand_over")
    result = await submit(
        hass, result, {"device": device_id, "new_owner": format_home_key(fixed_key("buyer").public_key())}
    )
    await registrar_of(loaded).async_finish_hand_over(device_id, confirmed=False)
    await registrar_of(loaded).async_finish_hand_over(device_id, confirmed=False)  # twice is harmless
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "device_gone"

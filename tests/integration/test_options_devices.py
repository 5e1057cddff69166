"""The options flow for which devices this home takes in: accepting a transfer file from a previous owner,
revoking a manufacturer, blocking and unblocking devices. Driven as the frontend would.

Rotation and the settings are in test_options_lifecycle.py, hand-overs in test_options_hand_over.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.autoadd.const import DOMAIN, EVENT_OWNERSHIP
from custom_components.autoadd.options_handover import read_upload
from custom_components.autoadd.protocol.chain import encode_chain
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.record import Phase
from tests.factory import fixed_key
from tests.reference_device import RunningDevice

from .conftest import device_announces, onboard, onboarding_state, registered, registrar_of, switch_home
from .test_options_lifecycle import (
    assert_form,
    field_options,
    fields,
    handed_over_offline,
    open_options,
    placeholders,
    submit,
)

#: What file_upload returns for an uploaded file (the file selector takes only such identifiers).
FILE_ID = "0193d6c0b8f74a2c9d3b5e6f7a8b9c0d"


# --- accepting a transfer file ------------------------------------------------------------------------------


async def upload(
    hass: HomeAssistant, entry: MockConfigEntry, data: bytes
) -> tuple[ConfigFlowResult, MagicMock]:
    """Open "Accept a device" and upload `data` as the transfer file."""
    result = await open_options(hass, entry, "accept_transfer")
    assert_form(result, "accept_transfer")
    assert set(fields(result)) == {"file"}
    with patch("custom_components.autoadd.options_handover.read_upload", return_value=data) as read:
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
    assert (
        placeholders(result)
        == {
            "manufacturer": "Acme",
            "model": "Lamp 1",
            "order_ref": "none",  # the file has no serial number (only the device's certificate has)
            "device": device_id[:16],
            "previous_owner": format_fingerprint(fingerprint(home.public_key())),
        }
    )
    assert device_id not in registrar_of(home_b).state.devices  # nothing accepted before confirming

    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "transfer_accepted"
    assert placeholders(result)["model"] == "Lamp 1"
    record = registrar_of(home_b).state.devices[device_id]
    assert record.phase is Phase.APPROVED
    assert record.approval is not None
    assert record.approval.previous_owner == fingerprint(home.public_key()).hex()
    assert len(record.approval.transfer) == 2
    assert registered(hass, device_id) is None  # added when it shows up

    await device.start(device.port)
    await device_announces(hass, home_b, device, claimed=True)
    assert registered(hass, device_id) is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(buyer.public_key())
    record = registrar_of(home_b).state.devices[device_id]
    assert record.phase is Phase.ONBOARDED
    assert [event["event"] for event in record.history] == ["transfer_accepted", "accepted"]


async def test_transfer_file_for_another_home(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The seller uploading their own transfer file is told it hands the device to another home."""
    device: RunningDevice = await devices([home])
    transfer = await handed_over_offline(hass, loaded, device, fixed_key("buyer home"))

    result, _ = await upload(hass, loaded, transfer)

    assert_form(result, "accept_transfer", {"file": "not_for_this_home"})
    assert registrar_of(loaded).state.devices[device.spec.device_id.hex()].approval is None


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
    registrar_of(home_b).state.roots.clear()

    result, _ = await upload(hass, home_b, transfer)

    assert_form(result, "accept_transfer", {"file": "untrusted_manufacturer"})
    assert device.spec.device_id.hex() not in registrar_of(home_b).state.devices


async def test_an_invoice_is_not_a_transfer_file(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An invoice chain naming this home directly is no hand-over from another owner."""
    device: RunningDevice = await devices([home])

    result, _ = await upload(hass, loaded, encode_chain(device.spec.links))

    assert_form(result, "accept_transfer", {"file": "not_a_handover"})
    assert registrar_of(loaded).state.devices == {}


async def test_garbage_is_not_a_transfer_file(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Whatever else is uploaded is refused as an invalid transfer file."""
    result, _ = await upload(hass, loaded, b"this is not CBOR \xff\xfe")

    assert_form(result, "accept_transfer", {"file": "invalid_transfer"})


async def test_expired_upload_is_an_invalid_transfer(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """An upload that expired before the step read it is reported, not a crash."""
    result = await open_options(hass, loaded, "accept_transfer")
    with patch(
        "custom_components.autoadd.options_handover.read_upload", side_effect=ValueError("unknown file")
    ):
        result = await submit(hass, result, {"file": FILE_ID})
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

    with patch("custom_components.autoadd.options_handover.process_uploaded_file", process_uploaded_file):
        assert read_upload(hass, "file-id") == b"\x81\x41\x00"
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
    assert_form(result, "remove_manufacturer_confirm")
    assert placeholders(result)["devices"] == "1"  # how many of this home's devices it flags
    assert "revoked_manufacturer" not in registrar.state.devices[first.spec.device_id.hex()].flags
    result = await submit(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "manufacturer_revoked"

    record = registrar.state.devices[first.spec.device_id.hex()]
    assert "revoked_manufacturer" in record.flags
    assert record.is_member  # flagged, not removed
    assert registrar.state.revoked_roots[digest]["name"] == "Acme"
    assert record.history[-1] == {
        "at": record.history[-1]["at"],
        "event": "revoked",
        "manufacturer_root": digest,
    }
    assert onboarding_state(hass, record.device_id) == "revoked"

    second: RunningDevice = await devices([home], serial="SN0002")
    await device_announces(hass, loaded, second)
    second_id = second.spec.device_id.hex()
    assert registered(hass, second_id) is None
    refusal = registrar.state.devices[second_id].refusal
    assert refusal is not None
    assert refusal.code == "untrusted_manufacturer"


# --- blocking -----------------------------------------------------------------------------------------------


async def test_block_a_known_device_and_unblock_it(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A known device is picked from the list and blocked; the unblock field appears once one is blocked,
    and unblocking puts the device back as it was."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)

    result = await open_options(hass, loaded, "block_device")
    assert_form(result, "block_device")
    assert set(fields(result)) == {"block", "block_id"}
    assert field_options(result, "block") == [{"value": device_id, "label": "Acme Lamp 1 SN0001"}]
    result = await submit(hass, result, {"block": device_id})
    # What blocking does, before it is done; the switch starts off.
    assert_form(result, "block_device_confirm")
    assert placeholders(result) == {"device": "Acme Lamp 1 SN0001"}
    assert fields(result)["confirm"].default() is False
    result = await submit(hass, result, {"confirm": False})
    assert_form(result, "block_device_confirm", {"confirm": "not_confirmed"})
    assert registrar.state.devices[device_id].phase is Phase.ONBOARDED
    result = await submit(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "blocked_now"
    assert loaded.options == {}
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.BLOCKED
    assert record.history[-1]["event"] == "blocked"
    assert record.history[-1]["reason"] == "blocked by the owner"
    assert registered(hass, device_id) is not None  # a blocked member stays in the registry
    assert onboarding_state(hass, device_id) == "blocked"

    result = await open_options(hass, loaded, "block_device")
    assert set(fields(result)) == {"block_id", "unblock"}  # nothing left to pick for blocking
    assert field_options(result, "unblock") == [{"value": device_id, "label": "Acme Lamp 1 SN0001"}]
    result = await submit(hass, result, {"unblock": [device_id]})  # lifting a block asks nothing
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unblocked"
    assert placeholders(result) == {"devices": "Acme Lamp 1 SN0001"}
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.ONBOARDED
    assert onboarding_state(hass, device_id) == "onboarded"
    events = [event["event"] for event in record.history]
    assert events[-2:] == ["blocked", "unblocked"]
    result = await open_options(hass, loaded, "block_device")
    assert set(fields(result)) == {"block", "block_id"}


async def test_a_blocked_device_is_not_offered_for_blocking_again(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Once blocked, a device is only offered under "Unblock"."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    result = await submit(
        hass, await open_options(hass, loaded, "block_device"), {"block": device.spec.device_id.hex()}
    )
    await submit(hass, result, {"confirm": True})

    result = await open_options(hass, loaded, "block_device")

    assert "block" not in fields(result)  # only under Unblock
    assert field_options(result, "unblock") == [
        {"value": device.spec.device_id.hex(), "label": "Acme Lamp 1 SN0001"}
    ]


async def test_block_a_pasted_device_identifier(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A pasted identifier is blocked (spaces and case do not matter); the device's announcement then
    starts nothing."""
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)

    events = async_capture_events(hass, EVENT_OWNERSHIP)
    result = await open_options(hass, loaded, "block_device")
    result = await submit(hass, result, {"block_id": f"  {device_id.upper()} "})
    assert placeholders(result) == {"device": f"device {device_id[:16]}"}  # never seen: by its id
    result = await submit(hass, result, {"confirm": True})
    assert result["reason"] == "blocked_now"
    assert [(e.data["event"], e.data["name"]) for e in events] == [
        ("blocked", f"AutoAdd device {device_id[:8]}")
    ]
    assert [r.device_id for r in registrar.state.devices.values() if r.phase is Phase.BLOCKED] == [device_id]

    await device_announces(hass, loaded, device)
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.BLOCKED
    assert registered(hass, device_id) is None
    assert record.refusal is None
    assert record.last_seen is None  # never contacted
    assert device.device is not None
    assert not device.device.claimed
    result = await open_options(hass, loaded, "block_device")  # never proved: shown by its id's start
    assert field_options(result, "unblock") == [{"value": device_id, "label": f"device {device_id[:16]}"}]


async def test_block_an_invalid_identifier(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Anything but 64 hexadecimal characters is refused on the form; nothing is blocked."""
    result = await open_options(hass, loaded, "block_device")
    result = await submit(hass, result, {"block_id": "not-a-device"})

    assert_form(result, "block_device", {"block_id": "invalid_device_id"})
    assert fields(result)["block_id"].description == {"suggested_value": "not-a-device"}  # kept to correct
    assert registrar_of(loaded).state.devices == {}

    result = await submit(hass, result, {})  # nothing picked: said so
    assert_form(result, "block_device", {"base": "pick_device"})
    assert registrar_of(loaded).state.devices == {}

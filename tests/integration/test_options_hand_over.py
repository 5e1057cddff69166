"""The options flow for handing a device over and for hand-overs in progress (cancel, or let the device
go), driven as the frontend would against reference devices on 127.0.0.1. Helpers: test_options_lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd import async_remove_config_entry_device
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.handover import transfer_file
from custom_components.autoadd.registrar.ports import StepError
from custom_components.autoadd.registrar.record import ChangeKind, Phase
from custom_components.autoadd.transfer_view import TRANSFER_PATH
from tests.factory import fixed_key
from tests.reference_device import RunningDevice

from .conftest import device_announces, onboard, onboarding_state, registered, registrar_of
from .test_options_lifecycle import (
    assert_form,
    field_options,
    fields,
    handed_over_offline,
    open_options,
    placeholders,
    registrar_writes_fail,
    submit,
)

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
    key_field = result["data_schema"].schema[fields(result)["new_owner"]]  # type: ignore[union-attr]
    assert key_field.config["multiline"] is True  # a whole key string stays visible

    result = await submit(hass, result, {"device": device_id, "new_owner": "AAHK1-NOT-A-KEY"})
    # The reason goes with the field's error ("...: {reason}"), not into the step's description.
    assert_form(result, "hand_over", {"new_owner": "invalid_home_key_string"})
    assert "characters after the prefix" in placeholders(result)["reason"]
    assert fields(result)["new_owner"].description == {"suggested_value": "AAHK1-NOT-A-KEY"}
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED


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
        "new_owner_recovery": "\\-",  # "-" made safe for markdown
    }
    assert registrar_of(loaded).state.devices[device_id].change is None  # nothing signed yet
    assert fields(result)["confirm"].default() is False

    result = await submit(hass, result, {"confirm": False})  # the switch left off: nothing is signed
    assert_form(result, "hand_over_confirm", {"confirm": "not_confirmed"})
    assert registrar_of(loaded).state.devices[device_id].change is None
    assert registered(hass, device_id) is not None

    result = await submit(hass, result, {"confirm": True})
    # A fresh proof showed the device holds the link: the words for that outcome, and nothing else.
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "handed_over"
    assert placeholders(result)["new_owner"] == format_fingerprint(fingerprint(buyer.public_key()))
    assert registered(hass, device_id) is None
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.HANDED_OVER
    assert record.change is None
    assert device.device is not None
    assert device.device.chain.head.owner_fingerprints == (fingerprint(buyer.public_key()),)
    assert not device.device.claimed  # waits for its new owner
    assert loaded.options == {}


async def test_hand_over_to_a_home_with_a_recovery_key_names_both(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The buyer's string names its home key and its recovery key (AAHK2, §5): the hand-over link names
    both as owners, in that order; the confirm step shows the home key's fingerprint."""
    buyer, recovery = fixed_key("buyer home"), fixed_key("buyer recovery")
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "hand_over")
    text = format_home_key(buyer.public_key(), recovery.public_key())
    result = await submit(hass, result, {"device": device_id, "new_owner": text})
    assert placeholders(result)["new_owner"] == format_fingerprint(fingerprint(buyer.public_key()))
    assert placeholders(result)["new_owner_recovery"] == format_fingerprint(
        fingerprint(recovery.public_key())
    )
    result = await submit(hass, result, {"confirm": True})
    assert result["reason"] == "handed_over"
    assert device.device is not None
    assert device.device.chain.head.owner_fingerprints == (
        fingerprint(buyer.public_key()),
        fingerprint(recovery.public_key()),
    )


async def test_hand_over_to_an_offline_device_gives_a_transfer_file(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """An offline device stays until it takes the link; the owner is told so and gets a download link."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "hand_over")
    result = await submit(
        hass, result, {"device": device_id, "new_owner": format_home_key(buyer.public_key())}
    )
    result = await submit(hass, result, {"confirm": True})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "hand_over_signed"
    shown = placeholders(result)
    data = transfer_file(registrar_of(loaded), device_id)
    assert shown["size"] == str(len(data))
    assert shown["download"].startswith(TRANSFER_PATH.format(device_id=device_id) + "?authSig=")
    assert "qr_code" not in shown  # the file is an upload on the buyer's side, not something to scan
    assert registered(hass, device_id) is not None
    change = registrar_of(loaded).state.devices[device_id].change
    assert change is not None
    assert change.kind is ChangeKind.HANDOVER
    assert onboarding_state(hass, device_id) == "handover_pending"

    client = await hass_client()
    response = await client.get(shown["download"])
    assert response.status == HTTPStatus.OK
    assert await response.read() == data

    # Hand-overs in progress lists it again: to whom, since when, with a fresh link to the file.
    result = await open_options(hass, loaded, "pending_hand_overs")
    listed = placeholders(result)["hand_overs"]
    assert listed.startswith("- **Acme Lamp 1 SN0001** to `")
    assert format_fingerprint(fingerprint(buyer.public_key())) in listed
    assert f"[transfer file]({TRANSFER_PATH.format(device_id=device_id)}?authSig=" in listed
    assert ", signed 20" in listed
    link = listed.split("[transfer file](")[1].split(")")[0]
    response = await client.get(link)
    assert response.status == HTTPStatus.OK
    assert await response.read() == data


@pytest.mark.parametrize("failure", ["own_key", "storage_failed"])
async def test_hand_over_refused_on_confirm(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    failure: str,
) -> None:
    """A hand-over to this home's own key, or one that cannot be stored, keeps the confirmation open with
    the reason; nothing is signed."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    new_owner = home if failure == "own_key" else fixed_key("buyer")
    result = await open_options(hass, loaded, "hand_over")
    result = await submit(
        hass, result, {"device": device_id, "new_owner": format_home_key(new_owner.public_key())}
    )

    if failure == "own_key":
        result = await submit(hass, result, {"confirm": True})
    else:
        with registrar_writes_fail():
            result = await submit(hass, result, {"confirm": True})

    assert_form(result, "hand_over_confirm", {"base": failure})
    assert placeholders(result)["device"] == "Acme Lamp 1 SN0001"
    assert registered(hass, device_id) is not None
    assert registrar_of(loaded).state.devices[device_id].change is None
    assert device.device is not None
    assert len(device.device.chain.links) == 1
    with pytest.raises(StepError, match="no_handover"):
        transfer_file(registrar_of(loaded), device_id)


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
    device_entry = registered(hass, device_id)
    assert device_entry is not None
    assert await async_remove_config_entry_device(hass, loaded, device_entry)  # the owner removes it
    assert await async_remove_config_entry_device(hass, loaded, device_entry)  # twice is harmless

    result = await submit(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "device_gone"
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.REMOVED
    assert record.change is None


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
    """The device is online: the cancel is done once its receipt confirms the keep-owner link."""
    device: RunningDevice = await devices([home])
    await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()
    await device.start(device.port)

    result = await open_options(hass, loaded, "pending_hand_overs")
    assert_form(result, "pending_hand_overs")
    assert field_options(result, "device") == [{"value": device_id, "label": "Acme Lamp 1 SN0001"}]
    assert fields(result)["action"].default() == "cancel"
    result = await submit(hass, result, {"device": device_id, "action": "cancel"})
    assert_form(result, "cancel_hand_over")  # what cancelling does, before it is signed
    assert placeholders(result)["device"] == "Acme Lamp 1 SN0001"
    result = await submit(hass, result, {"confirm": False})
    assert_form(result, "cancel_hand_over", {"confirm": "not_confirmed"})
    change = registrar_of(loaded).state.devices[device_id].change
    assert change is not None
    assert change.kind is ChangeKind.HANDOVER
    result = await submit(hass, result, {"confirm": True})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "hand_over_cancelled"
    assert loaded.options == {}
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert registered(hass, device_id) is not None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())
    assert device.device.chain.links == tuple(record.chain)  # the keep-owner link
    assert [event["event"] for event in record.history][-2:] == [
        "handover_cancel_signed",
        "handover_cancelled",
    ]
    with pytest.raises(StepError, match="no_handover"):
        transfer_file(registrar_of(loaded), device_id)
    result = await open_options(hass, loaded, "pending_hand_overs")
    assert result["type"] is FlowResultType.ABORT


async def test_cancel_while_the_device_is_offline_waits_for_its_receipt(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Offline, the cancel is signed and kept but not done: the form says so; the device takes it when it
    shows up again, and only then is the hand-over cancelled."""
    device: RunningDevice = await devices([home])
    await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "pending_hand_overs")
    result = await submit(hass, result, {"device": device_id, "action": "cancel"})
    result = await submit(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cancel_signed"  # signed and stored, not yet taken: said so
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is not None
    assert record.change.kind is ChangeKind.CANCEL
    assert record.phase is Phase.CHANGING_OWNER
    assert registered(hass, device_id) is not None
    assert onboarding_state(hass, device_id) == "cancel_pending"

    await device.start(device.port)
    await device_announces(hass, loaded, device, claimed=True)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert onboarding_state(hass, device_id) == "onboarded"
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())
    assert "handover_cancelled" in [event["event"] for event in record.history]
    result = await open_options(hass, loaded, "pending_hand_overs")
    assert result["type"] is FlowResultType.ABORT


async def test_let_a_pending_hand_over_go(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Letting the device go now: it leaves this home without having taken the link; the hand-over stays
    owed, and the device gets it when it shows up."""
    device: RunningDevice = await devices([home])
    transfer = await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "pending_hand_overs")
    result = await submit(hass, result, {"device": device_id, "action": "finish"})
    assert_form(result, "let_go")  # what letting it go does, before it is done
    result = await submit(hass, result, {"confirm": False})
    assert_form(result, "let_go", {"confirm": "not_confirmed"})
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.CHANGING_OWNER
    result = await submit(hass, result, {"confirm": True})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "let_go_done"
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.REMOVED
    assert record.history[-1]["event"] == "removed"
    assert transfer_file(registrar_of(loaded), device_id) == transfer

    await device.start(device.port)
    await device_announces(hass, loaded, device, claimed=True)
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.HANDED_OVER
    assert device.device is not None
    assert not device.device.claimed


async def test_let_go_device_leaves_the_device_registry(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A device let go is no longer one of this home's devices in Home Assistant."""
    device: RunningDevice = await devices([home])
    await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()

    result = await open_options(hass, loaded, "pending_hand_overs")
    result = await submit(hass, result, {"device": device_id, "action": "finish"})
    await submit(hass, result, {"confirm": True})

    assert registered(hass, device_id) is None

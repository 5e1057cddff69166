"""What the owner sees: the transfer file download, diagnostics and the logbook.

The per-device sensors are in test_status_sensors.py; the key-age reminder, revocation and blocking end to
end in test_status_lifecycle.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from unittest.mock import patch

from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import DOMAIN, EVENT_DEVICE_ONBOARDED, EVENT_OWNERSHIP
from custom_components.autoadd.home_key_view import HomeKeyQrView
from custom_components.autoadd.logbook import OWNERSHIP_MESSAGES, async_describe_events
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.chain import decode_chain, verify_chain
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import (
    PrivateKey,
    fingerprint,
    format_fingerprint,
    private_key_to_pem,
)
from custom_components.autoadd.protocol.transport import MEDIA_TYPE
from custom_components.autoadd.registrar.handover import transfer_file
from custom_components.autoadd.registrar.manufacturers import remove_root
from custom_components.autoadd.registrar.ownership import block
from custom_components.autoadd.transfer_view import (
    TRANSFER_PATH,
    TransferFileView,
    transfer_link,
)
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice

from .conftest import announce, candidate_for, onboard, registered, registrar_of, settle

OPTIONS_FLOW = "/api/config/config_entries/options/flow"


async def hand_over_offline(hass: HomeAssistant, device: RunningDevice) -> bytes:
    """Hand an onboarded device that is offline over to a buyer with the action; return the transfer file."""
    device_entry = registered(hass, device.spec.device_id.hex())
    assert device_entry is not None
    await device.stop()
    response = await hass.services.async_call(
        DOMAIN,
        "hand_over_device",
        {"device_id": device_entry.id, "new_owner": format_home_key(fixed_key("buyer").public_key())},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["delivered"] is False
    transfer = response["transfer_file"]
    assert isinstance(transfer, str)
    return base64.b64decode(transfer)


def root_fingerprint(maker: Manufacturer) -> str:
    return fingerprint(certificate_public_key(maker.root)).hex()


# --- the transfer file --------------------------------------------------------------------------------------


async def test_hand_over_in_the_options_offers_the_transfer_file(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The owner hands an offline device over in the options (as the frontend does, over HTTP): the last
    step links the transfer file, signed for the owner; the link downloads it, and only unchanged."""
    assert await async_setup_component(hass, "config", {})
    buyer = fixed_key("buyer")
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    await device.stop()
    admin = await hass_client()

    async def step(url: str, data: dict[str, Any]) -> dict[str, Any]:
        response = await admin.post(url, json=data)
        assert response.status == HTTPStatus.OK
        body: dict[str, Any] = await response.json()
        return body

    result = await step(OPTIONS_FLOW, {"handler": loaded.entry_id})
    flow = f"{OPTIONS_FLOW}/{result['flow_id']}"
    assert (await step(flow, {"next_step_id": "hand_over"}))["step_id"] == "hand_over"
    result = await step(flow, {"device": device_id, "new_owner": format_home_key(buyer.public_key())})
    assert result["step_id"] == "hand_over_confirm"
    assert result["description_placeholders"] == {
        "device": "Acme Lamp 1 SN0001",
        "this_home": format_fingerprint(fingerprint(home.public_key())),
        "new_owner": format_fingerprint(fingerprint(buyer.public_key())),
        "new_owner_recovery": "\\-",  # "-" made safe for markdown
    }
    result = await step(flow, {"confirm": True})
    assert result["type"] == "abort"
    assert result["reason"] == "hand_over_signed"
    shown = result["description_placeholders"]
    transfer = transfer_file(registrar_of(loaded), device_id)
    path = TRANSFER_PATH.format(device_id=device_id)
    assert shown["download"].startswith(f"{path}?authSig=")
    assert shown["size"] == str(len(transfer))

    client = await hass_client_no_auth()
    response = await client.get(shown["download"])
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == MEDIA_TYPE
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="autoadd-transfer-{device_id[:12]}.cbor"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.read()
    assert body == transfer
    chain = verify_chain(decode_chain(body), roots=[maker.root], now=dt_util.utcnow())
    assert chain.head.owner_fingerprints == (fingerprint(buyer.public_key()),)

    assert (await client.get(path)).status == HTTPStatus.UNAUTHORIZED
    tampered = await client.get(shown["download"].replace(device_id, "ab" * 32))
    assert tampered.status == HTTPStatus.UNAUTHORIZED


async def test_the_transfer_file_is_for_administrators_only(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    hass_read_only_access_token: str,
) -> None:
    """Signed in but not an administrator: no transfer file, and no link signed outside an
    administrator's request (Home Assistant's content user) downloads it either."""
    assert await async_setup_component(hass, "http", {})
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    transfer = await hand_over_offline(hass, device)
    link = transfer_link(hass, device_id)
    path = TRANSFER_PATH.format(device_id=device_id)

    assert (await (await hass_client(hass_read_only_access_token)).get(path)).status == HTTPStatus.FORBIDDEN
    assert (await (await hass_client_no_auth()).get(link)).status == HTTPStatus.FORBIDDEN
    response = await (await hass_client()).get(path)
    assert response.status == HTTPStatus.OK
    assert await response.read() == transfer


async def test_transfer_view_without_a_hand_over(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """No hand-over, an unknown device, or the registrar not running: 404. A pending hand-over is stored,
    so it is served again after a restart."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    client = await hass_client()

    async def status(device_id: str) -> HTTPStatus:
        return HTTPStatus((await client.get(TRANSFER_PATH.format(device_id=device_id))).status)

    assert await status(device_id) == HTTPStatus.NOT_FOUND
    assert await status("ab" * 32) == HTTPStatus.NOT_FOUND
    transfer = await hand_over_offline(hass, device)
    assert await status(device_id) == HTTPStatus.OK

    assert await hass.config_entries.async_unload(loaded.entry_id)
    assert await status(device_id) == HTTPStatus.NOT_FOUND
    assert await hass.config_entries.async_setup(loaded.entry_id)
    await settle(hass)
    response = await client.get(TRANSFER_PATH.format(device_id=device_id))
    assert response.status == HTTPStatus.OK
    assert await response.read() == transfer


async def test_no_transfer_link_without_http(hass: HomeAssistant) -> None:
    """Without the HTTP server there is no link to give."""
    assert "http" not in hass.config.components
    assert transfer_link(hass, "ab" * 32) == ""


async def test_views_are_registered_once_when_the_integration_loads(hass: HomeAssistant) -> None:
    """Both views are registered when AutoAdd loads (never later, on a started web server); each
    transfer link signed is fresh, and registers nothing."""
    assert await async_setup_component(hass, "http", {})
    path = TRANSFER_PATH.format(device_id="ab" * 32)
    with patch.object(hass.http, "register_view", wraps=hass.http.register_view) as register:
        assert await async_setup_component(hass, DOMAIN, {})
        first = transfer_link(hass, "ab" * 32)
        again = transfer_link(hass, "ab" * 32)
    ours = [
        call.args[0]
        for call in register.call_args_list
        if isinstance(call.args[0], (HomeKeyQrView, TransferFileView))
    ]
    assert sorted(type(view).__name__ for view in ours) == ["HomeKeyQrView", "TransferFileView"]
    assert first.startswith(f"{path}?authSig=")
    assert again.startswith(f"{path}?authSig=")


async def test_diagnostics_after_rotation_block_and_revocation(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
    hass_client: ClientSessionGenerator,
) -> None:
    """Diagnostics show the retired key, the rotation, phases, revocations and history; nothing private."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    neighbours: RunningDevice = await devices([fixed_key("neighbour")], serial="SN0003")
    await onboard(hass, loaded, online, offline)
    registrar_of(loaded).announce(candidate_for(neighbours))
    await settle(hass)
    await offline.stop()
    registrar = registrar_of(loaded)
    old = fingerprint(home.public_key()).hex()
    await hass.services.async_call(DOMAIN, "rotate_home_key", {}, blocking=True)
    await settle(hass)
    new = registrar.home.fingerprint.hex()
    online_id, offline_id = online.spec.device_id.hex(), offline.spec.device_id.hex()
    block(registrar, offline_id, "stolen")
    remove_root(registrar, root_fingerprint(maker))

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)

    assert diagnostics["home_key"]["fingerprint"] == format_fingerprint(registrar.home.fingerprint)
    assert diagnostics["home_key"]["type"] == "ed25519"
    assert diagnostics["trusted_manufacturers"] == []
    retired = diagnostics["retired_home_keys"]
    shown_old, shown_new = (format_fingerprint(bytes.fromhex(key)) for key in (old, new))
    assert [(key["fingerprint"], key["private_key_kept"]) for key in retired] == [(shown_old, True)]
    rotation = diagnostics["rotation"]  # still under way: the offline device has not moved
    assert (rotation["old"], rotation["new"], rotation["destroy_old"]) == (shown_old, shown_new, False)
    assert diagnostics["phases"] == {
        online_id: "onboarded",
        offline_id: "blocked",
        neighbours.spec.device_id.hex(): "seen",
    }
    assert [(r["device_id"], r["code"]) for r in diagnostics["refused"]] == [
        (neighbours.spec.device_id.hex(), "not_owner")
    ]
    assert diagnostics["awaiting_approval"] == []
    shown_root = format_fingerprint(bytes.fromhex(root_fingerprint(maker)))
    assert list(diagnostics["revoked_manufacturers"]) == [shown_root]
    assert diagnostics["revoked_manufacturers"][shown_root]["name"] == "Acme"
    events = {
        device_id: [event["event"] for event in history]
        for device_id, history in diagnostics["history"].items()
    }
    assert events == {
        online_id: ["onboarded", "rotation_signed", "rotated", "revoked"],
        offline_id: ["onboarded", "rotation_signed", "blocked", "revoked"],
    }
    assert diagnostics["history"][offline_id][2]["reason"] == "stolen"
    shown = {device["device_id"]: device for device in diagnostics["devices"]}
    assert set(shown) == {online_id, offline_id}  # members only
    assert shown[online_id]["owners"] == [shown_new]  # fingerprints as every screen shows them
    assert {device_id: device["flags"] for device_id, device in shown.items()} == {
        online_id: ["revoked_manufacturer"],
        offline_id: ["revoked_manufacturer"],
    }
    assert (shown[online_id]["change"], shown[online_id]["chain_length"]) == (None, 2)
    assert (shown[offline_id]["change"], shown[offline_id]["chain_length"]) == ("rotate", 1)
    assert shown[offline_id]["change_sent"] is False
    for device in shown.values():
        for redacted in ("chain", "serial_number", "address"):
            assert device[redacted] == "**REDACTED**"

    text = repr(diagnostics)
    assert "PRIVATE KEY" not in text
    assert "127.0.0.1" not in text
    assert "SN0001" not in text
    assert "SN0002" not in text
    for key in [home, *registrar.keys.signing_keys()]:
        body = private_key_to_pem(key).decode().splitlines()[1]
        assert body not in text


async def test_diagnostics_do_not_show_where_a_device_moved(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """A device that proved itself at a new address: diagnostics redact hosts, in its history too."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    await device.stop()
    await device.start()  # another port
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    assert registrar_of(loaded).state.devices[device_id].history[-1]["event"] == "moved"

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)

    assert "127.0.0.1" not in repr(diagnostics)


# --- logbook ------------------------------------------------------------------------------------------------


def describers(hass: HomeAssistant) -> dict[str, Callable[[Event], dict[str, str]]]:
    described: dict[str, Callable[[Event], dict[str, str]]] = {}

    def describe(domain: str, event_type: str, describer: Callable[[Event], dict[str, str]]) -> None:
        assert domain == DOMAIN
        described[event_type] = describer

    async_describe_events(hass, describe)
    return described


@pytest.mark.parametrize("name", sorted(OWNERSHIP_MESSAGES))
async def test_logbook_describes_ownership_events(hass: HomeAssistant, name: str) -> None:
    """Every ownership event has its own logbook message, naming the device by a short identifier."""
    describe = describers(hass)[EVENT_OWNERSHIP]
    entry = describe(Event(EVENT_OWNERSHIP, {"autoadd_id": "0123456789abcdef" * 4, "event": name}))
    assert entry == {"name": "AutoAdd device 0123456789ab", "message": OWNERSHIP_MESSAGES[name]}


async def test_logbook_falls_back_for_unknown_events(hass: HomeAssistant) -> None:
    """An event name the logbook does not know is shown as it is; a missing one as 'changed'."""
    describe = describers(hass)
    ownership = describe[EVENT_OWNERSHIP]
    assert ownership(Event(EVENT_OWNERSHIP, {"autoadd_id": "ab" * 32, "event": "teleported"}))["message"] == (
        "teleported"
    )
    assert ownership(Event(EVENT_OWNERSHIP, {})) == {"name": "AutoAdd device ", "message": "changed"}
    assert EVENT_DEVICE_ONBOARDED not in describe  # for automations: `onboarded` is its logbook entry


async def test_logbook_describes_recorded_events(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Every event the registrar records in a device's history is fired and described with its message."""
    fired = async_capture_events(hass, EVENT_OWNERSHIP)
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    await hass.services.async_call(DOMAIN, "rotate_home_key", {}, blocking=True)
    await settle(hass)
    block(registrar_of(loaded), device_id, "lost")
    await hass.async_block_till_done()

    describe = describers(hass)[EVENT_OWNERSHIP]
    history = registrar_of(loaded).state.devices[device_id].history
    assert [event.data["event"] for event in fired] == [entry["event"] for entry in history]
    assert [describe(event)["message"] for event in fired] == [
        OWNERSHIP_MESSAGES["onboarded"],
        OWNERSHIP_MESSAGES["rotation_signed"],
        OWNERSHIP_MESSAGES["rotated"],
        OWNERSHIP_MESSAGES["blocked"],
    ]
    registry_entry = registered(hass, device_id)
    assert registry_entry is not None
    # Named as the registry names the device, and linked to it (the logbook shows it on its page).
    assert {describe(event)["name"] for event in fired} == {registry_entry.name}
    assert {event.data["device_id"] for event in fired} == {registry_entry.id}
    assert fired[-1].data["reason"] == "lost"

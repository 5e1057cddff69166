"""What the owner sees: the transfer download, sensors, diagnostics, the logbook, the key-age reminder,
and revocation and blocking end to end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.http import KEY_HASS
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd import KEY_AGE_CHECK_INTERVAL, async_remove_config_entry_device
from custom_components.autoadd.const import (
    CONF_HOME_NAME,
    CONF_KEY_TYPE,
    CONF_MAX_KEY_AGE_DAYS,
    DOMAIN,
    EVENT_DEVICE_ONBOARDED,
    EVENT_OWNERSHIP,
    SIGNAL_DEVICE_UPDATED,
)
from custom_components.autoadd.lifecycle import (
    async_hand_over,
    async_rotate_home_key,
    block_device,
    transfer_file,
    unblock_device,
)
from custom_components.autoadd.logbook import OWNERSHIP_MESSAGES, async_describe_events
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.chain import decode_chain
from custom_components.autoadd.protocol.keys import (
    PrivateKey,
    fingerprint,
    format_fingerprint,
    private_key_to_pem,
)
from custom_components.autoadd.protocol.transport import MEDIA_TYPE
from custom_components.autoadd.storage import HOME_KEY_STORE, Refusal
from custom_components.autoadd.transfer_view import (
    MAX_QR_BYTES,
    TRANSFER_PATH,
    TransferFileView,
    transfer_placeholders,
)
from custom_components.autoadd.trust import RootError
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice

from .conftest import candidate_for, registered, registrar_of, stored


async def onboard(hass: HomeAssistant, entry: MockConfigEntry, *devices: RunningDevice) -> None:
    for device in devices:
        registrar_of(entry).async_candidate(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    for device in devices:
        assert registered(hass, device.spec.device_id.hex()) is not None


def entity_ids(hass: HomeAssistant, device: RunningDevice) -> dict[str, str]:
    """The device's sensor entity ids by translation key."""
    device_entry = registered(hass, device.spec.device_id.hex())
    assert device_entry is not None
    return {
        str(entity.translation_key): entity.entity_id
        for entity in er.async_entries_for_device(er.async_get(hass), device_entry.id)
    }


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


def claimed(device: RunningDevice) -> bool:
    """Whether the device holds an owner's imprint (read afresh: it changes behind the test's back)."""
    assert device.device is not None
    return device.device.claimed


def root_fingerprint(maker: Manufacturer) -> str:
    return fingerprint(certificate_public_key(maker.root)).hex()


def request_for(hass: HomeAssistant) -> MagicMock:
    """A request as the HTTP server hands it to a view."""
    request = MagicMock()
    request.app = {KEY_HASS: hass}
    return request


# --- transfer file download ---------------------------------------------------------------------------------


async def test_transfer_view_serves_a_pending_hand_over(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A hand-over signed while the device is offline can be downloaded as a CBOR attachment."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    await device.stop()
    result = await async_hand_over(registrar_of(loaded), device_id, fixed_key("buyer").public_key())
    assert not result.delivered

    response = await TransferFileView().get(request_for(hass), device_id)
    assert response.status == HTTPStatus.OK
    assert response.content_type == MEDIA_TYPE
    assert response.body == result.transfer
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="autoadd-transfer-{device_id[:12]}.cbor"'
    )
    assert response.headers["Cache-Control"] == "no-store"


async def test_transfer_view_without_a_hand_over(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """No hand-over, an unknown device, or the registrar not running: 404."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    view = TransferFileView()
    assert (await view.get(request_for(hass), device_id)).status == HTTPStatus.NOT_FOUND
    assert (await view.get(request_for(hass), "ab" * 32)).status == HTTPStatus.NOT_FOUND

    await device.stop()
    await async_hand_over(registrar_of(loaded), device_id, fixed_key("buyer").public_key())
    assert (await view.get(request_for(hass), device_id)).status == HTTPStatus.OK
    assert await hass.config_entries.async_unload(loaded.entry_id)
    assert (await view.get(request_for(hass), device_id)).status == HTTPStatus.NOT_FOUND


async def test_transfer_placeholders_without_http(hass: HomeAssistant) -> None:
    """Without the HTTP server there is no link, but the QR code still is there."""
    assert "http" not in hass.config.components
    placeholders = transfer_placeholders(hass, "ab" * 32, b"transfer")
    assert placeholders["download"] == ""
    assert placeholders["qr_code"].startswith("![QR code](data:image/svg+xml")
    assert placeholders["size"] == "8"


async def test_transfer_placeholders_and_signed_download(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A signed link (the view registered once) and a QR code; the link downloads the file without login."""
    assert await async_setup_component(hass, "http", {})
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    await device.stop()
    result = await async_hand_over(registrar_of(loaded), device_id, fixed_key("buyer").public_key())

    with patch.object(hass.http, "register_view", wraps=hass.http.register_view) as register:
        placeholders = transfer_placeholders(hass, device_id, result.transfer)
        again = transfer_placeholders(hass, device_id, result.transfer)
    assert register.call_count == 1
    assert isinstance(register.call_args.args[0], TransferFileView)
    path = TRANSFER_PATH.format(device_id=device_id)
    assert placeholders["download"].startswith(f"{path}?authSig=")
    assert again["download"].startswith(f"{path}?authSig=")
    assert placeholders["qr_code"].startswith("![QR code](data:image/svg+xml")
    assert placeholders["size"] == str(len(result.transfer))

    client = await hass_client_no_auth()
    response = await client.get(placeholders["download"])
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == MEDIA_TYPE
    assert "attachment" in response.headers["Content-Disposition"]
    body = await response.read()
    assert body == result.transfer == transfer_file(registrar_of(loaded), device_id)
    assert decode_chain(body)

    unsigned = await client.get(path)
    assert unsigned.status == HTTPStatus.UNAUTHORIZED
    tampered = await client.get(placeholders["download"].replace(device_id, "ab" * 32))
    assert tampered.status == HTTPStatus.UNAUTHORIZED


async def test_no_qr_code_for_a_large_transfer_file(hass: HomeAssistant) -> None:
    """A file that does not fit in a QR code gets only the link."""
    assert await async_setup_component(hass, "http", {})
    placeholders = transfer_placeholders(hass, "ab" * 32, bytes(4000))
    assert placeholders["qr_code"] == ""
    assert placeholders["download"]
    assert placeholders["size"] == "4000"
    assert transfer_placeholders(hass, "ab" * 32, bytes(MAX_QR_BYTES))["qr_code"]


# --- sensors ------------------------------------------------------------------------------------------------


async def test_onboarding_state_follows_the_device(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
) -> None:
    """onboarded → refused → rotation_pending → handover_pending → revoked → blocked, most pressing first."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)
    state = entity_ids(hass, device)["onboarding_state"]
    assert state_of(hass, state) == "onboarded"

    now = dt_util.utcnow().isoformat()
    registrar.store.data.refused[device_id] = Refusal(device_id, "fork", "a fork", now, now)
    async_dispatcher_send(hass, SIGNAL_DEVICE_UPDATED, device_id)
    await hass.async_block_till_done()
    assert state_of(hass, state) == "refused"
    registrar.async_candidate(candidate_for(device), force=True)  # a good handshake clears the refusal
    await hass.async_block_till_done(wait_background_tasks=True)
    assert device_id not in registrar.store.data.refused
    assert state_of(hass, state) == "onboarded"

    await device.stop()
    await async_rotate_home_key(registrar, destroy_old=False)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, state) == "rotation_pending"

    await async_hand_over(registrar, device_id, fixed_key("buyer").public_key())
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, state) == "handover_pending"

    registrar.async_remove_root(root_fingerprint(maker))
    await hass.async_block_till_done()
    assert state_of(hass, state) == "revoked"

    block_device(registrar, device_id, "stolen")
    await hass.async_block_till_done()
    assert state_of(hass, state) == "blocked"

    unblock_device(registrar, device_id)
    await hass.async_block_till_done()
    assert state_of(hass, state) == "revoked"


async def test_refused_state_after_reload(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A stored refusal of an onboarded device shows after a restart."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    now = dt_util.utcnow().isoformat()
    registrar_of(loaded).store.data.refused[device_id] = Refusal(
        device_id, "rollback", "rolled back", now, now
    )
    assert await hass.config_entries.async_reload(loaded.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, entity_ids(hass, device)["onboarding_state"]) == "refused"


async def test_owners_and_chain_sensors(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An invoice naming two homes: two owners, their shortened fingerprints as an attribute."""
    co_owner = fixed_key("co-owner home")
    device: RunningDevice = await devices([home, co_owner])
    await onboard(hass, loaded, device)
    ids = entity_ids(hass, device)
    owners = hass.states.get(ids["owners"])
    assert owners is not None
    assert owners.state == "2"
    assert owners.attributes["fingerprints"] == [
        fingerprint(home.public_key()).hex()[:16],
        fingerprint(co_owner.public_key()).hex()[:16],
    ]
    assert state_of(hass, ids["chain_length"]) == "1"
    last_seen = hass.states.get(ids["last_seen"])
    assert last_seen is not None
    assert dt_util.parse_datetime(last_seen.state) is not None
    assert "fingerprints" not in last_seen.attributes


async def test_sensors_unavailable_when_the_device_leaves(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Once the device took its hand-over it has left this home: its sensors go unavailable, then away."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    ids = entity_ids(hass, device)
    seen: dict[str, list[str | None]] = {entity_id: [] for entity_id in ids.values()}

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        new_state = event.data["new_state"]
        seen[event.data["entity_id"]].append(None if new_state is None else new_state.state)

    unsubscribe = async_track_state_change_event(hass, list(ids.values()), changed)
    result = await async_hand_over(
        registrar_of(loaded), device.spec.device_id.hex(), fixed_key("buyer").public_key()
    )
    await hass.async_block_till_done()
    unsubscribe()
    assert result.delivered
    for entity_id in ids.values():
        assert seen[entity_id][-2:] == [STATE_UNAVAILABLE, None]
        assert hass.states.get(entity_id) is None
        assert er.async_get(hass).async_get(entity_id) is None


# --- diagnostics --------------------------------------------------------------------------------------------


async def test_diagnostics_after_rotation_block_and_revocation(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
    hass_client: ClientSessionGenerator,
) -> None:
    """Diagnostics show the retired key, the rotation, blocks, revocations and history; nothing private."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    registrar = registrar_of(loaded)
    old = fingerprint(home.public_key()).hex()
    await async_rotate_home_key(registrar, destroy_old=False)
    await hass.async_block_till_done(wait_background_tasks=True)
    new = registrar.home.fingerprint.hex()
    online_id, offline_id = online.spec.device_id.hex(), offline.spec.device_id.hex()
    block_device(registrar, offline_id, "stolen")
    registrar.async_remove_root(root_fingerprint(maker))

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)

    assert diagnostics["home_key"]["fingerprint"] == format_fingerprint(registrar.home.fingerprint)
    assert diagnostics["trusted_manufacturers"] == []
    retired = diagnostics["retired_home_keys"]
    assert [(key["fingerprint"], key["private_key_kept"]) for key in retired] == [(old, True)]
    rotation = diagnostics["rotation"]
    assert rotation["old"] == old
    assert rotation["new"] == new
    assert rotation["destroy_old"] is False
    assert list(diagnostics["blocked"]) == [offline_id]
    assert diagnostics["blocked"][offline_id]["reason"] == "stolen"
    assert list(diagnostics["revoked_manufacturers"]) == [root_fingerprint(maker)]
    assert diagnostics["revoked_manufacturers"][root_fingerprint(maker)]["name"] == "Acme"
    events = {
        device_id: [event["event"] for event in history]
        for device_id, history in diagnostics["history"].items()
    }
    assert events == {
        online_id: ["onboarded", "rotation_signed", "rotated", "revoked"],
        offline_id: ["onboarded", "rotation_signed", "blocked", "revoked"],
    }
    flags = {device["device_id"]: device["flags"] for device in diagnostics["devices"]}
    assert flags == {online_id: ["revoked_manufacturer"], offline_id: ["blocked", "revoked_manufacturer"]}
    for device in diagnostics["devices"]:
        for redacted in ("host", "chain", "serial_number", "pending_links"):
            assert device[redacted] == "**REDACTED**"
    assert {device["chain_length"] for device in diagnostics["devices"]} == {1, 2}

    text = repr(diagnostics)
    assert "PRIVATE KEY" not in text
    assert "127.0.0.1" not in text
    assert "SN0001" not in text
    for key in registrar.keys.signing_keys():
        body = private_key_to_pem(key).decode().splitlines()[1]
        assert body not in text


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
    onboarded = describe[EVENT_DEVICE_ONBOARDED](
        Event(EVENT_DEVICE_ONBOARDED, {"manufacturer": "Acme", "model": "Lamp 1"})
    )
    assert onboarded["name"] == "AutoAdd device"
    assert onboarded["message"] == "was added securely by AutoAdd (Acme Lamp 1)"


async def test_logbook_describes_a_recorded_event(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The event the registrar fires when it records history is described with its message."""
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_OWNERSHIP, fired.append)
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    block_device(registrar_of(loaded), device.spec.device_id.hex(), "lost")
    await hass.async_block_till_done()
    describe = describers(hass)[EVENT_OWNERSHIP]
    assert [describe(event)["message"] for event in fired] == [
        OWNERSHIP_MESSAGES["onboarded"],
        OWNERSHIP_MESSAGES["blocked"],
    ]
    assert describe(fired[0])["name"] == f"AutoAdd device {device.spec.device_id.hex()[:12]}"


# --- key-age reminder ---------------------------------------------------------------------------------------


async def setup_with_key_age(
    hass: HomeAssistant, storage: dict[str, Any], home: PrivateKey, *, age: timedelta, max_days: int
) -> MockConfigEntry:
    """A registrar whose home key was made `age` ago, with a reminder after `max_days` (0: never)."""
    storage[HOME_KEY_STORE] = stored(
        HOME_KEY_STORE,
        {
            "private_pem": private_key_to_pem(home).decode(),
            "key_type": "ed25519",
            "created_at": (dt_util.utcnow() - age).isoformat(),
        },
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Home",
        data={CONF_HOME_NAME: "Home", CONF_KEY_TYPE: "ed25519"},
        options={CONF_MAX_KEY_AGE_DAYS: max_days},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


def key_age_issue(hass: HomeAssistant) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, "home_key_old")


async def test_old_home_key_raises_a_reminder(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """A key older than the owner's limit: a warning issue at setup, with the age and the limit."""
    entry = await setup_with_key_age(
        hass, hass_storage_with_home, home, age=timedelta(days=10, hours=1), max_days=1
    )
    issue = key_age_issue(hass)
    assert issue is not None
    assert issue.translation_key == "home_key_old"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert issue.translation_placeholders == {"age": "10", "max": "1"}

    # Rotating the key answers the reminder.
    await async_rotate_home_key(registrar_of(entry), destroy_old=True)
    assert key_age_issue(hass) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_no_reminder_when_the_owner_set_none(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """With the limit at 0 (never) an old key raises nothing."""
    entry = await setup_with_key_age(hass, hass_storage_with_home, home, age=timedelta(days=10), max_days=0)
    assert key_age_issue(hass) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_no_reminder_without_the_option(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_storage_with_home: dict[str, Any]
) -> None:
    """An entry that never had the option set (its key is months old) raises nothing."""
    assert CONF_MAX_KEY_AGE_DAYS not in loaded.options
    assert key_age_issue(hass) is None


async def test_reminder_when_the_key_ages_past_the_limit(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The periodic check raises the reminder once the key is older than the limit; options clear it."""
    entry = await setup_with_key_age(hass, hass_storage_with_home, home, age=timedelta(hours=13), max_days=1)
    assert key_age_issue(hass) is None

    freezer.tick(KEY_AGE_CHECK_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = key_age_issue(hass)
    assert issue is not None
    assert issue.translation_placeholders == {"age": "1", "max": "1"}

    hass.config_entries.async_update_entry(entry, options={CONF_MAX_KEY_AGE_DAYS: 30})
    await hass.async_block_till_done()
    assert key_age_issue(hass) is None
    hass.config_entries.async_update_entry(entry, options={CONF_MAX_KEY_AGE_DAYS: 1})
    await hass.async_block_till_done()
    assert key_age_issue(hass) is not None
    hass.config_entries.async_update_entry(entry, options={CONF_MAX_KEY_AGE_DAYS: 0})
    await hass.async_block_till_done()
    assert key_age_issue(hass) is None

    assert await hass.config_entries.async_unload(entry.entry_id)
    freezer.tick(KEY_AGE_CHECK_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert key_age_issue(hass) is None  # the unloaded entry checks no more


# --- revocation end to end ----------------------------------------------------------------------------------


async def test_revoked_manufacturer_end_to_end(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
) -> None:
    """Revoked: a new device is refused, the onboarded one flagged; trusting the root again undoes both."""
    registrar = registrar_of(loaded)
    old: RunningDevice = await devices([home], serial="SN0001")
    await onboard(hass, loaded, old)
    old_id = old.spec.device_id.hex()
    state = entity_ids(hass, old)["onboarding_state"]
    digest = root_fingerprint(maker)

    registrar.async_remove_root(digest)
    await hass.async_block_till_done()
    assert registrar.store.data.roots == []
    assert registrar.store.data.devices[old_id].flags == ["revoked_manufacturer"]
    assert registrar.store.data.revoked_roots[digest]["name"] == "Acme"
    assert state_of(hass, state) == "revoked"
    assert registered(hass, old_id) is not None  # flagged, not removed
    registrar.async_remove_root(digest)  # revoking again changes nothing
    assert [event["event"] for event in registrar.store.data.history[old_id]] == ["onboarded", "revoked"]

    new: RunningDevice = await devices([home], serial="SN0002")
    new_id = new.spec.device_id.hex()
    registrar.async_candidate(candidate_for(new))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registrar.store.data.refused[new_id].code == "untrusted_manufacturer"
    assert registered(hass, new_id) is None
    assert new.device is not None
    assert not claimed(new)

    registrar.async_add_root(maker.root, "Acme")
    await hass.async_block_till_done()
    assert registrar.store.data.devices[old_id].flags == []
    assert registrar.store.data.revoked_roots == {}
    assert new_id not in registrar.store.data.refused
    assert state_of(hass, state) == "onboarded"

    registrar.async_candidate(candidate_for(new))  # tried again at once, without waiting for its back-off
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registered(hass, new_id) is not None
    assert claimed(new)
    with pytest.raises(RootError, match="already_trusted"):
        registrar.async_add_root(maker.root, "Acme again")


# --- block end to end ---------------------------------------------------------------------------------------


async def test_blocked_device_is_never_contacted(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A blocked identifier's announcements start no handshake, even forced; unblocked, it is onboarded."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    block_device(registrar, device_id, "not mine")
    assert device.device is not None

    with patch.object(device.device, "answer_hello", wraps=device.device.answer_hello) as hello:
        registrar.async_candidate(candidate_for(device))
        registrar.async_candidate(candidate_for(device, claimed=True))
        registrar.async_candidate(candidate_for(device), force=True)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert hello.call_count == 0
    assert registrar.peak_handshakes == 0
    assert device_id not in registrar.store.data.pending
    assert device_id not in registrar.store.data.refused
    assert registered(hass, device_id) is None
    assert not claimed(device)

    unblock_device(registrar, device_id)
    assert registrar.store.data.blocked == {}
    await onboard(hass, loaded, device)
    assert claimed(device)
    assert state_of(hass, entity_ids(hass, device)["onboarding_state"]) == "onboarded"
    assert [event["event"] for event in registrar.store.data.history[device_id]] == [
        "blocked",
        "unblocked",
        "onboarded",
    ]


async def test_blocking_an_onboarded_device(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An onboarded device blocked: flagged, never contacted (not even by a rotation); unblocked: back."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    state = entity_ids(hass, device)["onboarding_state"]

    block_device(registrar, device_id, "stolen")
    block_device(registrar, device_id, "stolen")  # twice: flagged once
    await hass.async_block_till_done()
    assert registrar.store.data.devices[device_id].flags == ["blocked"]
    assert state_of(hass, state) == "blocked"

    assert device.device is not None
    with patch.object(device.device, "answer_hello", wraps=device.device.answer_hello) as hello:
        registrar.async_candidate(candidate_for(device))
        await async_rotate_home_key(registrar, destroy_old=False)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert hello.call_count == 0
    assert state_of(hass, state) == "blocked"  # rotation pending too, but the block matters more

    unblock_device(registrar, device_id)
    await hass.async_block_till_done()
    assert registrar.store.data.devices[device_id].flags == []
    assert state_of(hass, state) == "rotation_pending"
    registrar.async_candidate(candidate_for(device, claimed=True))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert device.device.state.owner == registrar.home.fingerprint
    assert state_of(hass, state) == "onboarded"


async def test_owner_removes_a_device_shared_with_another_integration(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Removing a device the registry also knows by another integration's identifier forgets only ours."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()
    device_entry = registered(hass, device_id)
    assert device_entry is not None
    shared = dr.async_get(hass).async_update_device(
        device_entry.id, new_identifiers=device_entry.identifiers | {("other_integration", "lamp")}
    )
    assert shared is not None
    assert len(shared.identifiers) == 2
    assert await async_remove_config_entry_device(hass, loaded, shared)
    registrar = registrar_of(loaded)
    assert device_id not in registrar.store.data.devices
    assert device_id in registrar.store.data.removed

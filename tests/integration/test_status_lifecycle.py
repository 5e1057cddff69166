"""What the owner sees of the lifecycle: the key-age reminder, revoking a manufacturer, blocking a device
and removing one, end to end through the options, the actions and the device registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.autoadd import KEY_AGE_CHECK_INTERVAL
from custom_components.autoadd.const import (
    CONF_ASK_ABOUT_MANUFACTURERS,
    CONF_HOME_NAME,
    CONF_KEY_TYPE,
    CONF_MAX_KEY_AGE_DAYS,
    DOMAIN,
)
from custom_components.autoadd.protocol.certificates import certificate_public_key, certificate_to_pem
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, private_key_to_pem
from custom_components.autoadd.registrar.manufacturers import remove_root
from custom_components.autoadd.registrar.record import Phase
from custom_components.autoadd.storage import HOME_KEY_STORE
from tests.factory import Manufacturer
from tests.reference_device import RunningDevice

from .conftest import (
    candidate_for,
    onboard,
    onboarding_state,
    options_step,
    registered,
    registrar_of,
    settle,
    stored,
)


def announce_every_way(entry: MockConfigEntry, device: RunningDevice) -> None:
    """The device announces itself unclaimed and claimed."""
    registrar_of(entry).announce(candidate_for(device))
    registrar_of(entry).announce(candidate_for(device, claimed=True))


def count_hellos(device: RunningDevice) -> Any:
    """Count the hellos the device answers."""
    assert device.device is not None
    responder = device.device.responder
    return patch.object(responder, "answer_hello", wraps=responder.answer_hello)


def claimed(device: RunningDevice) -> bool:
    """Whether the device holds an owner's imprint (read afresh: it changes behind the test's back)."""
    assert device.device is not None
    return device.device.claimed


def root_fingerprint(maker: Manufacturer) -> str:
    return fingerprint(certificate_public_key(maker.root)).hex()


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
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("surface", ["action", "options"])
async def test_rotating_the_home_key_answers_the_reminder(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey, surface: str
) -> None:
    """Once the owner rotated the old key, the reminder to rotate it goes away."""
    entry = await setup_with_key_age(hass, hass_storage_with_home, home, age=timedelta(days=10), max_days=1)
    assert key_age_issue(hass) is not None

    if surface == "action":
        await hass.services.async_call(DOMAIN, "rotate_home_key", {"destroy_old_key": True}, blocking=True)
    else:
        result = await options_step(hass, entry, "rotate_home_key", {"destroy_old_key": True})
        assert result["reason"] == "rotated"
    await settle(hass)

    assert registrar_of(entry).home.fingerprint != fingerprint(home.public_key())
    assert key_age_issue(hass) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_no_reminder_when_the_owner_set_none(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """With the limit at 0 (never) an old key raises nothing."""
    entry = await setup_with_key_age(hass, hass_storage_with_home, home, age=timedelta(days=10), max_days=0)
    assert key_age_issue(hass) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_no_reminder_without_the_option(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """An entry that never had the option set (its key is months old) raises nothing."""
    assert CONF_MAX_KEY_AGE_DAYS not in loaded.options
    assert dt_util.utcnow() - registrar_of(loaded).home.created_at > timedelta(days=30)
    assert key_age_issue(hass) is None


async def test_reminder_when_the_key_ages_past_the_limit(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The periodic check raises the reminder once the key is older than the limit; settings clear it."""
    entry = await setup_with_key_age(hass, hass_storage_with_home, home, age=timedelta(hours=13), max_days=1)
    assert key_age_issue(hass) is None

    freezer.tick(KEY_AGE_CHECK_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = key_age_issue(hass)
    assert issue is not None
    assert issue.translation_placeholders == {"age": "1", "max": "1"}

    for days, raised in ((30, False), (1, True), (0, False)):
        result = await options_step(hass, entry, "settings", {CONF_MAX_KEY_AGE_DAYS: days})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert entry.options == {CONF_MAX_KEY_AGE_DAYS: days, CONF_ASK_ABOUT_MANUFACTURERS: True}
        assert (key_age_issue(hass) is not None) is raised

    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(entry, options={CONF_MAX_KEY_AGE_DAYS: 1})
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
    old_id = await onboard(hass, loaded, old)
    digest = root_fingerprint(maker)

    await options_step(hass, loaded, "remove_manufacturer", {"roots": [digest]})
    assert registrar.state.roots == []
    assert registrar.state.devices[old_id].flags == ["revoked_manufacturer"]
    assert registrar.state.revoked_roots[digest]["name"] == "Acme"
    assert onboarding_state(hass, old_id) == "revoked"
    assert registered(hass, old_id) is not None  # flagged, not removed
    remove_root(registrar, digest)  # revoking again changes nothing
    assert [event["event"] for event in registrar.state.devices[old_id].history] == ["onboarded", "revoked"]

    new: RunningDevice = await devices([home], serial="SN0002")
    new_id = new.spec.device_id.hex()
    registrar.announce(candidate_for(new))
    await settle(hass)
    refusal = registrar.state.devices[new_id].refusal
    assert refusal is not None
    assert refusal.code == "untrusted_manufacturer"
    assert registered(hass, new_id) is None
    assert not claimed(new)

    pem = certificate_to_pem(maker.root).decode()
    result = await options_step(hass, loaded, "add_manufacturer", {"name": "Acme", "pem": pem})
    assert result["reason"] == "manufacturer_trusted"
    assert registrar.state.devices[old_id].flags == []
    assert registrar.state.revoked_roots == {}
    assert registrar.state.devices[new_id].refusal is None
    assert onboarding_state(hass, old_id) == "onboarded"

    registrar.announce(candidate_for(new))  # tried again at once, without waiting for its back-off
    await settle(hass)
    assert registered(hass, new_id) is not None
    assert claimed(new)
    result = await options_step(hass, loaded, "add_manufacturer", {"name": "Acme again", "pem": pem})
    assert result["errors"] == {"pem": "already_trusted"}


# --- blocking end to end ------------------------------------------------------------------------------------


async def test_blocked_device_is_never_contacted(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A pasted identifier, blocked: its announcements start no handshake; unblocked, it is onboarded."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    result = await options_step(hass, loaded, "block_device", {"block_id": f" {device_id.upper()} "})
    assert result["reason"] == "blocked_now"

    with count_hellos(device) as hello:
        announce_every_way(loaded, device)
        await settle(hass)
        assert hello.call_count == 0
        assert registrar.peak_handshakes == 0
        record = registrar.state.devices[device_id]
        assert record.phase is Phase.BLOCKED
        assert (record.refusal, record.change, record.address) == (None, None, None)
        assert registered(hass, device_id) is None
        assert not claimed(device)

        await options_step(hass, loaded, "block_device", {"unblock": [device_id]})
        assert registrar.state.devices[device_id].phase is Phase.SEEN
        await onboard(hass, loaded, device)
        assert hello.call_count == 1
    assert claimed(device)
    assert onboarding_state(hass, device_id) == "onboarded"
    assert [event["event"] for event in registrar.state.devices[device_id].history] == [
        "blocked",
        "unblocked",
        "onboarded",
    ]


async def test_blocking_an_onboarded_device(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An onboarded device blocked (twice): kept in the registry as blocked, never contacted; unblocked,
    it is what it was before."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)

    await options_step(hass, loaded, "block_device", {"block": device_id})
    await options_step(hass, loaded, "block_device", {"block_id": device_id})  # pasted: blocked again
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.BLOCKED
    assert record.blocked_from is Phase.ONBOARDED  # the second block did not forget what it was
    assert onboarding_state(hass, device_id) == "blocked"
    assert registered(hass, device_id) is not None

    with count_hellos(device) as hello:
        announce_every_way(loaded, device)
        await settle(hass)
        assert hello.call_count == 0

        await options_step(hass, loaded, "block_device", {"unblock": [device_id]})
        assert registrar.state.devices[device_id].phase is Phase.ONBOARDED
        assert onboarding_state(hass, device_id) == "onboarded"
        assert hello.call_count == 0


async def test_a_rotation_does_not_contact_a_blocked_device(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A blocked member gets its rotation link signed and stored, not sent; unblocked, it moves."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    await options_step(hass, loaded, "block_device", {"block": device_id})

    with count_hellos(device) as hello:
        await hass.services.async_call(DOMAIN, "rotate_home_key", {}, blocking=True)
        await settle(hass)
        assert hello.call_count == 0
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())
    assert registrar.state.devices[device_id].change is not None
    assert onboarding_state(hass, device_id) == "blocked"  # a rotation pending too; the block matters more

    await options_step(hass, loaded, "block_device", {"unblock": [device_id]})
    assert onboarding_state(hass, device_id) == "rotation_pending"
    registrar.announce(candidate_for(device, claimed=True))
    await settle(hass)
    assert device.device.state.owner == registrar.home.fingerprint
    assert onboarding_state(hass, device_id) == "onboarded"


# --- removing a device --------------------------------------------------------------------------------------


async def test_owner_removes_a_device_shared_with_another_integration(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Removing, in the device registry, a device also known by another integration's identifier: only
    AutoAdd's identifier is forgotten; its chain is kept and it leaves the registry."""
    assert await async_setup_component(hass, "config", {})
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    device_entry = registered(hass, device_id)
    assert device_entry is not None
    shared = dr.async_get(hass).async_update_device(
        device_entry.id, new_identifiers=device_entry.identifiers | {("other_integration", "lamp")}
    )
    assert shared is not None
    assert len(shared.identifiers) == 2
    client = await hass_ws_client(hass)

    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": loaded.entry_id,
            "device_id": shared.id,
        }
    )
    response = await client.receive_json()
    await settle(hass)

    assert response["success"], response
    assert registered(hass, device_id) is None
    registrar = registrar_of(loaded)
    assert set(registrar.state.devices) == {device_id}
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.REMOVED
    assert len(record.chain) == 1
    assert record.history[-1]["event"] == "removed"
    assert not er.async_entries_for_config_entry(er.async_get(hass), loaded.entry_id)

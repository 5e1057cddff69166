"""What the owner sees on each device: the onboarding state, owners, chain length, last seen.

The onboarding state follows the device's phase and its pending change; a change this home signed shows
"*_pending" until it went out and "*_sent" until the device's proof or receipt confirms it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import re
from typing import Any

from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.protocol.transport import PATH_HELLO
from custom_components.autoadd.registrar.record import Address, ChangeKind, Phase
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice

from .conftest import (
    Impostor,
    announce,
    onboard,
    options_step,
    registered,
    registrar_of,
    settle,
)


def entity_ids(hass: HomeAssistant, device_id: str) -> dict[str, str]:
    """The device's sensor entity ids by translation key."""
    device_entry = registered(hass, device_id)
    assert device_entry is not None
    return {
        str(entity.translation_key): entity.entity_id
        for entity in er.async_entries_for_device(er.async_get(hass), device_entry.id)
    }


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def action(hass: HomeAssistant, service: str, data: dict[str, Any]) -> dict[str, Any]:
    """Call an AutoAdd action and return its response."""
    response = await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)
    await settle(hass)
    assert response is not None
    return dict(response)


async def hand_over(hass: HomeAssistant, device_id: str, buyer: PrivateKey) -> dict[str, Any]:
    """Hand the device over with the action, as an automation would."""
    device_entry = registered(hass, device_id)
    assert device_entry is not None
    return await action(
        hass,
        "hand_over_device",
        {"device_id": device_entry.id, "new_owner": format_home_key(buyer.public_key())},
    )


async def busy(device: RunningDevice) -> None:
    """Restart the device so that it answers one request and then only "rate_limited"."""
    device.rate, device.burst = 0.0, 1
    await device.restart()


async def idle(device: RunningDevice) -> None:
    """Restart the device answering everything again."""
    device.rate, device.burst = 1000.0, 1000
    await device.restart()


def root_fingerprint(maker: Manufacturer) -> str:
    return fingerprint(certificate_public_key(maker.root)).hex()


async def test_onboarding_state_follows_the_device(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
    impostor: Callable[..., Awaitable[Impostor]],
) -> None:
    """onboarded → refused → rotation_pending → handover_pending → revoked → blocked, most pressing first."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    state = entity_ids(hass, device_id)["onboarding_state"]
    assert state_of(hass, state) == "onboarded"

    # Something else announces the device at another address: the attempt there fails, nothing shown
    # about the device changes (anyone can announce its id).
    fake = await impostor(b"")
    announce(loaded, device_id, fake.port, claimed=True)
    await settle(hass)
    assert fake.requests == [PATH_HELLO]
    record = registrar_of(loaded).state.devices[device_id]
    assert record.refusal is None
    assert record.address == Address("127.0.0.1", device.port)
    assert state_of(hass, state) == "onboarded"

    # Something else answers at the device's own address when it is checked (after a restart): that is
    # refused, and shown.
    await device.stop()
    squatter = await impostor(b"", port=device.port)
    assert await hass.config_entries.async_reload(loaded.entry_id)
    await settle(hass)
    assert squatter.requests == [PATH_HELLO]
    assert registrar_of(loaded).state.devices[device_id].refusal is not None
    assert state_of(hass, state) == "refused"
    await squatter.stop()
    await device.start(port=device.port)

    # Every member is proved once after a restart: the device's proof at its address clears the refusal.
    assert await hass.config_entries.async_reload(loaded.entry_id)
    await settle(hass)
    assert registrar_of(loaded).state.devices[device_id].refusal is None
    assert state_of(hass, state) == "onboarded"

    await device.stop()
    assert await action(hass, "rotate_home_key", {}) == {"devices_pending": 1, "devices_moved": 0}
    assert state_of(hass, state) == "rotation_pending"  # signed, never sent: the device is offline

    assert (await hand_over(hass, device_id, fixed_key("buyer")))["delivered"] is False
    assert state_of(hass, state) == "handover_pending"

    await options_step(hass, loaded, "remove_manufacturer", {"roots": [root_fingerprint(maker)]})
    assert state_of(hass, state) == "revoked"

    await options_step(hass, loaded, "block_device", {"block": device_id})
    assert state_of(hass, state) == "blocked"

    await options_step(hass, loaded, "block_device", {"unblock": [device_id]})
    assert state_of(hass, state) == "revoked"
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.CHANGING_OWNER


async def test_refused_state_after_a_restart(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    impostor: Callable[..., Awaitable[Impostor]],
) -> None:
    """A stored refusal of an onboarded device still shows after a restart while the device is away."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    await device.stop()
    fake = await impostor(b"", port=device.port)  # something else answers at the device's address
    assert await hass.config_entries.async_reload(loaded.entry_id)  # where the device is checked
    await settle(hass)
    await fake.stop()

    assert await hass.config_entries.async_reload(loaded.entry_id)
    await settle(hass)

    assert registrar_of(loaded).state.devices[device_id].refusal is not None
    assert state_of(hass, entity_ids(hass, device_id)["onboarding_state"]) == "refused"


async def test_a_change_shows_sent_until_the_device_confirms_it(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A rotation, a hand-over and a cancel the device was sent but did not confirm show "*_sent"; only
    the device's receipt (or a proof) confirms them."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    state = entity_ids(hass, device_id)["onboarding_state"]
    registrar = registrar_of(loaded)

    await busy(device)  # it proves itself, then turns the note with the rotation link away
    assert await action(hass, "rotate_home_key", {}) == {"devices_pending": 1, "devices_moved": 0}
    assert state_of(hass, state) == "rotation_sent"
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())

    await idle(device)
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    assert state_of(hass, state) == "onboarded"
    assert device.device.state.owner == registrar.home.fingerprint

    await busy(device)  # it proves itself, then turns the pushed hand-over link away
    assert (await hand_over(hass, device_id, fixed_key("buyer")))["delivered"] is False
    assert state_of(hass, state) == "handover_sent"
    assert registered(hass, device_id) is not None
    assert device.device.state.owner == registrar.home.fingerprint

    result = await options_step(hass, loaded, "pending_hand_overs", {"device": device_id, "action": "cancel"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cancel_signed"
    change = registrar.state.devices[device_id].change
    assert change is not None
    assert change.kind is ChangeKind.CANCEL
    assert state_of(hass, state) == "cancel_pending"

    await busy(device)  # it proves itself, then turns the note with the keep-owner link away
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    assert state_of(hass, state) == "cancel_sent"

    await idle(device)
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    assert state_of(hass, state) == "onboarded"
    record = registrar.state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert device.device.chain.links == tuple(record.chain)
    events = [event["event"] for event in record.history]
    assert events[-3:] == ["handover_signed", "handover_cancel_signed", "handover_cancelled"]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_owners_and_chain_sensors(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An invoice naming two homes: two owners, their fingerprints (8 groups of 4) as an attribute. The
    counts are no measurements: no state class, so no long-term statistics are kept of them."""
    co_owner = fixed_key("co-owner home")
    device: RunningDevice = await devices([home, co_owner])
    ids = entity_ids(hass, await onboard(hass, loaded, device))
    owners = hass.states.get(ids["owners"])
    assert owners is not None
    assert owners.state == "2"
    assert owners.attributes["fingerprints"] == [
        format_fingerprint(fingerprint(home.public_key())),
        format_fingerprint(fingerprint(co_owner.public_key())),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{4}( [0-9a-f]{4}){7}", fp) for fp in owners.attributes["fingerprints"])
    assert state_of(hass, ids["chain_length"]) == "1"
    chain_length = hass.states.get(ids["chain_length"])
    assert chain_length is not None
    assert "state_class" not in owners.attributes
    assert "state_class" not in chain_length.attributes
    last_seen = hass.states.get(ids["last_seen"])
    assert last_seen is not None
    assert dt_util.parse_datetime(last_seen.state) is not None
    assert "fingerprints" not in last_seen.attributes


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_chain_length_follows_the_proven_chain(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The chain length counts what the device proved: a rotation link counts once it is confirmed."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    chain_length = entity_ids(hass, device_id)["chain_length"]
    await busy(device)

    await action(hass, "rotate_home_key", {})
    assert state_of(hass, chain_length) == "1"  # sent, not confirmed

    await idle(device)
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    assert state_of(hass, chain_length) == "2"


async def test_sensors_unavailable_when_the_device_leaves(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Once a proof shows the device took its hand-over it has left this home: its sensors go away (the
    device leaves the registry), having shown the hand-over pending, then sent."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    ids = entity_ids(hass, device_id)
    seen: dict[str, list[str | None]] = {entity_id: [] for entity_id in ids.values()}

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        new_state = event.data["new_state"]
        seen[event.data["entity_id"]].append(None if new_state is None else new_state.state)

    unsubscribe = async_track_state_change_event(hass, list(ids.values()), changed)
    response = await hand_over(hass, device_id, fixed_key("buyer"))
    unsubscribe()

    assert response["delivered"] is True
    assert seen[ids["onboarding_state"]] == ["handover_pending", "handover_sent", None]
    for entity_id in ids.values():
        assert seen[entity_id][-1] is None
        assert hass.states.get(entity_id) is None
        assert er.async_get(hass).async_get(entity_id) is None
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.HANDED_OVER

"""The admin actions: `autoadd.rotate_home_key` and `autoadd.hand_over_device`."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser, async_fire_time_changed
import voluptuous as vol

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import decode_chain, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from custom_components.autoadd.registrar.keys import HomeKey
from custom_components.autoadd.registrar.record import Phase
from custom_components.autoadd.registrar.rotation import RotationProgress, rotation_progress
from custom_components.autoadd.storage import HOME_KEY_STORE
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice, device_refuses

from .conftest import candidate_for, registered, registrar_of

ROTATE = "rotate_home_key"
HAND_OVER = "hand_over_device"


async def onboard(hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice) -> dr.DeviceEntry:
    """Onboard a reference device; return its device registry entry."""
    registrar_of(entry).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    device_entry = registered(hass, device.spec.device_id.hex())
    assert device_entry is not None
    return device_entry


async def call(hass: HomeAssistant, service: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Call an AutoAdd action and return its response."""
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, **kwargs
    )
    assert response is not None
    return dict(response)


# --- rotate_home_key ----------------------------------------------------------------------------------------


async def test_rotate_moves_devices_and_destroys_the_old_key(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """The action signs a link per device; online devices move at once; the old key is destroyed now."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online)
    await onboard(hass, loaded, offline)
    await offline.stop()
    registrar = registrar_of(loaded)

    response = await call(hass, ROTATE, {"destroy_old_key": True})
    # Links are signed for both; the online one takes its link in the background.
    assert response == {"devices_pending": 2, "devices_moved": 0}
    await hass.async_block_till_done(wait_background_tasks=True)

    new = registrar.home.fingerprint
    assert new != fingerprint(home.public_key())
    assert online.device is not None
    assert online.device.state.owner == new
    assert rotation_progress(registrar) == RotationProgress(moved=1, pending=1)
    assert [old.key for old in registrar.keys.retired] == [None]
    assert hass_storage[HOME_KEY_STORE]["data"]["retired"][0]["private_pem"] is None
    assert home.public_key() not in [key.public_key() for key in registrar.keys.signing_keys()]
    assert await device_refuses(online, home) == "not_owner"

    await offline.start(offline.port)
    registrar.announce(candidate_for(offline, claimed=True))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert offline.device is not None
    assert offline.device.state.owner == new
    assert rotation_progress(registrar) == RotationProgress(moved=2, pending=0)


async def test_rotate_keeps_the_old_key_by_default(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Without destroy_old_key the old key is kept until every device has moved."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    registrar = registrar_of(loaded)

    response = await call(hass, ROTATE, {})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert response == {"devices_pending": 1, "devices_moved": 0}
    assert registrar.keys.retired[0].key is not None
    assert registrar.state.rotation is not None
    assert registrar.state.rotation["destroy_old"] is False


async def test_rotate_without_devices(
    hass: HomeAssistant, loaded: MockConfigEntry, home: PrivateKey, freezer: FrozenDateTimeFactory
) -> None:
    """With no device the rotation finishes at once; the response can also be left out. The kept old key
    outlives it by 30 days (a device this home has no record of may still trust it), then goes."""
    assert await hass.services.async_call(DOMAIN, ROTATE, {}, blocking=True) is None
    registrar = registrar_of(loaded)
    assert registrar.home.fingerprint != fingerprint(home.public_key())
    assert registrar.state.rotation is None
    assert registrar.keys.retired[0].key is not None

    freezer.tick(timedelta(days=29))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registrar.keys.retired[0].key is not None
    freezer.tick(timedelta(days=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [old.key for old in registrar.keys.retired] == [None]
    assert await call(hass, ROTATE, {"destroy_old_key": False}) == {"devices_pending": 0, "devices_moved": 0}


async def test_rotate_while_a_key_is_staged(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A staged key means a rotation is under way: the action says so and changes nothing."""
    registrar = registrar_of(loaded)
    current = registrar.home
    registrar.keys.staged = HomeKey.generate(current.key_type)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, ROTATE, {"destroy_old_key": True})
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "rotation_in_progress"
    assert registrar.home is current
    assert registrar.keys.retired == []


async def test_rotate_schema(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Only destroy_old_key is accepted."""
    with pytest.raises(vol.Invalid):
        await call(hass, ROTATE, {"destroy_old_key": "maybe"})
    with pytest.raises(vol.Invalid):
        await call(hass, ROTATE, {"other": True})


# --- hand_over_device ---------------------------------------------------------------------------------------


async def test_hand_over_pushed(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
) -> None:
    """The device answers: it takes the hand-over and leaves; the response carries the transfer file."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    device_entry = await onboard(hass, loaded, device)
    device_id = device.spec.device_id.hex()

    response = await call(
        hass, HAND_OVER, {"device_id": device_entry.id, "new_owner": format_home_key(buyer.public_key())}
    )
    assert response["delivered"] is True
    links = decode_chain(base64.b64decode(response["transfer_file"]))
    chain = verify_chain(links, roots=[maker.root], now=dt_util.utcnow())
    assert chain.device_id == device.spec.device_id
    assert chain.head.owner_fingerprints == (fingerprint(buyer.public_key()),)
    assert chain.reasons[-1] is LinkReason.HANDOVER
    assert chain.history[-1].signer == fingerprint(home.public_key())

    assert registered(hass, device_id) is None
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.HANDED_OVER  # kept, with the chain it proved, no longer a member
    assert record.change is None
    assert record.chain == list(links)
    assert device.device is not None
    assert not device.device.claimed  # it waits for the buyer's registrar
    assert device.device.chain.links == tuple(links)  # a fresh proof showed it holds the hand-over link
    assert [event["event"] for event in record.history] == ["onboarded", "handover_signed", "handed_over"]


async def test_hand_over_offline_then_again(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Offline: not delivered, the device stays; a second hand-over is refused while the first waits."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    device_entry = await onboard(hass, loaded, device)
    await device.stop()
    data = {"device_id": device_entry.id, "new_owner": format_home_key(buyer.public_key())}

    response = await call(hass, HAND_OVER, data)
    assert response["delivered"] is False
    assert decode_chain(base64.b64decode(response["transfer_file"]))
    assert registered(hass, device.spec.device_id.hex()) is not None

    with pytest.raises(ServiceValidationError) as err:
        await call(hass, HAND_OVER, data)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "handover_in_progress"


async def test_hand_over_to_the_only_owner(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Handing a device to a key this home holds is refused with a reason (it would lock the device out)."""
    device: RunningDevice = await devices([home])
    device_entry = await onboard(hass, loaded, device)
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, HAND_OVER, {"device_id": device_entry.id, "new_owner": format_home_key(home.public_key())}
        )
    assert err.value.translation_key == "own_key"
    assert registrar_of(loaded).state.devices[device.spec.device_id.hex()].change is None


async def test_hand_over_unknown_device(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A device id the registry does not know is refused before the home key string is read."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, HAND_OVER, {"device_id": "no-such-device", "new_owner": "garbage"})
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "unknown_device"


async def test_hand_over_device_of_another_integration(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A device that belongs to another integration is not AutoAdd's to hand over."""
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    device_entry = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other_integration", "lamp")}, name="Lamp"
    )
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            HAND_OVER,
            {"device_id": device_entry.id, "new_owner": format_home_key(fixed_key("b").public_key())},
        )
    assert err.value.translation_key == "unknown_device"


async def test_hand_over_device_the_registrar_forgot(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A registry device with an AutoAdd identifier the registrar does not manage: unknown_device."""
    device_entry = dr.async_get(hass).async_get_or_create(
        config_entry_id=loaded.entry_id, identifiers={(DOMAIN, "ab" * 32)}, name="Ghost"
    )
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            HAND_OVER,
            {"device_id": device_entry.id, "new_owner": format_home_key(fixed_key("b").public_key())},
        )
    assert err.value.translation_key == "unknown_device"


@pytest.mark.parametrize(
    ("new_owner", "reason"),
    [
        ("XXHK1-ABCDE", "starts with AAHK1-"),
        ("AAHK1-ABCDE-FGHIJ", "characters after the prefix"),
        ("AAHK1-ABCD1", "is not A-Z or 2-7"),
    ],
)
async def test_hand_over_bad_home_key_string(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    new_owner: str,
    reason: str,
) -> None:
    """A home key string that does not parse is refused, saying what is wrong with it."""
    device: RunningDevice = await devices([home])
    device_entry = await onboard(hass, loaded, device)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, HAND_OVER, {"device_id": device_entry.id, "new_owner": new_owner})
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "invalid_home_key_string"
    assert err.value.translation_placeholders is not None
    assert reason in err.value.translation_placeholders["reason"]
    assert reason in str(err.value)  # the translated message carries the reason
    assert registrar_of(loaded).state.devices[device.spec.device_id.hex()].change is None


async def test_hand_over_schema(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Both fields are required."""
    with pytest.raises(vol.Invalid):
        await call(hass, HAND_OVER, {"device_id": "x"})
    with pytest.raises(vol.Invalid):
        await call(hass, HAND_OVER, {"new_owner": "x"})


# --- not loaded, admin only ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "data"), [(ROTATE, {}), (HAND_OVER, {"device_id": "x", "new_owner": "y"})]
)
async def test_actions_need_a_loaded_entry(
    hass: HomeAssistant, loaded: MockConfigEntry, service: str, data: dict[str, Any]
) -> None:
    """With the registrar unloaded the actions stay registered but say AutoAdd is not running."""
    assert await hass.config_entries.async_unload(loaded.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, service, data)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "not_loaded"


@pytest.mark.parametrize(
    ("service", "data"), [(ROTATE, {}), (HAND_OVER, {"device_id": "x", "new_owner": "y"})]
)
async def test_actions_without_any_entry(hass: HomeAssistant, service: str, data: dict[str, Any]) -> None:
    """The integration set up with no registrar entry at all: the actions exist and say not_loaded."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, service)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, service, data)
    assert err.value.translation_key == "not_loaded"


@pytest.mark.parametrize(
    ("service", "data"), [(ROTATE, {}), (HAND_OVER, {"device_id": "x", "new_owner": "y"})]
)
async def test_actions_are_admin_only(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    hass_read_only_user: MockUser,
    home: PrivateKey,
    service: str,
    data: dict[str, Any],
) -> None:
    """A non-admin user cannot rotate the home key or hand a device over."""
    with pytest.raises(Unauthorized):
        await call(hass, service, data, context=Context(user_id=hass_read_only_user.id))
    assert registrar_of(loaded).home.fingerprint == fingerprint(home.public_key())
    assert registrar_of(loaded).keys.staged is None


async def test_admin_user_may_rotate(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_admin_user: MockUser, home: PrivateKey
) -> None:
    """An admin user's call goes through."""
    response = await call(hass, ROTATE, {}, context=Context(user_id=hass_admin_user.id))
    assert response == {"devices_pending": 0, "devices_moved": 0}
    assert registrar_of(loaded).home.fingerprint != fingerprint(home.public_key())

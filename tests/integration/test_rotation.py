"""Rotating the home key: online and offline devices, the old key destroyed or kept, a second rotation,
and a rotation while a hand-over is pending. Failed writes and crashes are in test_rotation_failures.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.autoadd import KEY_AGE_CHECK_INTERVAL
from custom_components.autoadd.protocol.chain import decode_chain, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from custom_components.autoadd.registrar.core import Registrar
from custom_components.autoadd.registrar.handover import hand_over, transfer_file
from custom_components.autoadd.registrar.keys import HomeKey
from custom_components.autoadd.registrar.record import ChangeKind, Phase
from custom_components.autoadd.registrar.rotation import KEEP_RETIRED, RotationProgress, rotation_progress
from custom_components.autoadd.storage import HOME_KEY_STORE
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice, device_refuses

from .conftest import candidate_for, onboard, registered, registrar_of, rotate, settle


def owner_of(device: RunningDevice) -> bytes | None:
    assert device.device is not None
    return device.device.state.owner


def stored_keys(hass_storage: dict[str, Any]) -> dict[str, Any]:
    """The key store as it is on disk."""
    data: dict[str, Any] = hass_storage[HOME_KEY_STORE]["data"]
    return data


def kept_keys(registrar: Registrar) -> list[bool]:
    """Per retired home key, whether its private part is still held."""
    return [old.key is not None for old in registrar.keys.retired]


async def grace_period_passes(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """The time a kept old key outlives its rotation passes, and the twice-daily check runs."""
    freezer.tick(KEEP_RETIRED + KEY_AGE_CHECK_INTERVAL)
    async_fire_time_changed(hass)
    await settle(hass)


async def comes_back(hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice) -> None:
    """A device that was offline announces itself again."""
    await device.start(device.port)
    registrar_of(entry).announce(candidate_for(device, claimed=True))
    await settle(hass)


@pytest.mark.parametrize("destroy_old", [False, True])
async def test_online_devices_move_at_once(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    destroy_old: bool,
) -> None:
    """Every online device takes its rotation link in a note at once and is owned by the new key."""
    first: RunningDevice = await devices([home], serial="SN0001")
    second: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, first, second)
    registrar = registrar_of(loaded)

    # Both links are signed when the action answers; the devices take them right after.
    assert await rotate(hass, destroy_old=destroy_old) == {"devices_pending": 2, "devices_moved": 0}

    new = registrar.home.fingerprint
    assert new != fingerprint(home.public_key())
    for device in (first, second):
        assert owner_of(device) == new
        record = registrar.state.devices[device.spec.device_id.hex()]
        assert record.change is None
        assert record.phase is Phase.ONBOARDED
        assert record.owners == [new.hex()]
        assert len(record.chain) == 2
        assert device.device is not None
        assert device.device.chain.links == tuple(record.chain)
        assert [event["event"] for event in record.history][-2:] == ["rotation_signed", "rotated"]
    assert rotation_progress(registrar) == RotationProgress(moved=2, pending=0)
    assert registrar.state.rotation is None
    # Destroyed now if the owner chose so; else kept a while (a device this home has no record of may
    # still trust it). Its fingerprint stays known either way.
    assert kept_keys(registrar) == [not destroy_old]
    assert (stored_keys(hass_storage)["retired"][0]["private_pem"] is None) is destroy_old
    assert await device_refuses(first, home) == "not_owner"


async def test_offline_device_moves_when_it_comes_back(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """An offline device gets its link when it is next seen; until then the old key is kept, as chosen."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    registrar = registrar_of(loaded)

    assert (await rotate(hass))["devices_pending"] == 2
    assert rotation_progress(registrar) == RotationProgress(moved=1, pending=1)
    assert registrar.keys.retired[0].key is not None  # kept until every device confirmed
    assert stored_keys(hass_storage)["retired"][0]["private_pem"] is not None
    assert owner_of(offline) == fingerprint(home.public_key())

    await comes_back(hass, loaded, offline)
    assert owner_of(offline) == registrar.home.fingerprint
    assert rotation_progress(registrar) == RotationProgress(moved=2, pending=0)
    assert registrar.state.rotation is None
    assert kept_keys(registrar) == [True]  # for its grace period


async def test_kept_old_key_goes_once_every_device_moved_and_its_grace_period_is_over(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """The old key the owner kept stays while a device still waits for its link, and for KEEP_RETIRED in
    any case; then it is destroyed, on disk too."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    registrar = registrar_of(loaded)
    await rotate(hass)

    freezer.tick(KEEP_RETIRED - timedelta(hours=1))
    async_fire_time_changed(hass)
    await settle(hass)
    assert kept_keys(registrar) == [True]
    await grace_period_passes(hass, freezer)
    assert kept_keys(registrar) == [True]  # a device still waits for its rotation link

    await comes_back(hass, loaded, offline)
    assert owner_of(offline) == registrar.home.fingerprint
    assert kept_keys(registrar) == [False]
    assert stored_keys(hass_storage)["retired"][0]["private_pem"] is None


async def test_old_key_destroyed_at_once_still_moves_offline_devices(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """With the old key destroyed right after signing, the stored links alone move an offline device."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    registrar = registrar_of(loaded)

    await rotate(hass, destroy_old=True)
    assert stored_keys(hass_storage)["retired"][0]["private_pem"] is None
    assert home.public_key() not in [key.public_key() for key in registrar.keys.signing_keys()]
    assert registrar.state.rotation is not None  # the device has not moved yet

    await comes_back(hass, loaded, device)
    assert owner_of(device) == registrar.home.fingerprint
    assert registrar.state.rotation is None


async def test_second_rotation_while_one_is_signed_but_unconfirmed(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Two rotations before an offline device returns: it takes both links and ends on the newest key."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    registrar = registrar_of(loaded)
    await rotate(hass)
    await rotate(hass, destroy_old=True)
    change = registrar.state.devices[device.spec.device_id.hex()].change
    assert change is not None
    assert change.kind is ChangeKind.ROTATE
    assert len(change.links) == 2  # the second is signed on top of the first

    await comes_back(hass, loaded, device)
    assert owner_of(device) == registrar.home.fingerprint
    assert device.device is not None
    assert device.device.chain.reasons == (LinkReason.ROTATE, LinkReason.ROTATE)
    assert kept_keys(registrar) == [True, False]  # the first key kept, the second destroyed at once


async def test_rotation_cannot_start_while_one_is_staged(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    """A staged key means a rotation is under way; a second one is refused with a reason, writing nothing."""
    registrar = registrar_of(loaded)
    registrar.keys.staged = HomeKey.generate(registrar.home.key_type)
    on_disk = dict(stored_keys(hass_storage))
    with pytest.raises(ServiceValidationError) as err:
        await rotate(hass, destroy_old=True)
    assert err.value.translation_key == "rotation_in_progress"
    assert stored_keys(hass_storage) == on_disk
    assert registrar.keys.retired == []


# --- A rotation with a hand-over pending ------------------------------------------------------------------


async def test_rotation_signs_a_pending_hand_over_again(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
) -> None:
    """The rotation link goes under the hand-over, which the new key signs again; the transfer file is
    issued anew and the device, when it is back, takes both and leaves."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)
    first = await hand_over(registrar, device_id, buyer.public_key())
    assert not first.delivered

    await rotate(hass, destroy_old=True)
    change = registrar.state.devices[device_id].change
    assert change is not None
    assert change.kind is ChangeKind.HANDOVER
    links = decode_chain(transfer_file(registrar, device_id))
    assert links != decode_chain(first.transfer)
    chain = verify_chain(links, roots=[maker.root], now=dt_util.utcnow())
    assert chain.reasons == (LinkReason.ROTATE, LinkReason.HANDOVER)
    assert chain.history[-1].signer == registrar.home.fingerprint  # signed again by the new key
    assert chain.head.owner_fingerprints == (fingerprint(buyer.public_key()),)
    assert rotation_progress(registrar) == RotationProgress(moved=0, pending=1)

    await comes_back(hass, loaded, device)
    assert registered(hass, device_id) is None
    assert registrar.state.devices[device_id].phase is Phase.HANDED_OVER
    assert device.device is not None
    assert device.device.chain.links == tuple(links)
    assert not device.device.claimed  # it waits for the buyer's registrar
    assert registrar.state.rotation is None  # nothing waits for a rotation link any more


async def test_hand_over_signed_before_the_rotation_still_counts_as_taken(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The buyer delivered the first transfer file before the device saw the new one: it has left all
    the same, and nothing waits for the rotation any more."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)
    first = await hand_over(registrar, device_id, fixed_key("buyer home").public_key())
    await rotate(hass)
    assert registrar.keys.retired[0].key is not None

    await device.start(device.port)
    assert device.device is not None
    device.device.add_links(list(decode_chain(first.transfer)[1:]))
    registrar.announce(candidate_for(device))
    await settle(hass)

    assert registered(hass, device_id) is None
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.HANDED_OVER
    assert record.chain == list(decode_chain(first.transfer))
    assert registrar.state.rotation is None

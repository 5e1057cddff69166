"""Rotating the home key: online and offline devices, old key destroyed or kept, a restart at every step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd import lifecycle
from custom_components.autoadd.lifecycle import LifecycleError, async_rotate_home_key, rotation_progress
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from custom_components.autoadd.registrar.core import Registrar
from custom_components.autoadd.storage import HOME_KEY_STORE, HomeKeyStore, RegistrarStore
from tests.reference_device import RunningDevice, device_refuses

from .conftest import candidate_for, registered, registrar_of


async def onboard(hass: HomeAssistant, entry: MockConfigEntry, *devices: RunningDevice) -> None:
    for device in devices:
        registrar_of(entry).async_candidate(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    for device in devices:
        assert registered(hass, device.spec.device_id.hex()) is not None


def held_retired_keys(registrar: Registrar) -> int:
    """How many retired home keys still have their private part."""
    return sum(old.key is not None for old in registrar.keys.retired)


def owner_of(device: RunningDevice) -> bytes | None:
    assert device.device is not None
    return device.device.state.owner


async def restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Stop and start the registrar as Home Assistant would, keeping only what is on disk."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def crash_and_restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Stop without writing anything more (as a crash would), then start from what is on disk."""
    with patch.object(RegistrarStore, "async_save"), patch.object(RegistrarStore, "async_schedule_save"):
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def comes_back(hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice) -> None:
    """A device that was offline announces itself again."""
    await device.start(device.port)
    registrar_of(entry).async_candidate(candidate_for(device, claimed=True))
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize("destroy_old", [False, True])
async def test_online_devices_move_at_once(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    destroy_old: bool,
) -> None:
    """Every online device takes its rotation link in the next note and is owned by the new key."""
    first: RunningDevice = await devices([home], serial="SN0001")
    second: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, first, second)
    registrar = registrar_of(loaded)

    await async_rotate_home_key(registrar, destroy_old=destroy_old)
    await hass.async_block_till_done(wait_background_tasks=True)

    new = registrar.home.fingerprint
    assert new != fingerprint(home.public_key())
    for device in (first, second):
        assert owner_of(device) == new
        record = registrar.store.data.devices[device.spec.device_id.hex()]
        assert record.pending_links == []
        assert record.owners == [new.hex()]
        assert len(record.chain) == 2
    assert rotation_progress(registrar) == lifecycle.RotationProgress(moved=2, pending=0)
    assert registrar.store.data.rotation is None
    # Every device moved, so the old private key is gone either way; its fingerprint stays known.
    assert [old.key for old in registrar.keys.retired] == [None]
    assert await device_refuses(first, home) == "not_owner"


async def test_offline_device_moves_when_it_comes_back(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An offline device gets its link on its next contact; until then the old key is kept, as chosen."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    registrar = registrar_of(loaded)

    progress = await async_rotate_home_key(registrar, destroy_old=False)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert progress.pending == 2
    assert rotation_progress(registrar) == lifecycle.RotationProgress(moved=1, pending=1)
    assert registrar.keys.retired[0].key is not None  # kept until every device confirmed

    await comes_back(hass, loaded, offline)
    assert owner_of(offline) == registrar.home.fingerprint
    assert rotation_progress(registrar).pending == 0
    assert held_retired_keys(registrar) == 0
    assert registrar.store.data.rotation is None


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
    await async_rotate_home_key(registrar, destroy_old=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    stored = hass_storage[HOME_KEY_STORE]["data"]
    assert stored["retired"][0]["private_pem"] is None
    assert home.public_key() not in [k.public_key() for k in registrar.keys.signing_keys()]

    await comes_back(hass, loaded, device)
    assert owner_of(device) == registrar.home.fingerprint


async def test_second_rotation_while_one_is_signed_but_unconfirmed(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Two rotations before an offline device returns: it takes both links and ends on the newest key."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await device.stop()
    registrar = registrar_of(loaded)
    await async_rotate_home_key(registrar, destroy_old=False)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_rotate_home_key(registrar, destroy_old=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(registrar.store.data.devices[device.spec.device_id.hex()].pending_links) == 2

    await comes_back(hass, loaded, device)
    assert owner_of(device) == registrar.home.fingerprint
    assert device.device is not None
    assert len(device.device.chain.links) == 3


async def test_rotation_cannot_start_while_one_is_staged(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """A staged key means a rotation is under way; a second one is refused with a reason."""
    registrar = registrar_of(loaded)
    from custom_components.autoadd.storage import HomeKey

    registrar.keys.staged = HomeKey.generate(registrar.home.key_type)
    with pytest.raises(LifecycleError, match="rotation_in_progress"):
        await async_rotate_home_key(registrar, destroy_old=True)


# --- A crash or restart at every step ---------------------------------------------------------------------


async def test_crash_before_links_are_stored(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Killed after the new key is staged but before any link is stored: the old key stays, devices too."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)
    with (
        patch.object(RegistrarStore, "async_save", side_effect=RuntimeError("power cut")),
        pytest.raises(RuntimeError),
    ):
        await async_rotate_home_key(registrar, destroy_old=True)
    await crash_and_restart(hass, loaded)

    after = registrar_of(loaded)
    assert after.keys.staged is None
    assert after.home.fingerprint == fingerprint(home.public_key())
    assert after.store.data.devices[device.spec.device_id.hex()].pending_links == []
    after.async_candidate(candidate_for(device), force=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert owner_of(device) == fingerprint(home.public_key())


async def test_crash_after_links_are_stored(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Killed after the links are stored but before the keys swap: the rotation finishes at start."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)
    staged: list[bytes] = []

    async def power_cut(registrar: Registrar) -> None:
        assert registrar.keys.staged is not None
        staged.append(registrar.keys.staged.fingerprint)
        raise RuntimeError("power cut")

    with patch.object(lifecycle, "async_finish_rotation", power_cut), pytest.raises(RuntimeError):
        await async_rotate_home_key(registrar, destroy_old=False)
    await crash_and_restart(hass, loaded)

    after = registrar_of(loaded)
    assert after.home.fingerprint == staged[0]
    assert after.keys.retired[0].key is not None
    after.async_candidate(candidate_for(device), force=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert owner_of(device) == staged[0]
    assert after.keys.retired[0].key is None  # every device moved: the kept key goes


async def test_restart_after_some_devices_confirmed(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A restart between confirmations loses nothing: the device still to move moves afterwards."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    await async_rotate_home_key(registrar_of(loaded), destroy_old=False)
    await hass.async_block_till_done(wait_background_tasks=True)
    await restart(hass, loaded)

    after = registrar_of(loaded)
    assert rotation_progress(after) == lifecycle.RotationProgress(moved=1, pending=1)
    await comes_back(hass, loaded, offline)
    assert owner_of(offline) == after.home.fingerprint
    assert owner_of(online) == after.home.fingerprint


async def test_crash_while_the_old_key_is_destroyed(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Killed while the retired key is being destroyed: devices are on the new key, which is on disk."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)
    real_save = HomeKeyStore.async_save
    calls = 0

    async def save(self: HomeKeyStore, keys: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # 1: stage, 2: swap, 3: destroy the retired key; the process dies here
            raise asyncio.CancelledError
        await real_save(self, keys)

    with patch.object(HomeKeyStore, "async_save", save):
        await async_rotate_home_key(registrar, destroy_old=False)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert calls == 3
    await crash_and_restart(hass, loaded)

    after = registrar_of(loaded)
    assert owner_of(device) == after.home.fingerprint
    assert [old.key for old in after.keys.retired] == [None]  # the cleanup finished at start
    after.async_candidate(candidate_for(device), force=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert after.store.data.refused == {}

"""Rotating the home key when a write fails or the process dies at any durable step (docs/design.md,
"What is kept where"): a failure refuses the step and changes nothing, or the rotation finishes at start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.file import WriteError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from custom_components.autoadd.registrar.keys import HomeKey
from custom_components.autoadd.registrar.record import Phase
from custom_components.autoadd.registrar.rotation import RotationProgress, rotate_home_key, rotation_progress
from custom_components.autoadd.storage import HOME_KEY_STORE, REGISTRAR_STORE, SAVE_DELAY
from tests.reference_device import RunningDevice

from .conftest import onboard, registrar_of, rotate, settle
from .test_rotation import (
    comes_back,
    grace_period_passes,
    kept_keys,
    owner_of,
    stored_keys,
)


@contextmanager
def failing_writes(
    store_key: str, error: Callable[[], BaseException], *, after: int = 0
) -> Iterator[list[str]]:
    """Writes of `store_key` raise `error()` once `after` of them went through; other stores are written
    as usual. Yields the attempted writes of that store."""
    real = Store._async_write_data  # the hass_storage mock
    attempts: list[str] = []

    async def write(self: Store[Any], data: dict[str, Any]) -> None:
        if self.key == store_key:
            attempts.append(self.key)
            if len(attempts) > after:
                raise error()
        await real(self, data)

    with patch.object(Store, "_async_write_data", write):
        yield attempts


def disk_full() -> WriteError:
    return WriteError("disk full")


async def saved(hass: HomeAssistant) -> None:
    """A moment passes: the delayed saves are written."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await settle(hass)


async def restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Stop and start the registrar as Home Assistant would, keeping only what is on disk."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)


async def crash_and_restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Stop without writing anything more (as a crash would), then start from what is on disk."""

    async def lost(self: Store[Any], data: dict[str, Any]) -> None:
        return None

    with patch.object(Store, "_async_write_data", lost):
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)


async def test_key_store_that_cannot_be_written_changes_nothing(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """Step 1 fails: the action says so in words, nothing changes, and the owner is told about the disk.
    A later rotation works."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)
    on_disk = dict(stored_keys(hass_storage))

    with (
        failing_writes(HOME_KEY_STORE, disk_full) as attempts,
        pytest.raises(ServiceValidationError) as err,
    ):
        await rotate(hass)
    assert attempts == [HOME_KEY_STORE]
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "storage_failed"
    assert "nothing was changed" in str(err.value)
    assert registrar.home.fingerprint == fingerprint(home.public_key())
    assert registrar.keys.staged is None
    assert registrar.keys.retired == []
    assert registrar.state.devices[device.spec.device_id.hex()].change is None
    assert registrar.state.rotation is None
    assert stored_keys(hass_storage) == on_disk
    assert owner_of(device) == fingerprint(home.public_key())
    assert ir.async_get(hass).async_get_issue(DOMAIN, "storage_failed") is not None

    await rotate(hass)
    assert owner_of(device) == registrar.home.fingerprint != fingerprint(home.public_key())
    assert ir.async_get(hass).async_get_issue(DOMAIN, "storage_failed") is None


async def test_links_that_cannot_be_stored_change_nothing(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """Step 2 fails: the staged key is taken back, on disk too; no link was signed or sent."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)

    with failing_writes(REGISTRAR_STORE, disk_full), pytest.raises(ServiceValidationError) as err:
        await rotate(hass, destroy_old=True)
    assert err.value.translation_key == "storage_failed"
    assert registrar.home.fingerprint == fingerprint(home.public_key())
    assert registrar.keys.staged is None
    assert stored_keys(hass_storage)["staged"] is None
    assert registrar.state.devices[device.spec.device_id.hex()].change is None
    assert registrar.state.rotation is None

    await restart(hass, loaded)
    after = registrar_of(loaded)
    assert after.home.fingerprint == fingerprint(home.public_key())
    assert after.keys.retired == []
    assert after.state.devices[device.spec.device_id.hex()].change is None
    assert owner_of(device) == fingerprint(home.public_key())
    assert device.device is not None
    assert len(device.device.chain.links) == 1


async def test_crash_before_links_are_stored(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """Killed after the new key is staged but before any link is stored: the stage is dropped at start;
    the old key stays, and so do the devices."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await saved(hass)
    with (
        failing_writes(REGISTRAR_STORE, asyncio.CancelledError),
        pytest.raises(asyncio.CancelledError),
    ):
        await rotate_home_key(registrar_of(loaded), destroy_old=True)
    assert stored_keys(hass_storage)["staged"] is not None  # step 1 is on disk
    await crash_and_restart(hass, loaded)

    after = registrar_of(loaded)
    assert after.keys.staged is None
    assert stored_keys(hass_storage)["staged"] is None
    assert after.home.fingerprint == fingerprint(home.public_key())
    record = after.state.devices[device.spec.device_id.hex()]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert owner_of(device) == fingerprint(home.public_key())


async def test_crash_after_links_are_stored(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Killed after the links are stored but before the keys swap: the rotation finishes at start."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await saved(hass)
    with (
        failing_writes(HOME_KEY_STORE, asyncio.CancelledError, after=1) as attempts,
        pytest.raises(asyncio.CancelledError),
    ):
        await rotate_home_key(registrar_of(loaded), destroy_old=False)
    assert len(attempts) == 2  # 1: stage, 2: swap, where the process dies
    staged = HomeKey.from_dict(stored_keys(hass_storage)["staged"]).fingerprint
    assert hass_storage[REGISTRAR_STORE]["data"]["rotation"]["new"] == staged.hex()
    await device.stop()
    await crash_and_restart(hass, loaded)

    after = registrar_of(loaded)
    assert after.home.fingerprint == staged
    assert after.keys.staged is None
    assert kept_keys(after) == [True]  # kept, as chosen
    await comes_back(hass, loaded, device)
    assert owner_of(device) == staged
    await grace_period_passes(hass, freezer)
    assert kept_keys(after) == [False]


async def test_key_swap_that_cannot_be_written_finishes_at_the_next_start(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Step 3 fails: the links are stored, nothing is sent; the owner is told the rotation finishes at the
    next start, and it does."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    registrar = registrar_of(loaded)

    with failing_writes(HOME_KEY_STORE, disk_full, after=1), pytest.raises(ServiceValidationError) as err:
        await rotate(hass)
    assert err.value.translation_key == "rotation_unfinished"
    assert registrar.home.fingerprint == fingerprint(home.public_key())
    assert registrar.keys.staged is not None
    new = registrar.keys.staged.fingerprint
    change = registrar.state.devices[device.spec.device_id.hex()].change
    assert change is not None
    assert not change.sent
    assert owner_of(device) == fingerprint(home.public_key())
    with pytest.raises(ServiceValidationError) as again:
        await rotate(hass)
    assert again.value.translation_key == "rotation_in_progress"

    await restart(hass, loaded)
    after = registrar_of(loaded)
    assert after.home.fingerprint == new
    assert owner_of(device) == new  # the link went out at start
    assert after.state.rotation is None


async def test_restart_after_some_devices_confirmed(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A restart between confirmations loses nothing: the device still to move moves afterwards."""
    online: RunningDevice = await devices([home], serial="SN0001")
    offline: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, online, offline)
    await offline.stop()
    await rotate(hass)
    await restart(hass, loaded)

    after = registrar_of(loaded)
    assert rotation_progress(after) == RotationProgress(moved=1, pending=1)
    await comes_back(hass, loaded, offline)
    assert owner_of(offline) == after.home.fingerprint
    assert owner_of(online) == after.home.fingerprint
    assert after.state.rotation is None


async def test_crash_while_the_old_key_is_destroyed(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Killed while the kept old key is being destroyed: devices are on the new key, which is on disk,
    and the cleanup finishes at start."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    await rotate(hass)
    await saved(hass)
    new = registrar_of(loaded).home.fingerprint
    assert owner_of(device) == new
    with failing_writes(HOME_KEY_STORE, asyncio.CancelledError) as attempts:
        await grace_period_passes(hass, freezer)
    assert attempts == [HOME_KEY_STORE]  # the write destroying the old key; the process dies here
    assert stored_keys(hass_storage)["retired"][0]["private_pem"] is not None
    await crash_and_restart(hass, loaded)

    after = registrar_of(loaded)
    assert after.home.fingerprint == new
    assert kept_keys(after) == [False]
    assert stored_keys(hass_storage)["retired"][0]["private_pem"] is None
    record = after.state.devices[device.spec.device_id.hex()]
    assert record.refusal is None
    assert record.phase is Phase.ONBOARDED
    assert owner_of(device) == new

"""The registrar over time: slow devices, many devices, restarts, moves, removals, forks and rollbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd import async_remove_config_entry_device
from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.diagnostics import async_get_config_entry_diagnostics
from custom_components.autoadd.protocol.chain import issue_link, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import PATH_HELLO
from custom_components.autoadd.registrar.core import MAX_CONCURRENT, Candidate
from custom_components.autoadd.storage import REGISTRAR_STORE
from tests.factory import NOW, NOW_TS, fixed_key
from tests.reference_device import RunningDevice

from .conftest import HelloHandler, bundle, candidate_for, registered, stored


@pytest.fixture
async def silent_device(socket_enabled: None) -> AsyncIterator[int]:
    """A device that accepts the connection and never answers."""
    release = asyncio.Event()

    async def hello(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post(PATH_HELLO, hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1])
    release.set()
    await runner.cleanup()


async def onboarded(hass: HomeAssistant, device: RunningDevice) -> dr.DeviceEntry | None:
    await hass.async_block_till_done(wait_background_tasks=True)
    return registered(hass, device.spec.device_id.hex())


async def test_silent_device_times_out_and_others_go_on(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    silent_device: int,
) -> None:
    """A device that never answers times out and is retried later; another device is onboarded meanwhile."""
    registrar = loaded.runtime_data.registrar
    good = await devices([home])
    with patch("custom_components.autoadd.registrar.REQUEST_TIMEOUT", 0.3):
        registrar.async_candidate(Candidate("ab" * 32, "127.0.0.1", silent_device, claimed=False, txt={}))
        registrar.async_candidate(candidate_for(good))
        assert await onboarded(hass, good) is not None
    assert "ab" * 32 in registrar._retries
    assert "ab" * 32 not in registrar.store.data.refused
    assert "ab" * 32 in registrar.store.data.pending  # and survives a restart


async def test_fifty_devices_at_once(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Fifty devices announced together are all onboarded, never more than the bound at a time."""
    registrar = loaded.runtime_data.registrar
    started = [await devices([home], serial=f"SN{n:04d}") for n in range(50)]
    for device in started:
        registrar.async_candidate(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(dr.async_entries_for_config_entry(dr.async_get(hass), loaded.entry_id)) == 50
    assert all(device.device is not None and device.device.claimed for device in started)
    assert 1 < registrar.peak_handshakes <= MAX_CONCURRENT


async def test_restart_in_the_middle_of_onboarding(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    trusted: list[dict[str, str]],
) -> None:
    """A device that was mid-handshake when Home Assistant stopped is onboarded after the restart."""
    device = await devices([home])
    hass_storage_with_home[REGISTRAR_STORE] = stored(
        REGISTRAR_STORE,
        {
            "roots": trusted,
            "pending": {device.spec.device_id.hex(): {"host": "127.0.0.1", "port": device.port}},
        },
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert await onboarded(hass, device) is not None
    assert not entry.runtime_data.registrar.store.data.pending
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_known_device_address_change_is_followed(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A claimed, known device announcing a new address is followed without a new handshake."""
    registrar = loaded.runtime_data.registrar
    device = await devices([home])
    registrar.async_candidate(candidate_for(device))
    assert await onboarded(hass, device) is not None
    moved = Candidate(device.spec.device_id.hex(), "127.0.0.2", 4242, claimed=True, txt={})
    registrar.async_candidate(moved)
    await hass.async_block_till_done(wait_background_tasks=True)
    record = registrar.store.data.devices[device.spec.device_id.hex()]
    assert (record.host, record.port) == ("127.0.0.2", 4242)


async def test_removed_device_stays_removed_until_reset(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The owner removes a device: it is not added back while claimed, but is after a factory reset."""
    registrar = loaded.runtime_data.registrar
    device = await devices([home])
    registrar.async_candidate(candidate_for(device))
    entry = await onboarded(hass, device)
    assert entry is not None
    assert await async_remove_config_entry_device(hass, loaded, entry)
    dr.async_get(hass).async_remove_device(entry.id)
    registrar.async_candidate(candidate_for(device, claimed=True))
    assert await onboarded(hass, device) is None
    assert device.device is not None
    device.device.factory_reset()
    registrar.async_candidate(candidate_for(device, claimed=False))
    assert await onboarded(hass, device) is not None


async def _onboard_with_rotation(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> RunningDevice:
    """A device whose chain is [invoice, rotate(home -> home)], onboarded by this registrar."""
    device: RunningDevice = await devices([home])
    assert device.device is not None
    link = issue_link(
        signer=home,
        head=device.device.chain.head,
        owners=[home.public_key()],
        reason=LinkReason.ROTATE,
        issued_at=NOW_TS,
    )
    device.device.add_links([link])
    device.spec.links.append(link)
    loaded.runtime_data.registrar.async_candidate(candidate_for(device))
    assert await onboarded(hass, device) is not None
    return device


async def test_rollback_of_a_known_device_raises_a_repair_issue(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """The known device shows up with only its invoice: a rollback, refused, and the owner is told."""
    device = await _onboard_with_rotation(hass, loaded, devices, home)
    port = await fake_device(lambda hello: bundle(hello, device.spec.key, device.spec, device.spec.links[:1]))
    device_id = device.spec.device_id.hex()
    loaded.runtime_data.registrar.async_candidate(
        Candidate(device_id, "127.0.0.1", port, claimed=False, txt={})
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded.runtime_data.registrar.store.data.refused[device_id].code == "rollback"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"suspicious_{device_id}") is not None
    assert len(loaded.runtime_data.registrar.store.data.devices[device_id].chain) == 2


async def test_fork_of_a_known_device_raises_a_repair_issue(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """The known device shows up with a different second link: a fork, refused, and the owner is told."""
    device = await _onboard_with_rotation(hass, loaded, devices, home)
    assert device.device is not None
    first = device.device.chain
    invoice_only = verify_chain(first.links[:1], roots=None, now=NOW)
    other = issue_link(
        signer=home,
        head=invoice_only.head,
        owners=[fixed_key("someone").public_key(), home.public_key()],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS + 5,
    )
    forked = [first.links[0], other]
    port = await fake_device(lambda hello: bundle(hello, device.spec.key, device.spec, forked))
    device_id = device.spec.device_id.hex()
    loaded.runtime_data.registrar.async_candidate(
        Candidate(device_id, "127.0.0.1", port, claimed=False, txt={})
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded.runtime_data.registrar.store.data.refused[device_id].code == "fork"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"suspicious_{device_id}") is not None


async def test_diagnostics_hold_no_secret(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Diagnostics show fingerprints, devices and refusals, never the private key or device addresses."""
    device = await devices([home])
    loaded.runtime_data.registrar.async_candidate(candidate_for(device))
    await onboarded(hass, device)
    diagnostics = await async_get_config_entry_diagnostics(hass, loaded)
    text = repr(diagnostics)
    assert "PRIVATE KEY" not in text
    assert "127.0.0.1" not in text
    assert diagnostics["devices"][0]["chain_length"] == 1
    assert diagnostics["trusted_manufacturers"][0]["name"] == "Acme"


async def test_unload_stops_running_attempts(
    hass: HomeAssistant, loaded: MockConfigEntry, silent_device: int
) -> None:
    """Unloading cancels a handshake in flight and keeps it pending for the next start."""
    registrar = loaded.runtime_data.registrar
    registrar.async_candidate(Candidate("cd" * 32, "127.0.0.1", silent_device, claimed=False, txt={}))
    assert "cd" * 32 in registrar.store.data.pending  # recorded before the first request
    assert await hass.config_entries.async_unload(loaded.entry_id)
    assert loaded.state is ConfigEntryState.NOT_LOADED
    assert "cd" * 32 in registrar.store.data.pending

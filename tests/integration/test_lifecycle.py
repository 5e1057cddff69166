"""The registrar over time: slow devices, many devices, restarts, moves, removals, forks and rollbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import socket
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd import async_remove_config_entry_device
from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import issue_link, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PrivateKey, format_fingerprint
from custom_components.autoadd.protocol.transport import PATH_HELLO
from custom_components.autoadd.registrar.core import MAX_CONCURRENT, Candidate
from custom_components.autoadd.registrar.record import Address, Phase
from custom_components.autoadd.storage import REGISTRAR_STORE
from tests.factory import NOW, NOW_TS, fixed_key
from tests.reference_device import RunningDevice

from .conftest import HelloHandler, bundle, candidate_for, registered, registrar_of, settle, stored


@dataclass
class SilentDevice:
    """Something that accepts connections and never answers a hello."""

    port: int
    hellos: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def hello_arrives(self) -> None:
        """Wait for the next hello (and forget it arrived)."""
        await asyncio.wait_for(self.arrived.wait(), 5)
        self.arrived.clear()


@pytest.fixture
async def silent_device(socket_enabled: None) -> AsyncIterator[SilentDevice]:
    """A device that accepts the connection and never answers."""
    release = asyncio.Event()
    silent = SilentDevice(0)

    async def hello(request: web.Request) -> web.Response:
        silent.hellos.append(await request.read())
        silent.arrived.set()
        await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post(PATH_HELLO, hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    silent.port = int(runner.addresses[0][1])
    yield silent
    release.set()
    await runner.cleanup()


def v1_store_pending(trusted: list[dict[str, str]], device_id: str, port: int) -> dict[str, Any]:
    """A registrar store as 0.1.0 wrote it while a handshake with the device was under way."""
    return stored(
        REGISTRAR_STORE,
        {"roots": trusted, "pending": {device_id: {"host": "127.0.0.1", "port": port}}},
    )


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def onboarded(hass: HomeAssistant, device: RunningDevice) -> dr.DeviceEntry | None:
    await settle(hass)
    return registered(hass, device.spec.device_id.hex())


async def test_silent_device_times_out_and_others_go_on(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    silent_device: SilentDevice,
) -> None:
    """A device that never answers times out and is retried later; another device is onboarded meanwhile.
    Nothing is stored about the silent one: it proved nothing."""
    registrar = registrar_of(loaded)
    good: RunningDevice = await devices([home])
    with patch("custom_components.autoadd.runtime.REQUEST_TIMEOUT", 0.2):
        registrar.announce(Candidate("ab" * 32, "127.0.0.1", silent_device.port, claimed=False, txt={}))
        registrar.announce(candidate_for(good))
        assert await onboarded(hass, good) is not None
    assert len(silent_device.hellos) == 1
    assert "ab" * 32 in registrar.retries
    assert registrar.failures["ab" * 32] == 1
    assert "ab" * 32 not in registrar.state.devices


async def test_fifty_devices_at_once(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Fifty devices announced together are all onboarded, never more than the bound at a time."""
    registrar = registrar_of(loaded)
    started = [await devices([home], serial=f"SN{n:04d}") for n in range(50)]
    for device in started:
        registrar.announce(candidate_for(device))
    await settle(hass)
    assert len(dr.async_entries_for_config_entry(dr.async_get(hass), loaded.entry_id)) == 50
    assert all(device.device is not None and device.device.claimed for device in started)
    assert all(record.phase is Phase.ONBOARDED for record in registrar.state.devices.values())
    assert 1 < registrar.peak_handshakes <= MAX_CONCURRENT


async def test_restart_in_the_middle_of_onboarding(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    trusted: list[dict[str, str]],
) -> None:
    """A device that was mid-handshake when Home Assistant (0.1.0) stopped is onboarded after the restart."""
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    hass_storage_with_home[REGISTRAR_STORE] = v1_store_pending(trusted, device_id, device.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert await onboarded(hass, device) is not None
    record = registrar_of(entry).state.devices[device_id]
    assert record.phase is Phase.ONBOARDED
    assert record.address == Address("127.0.0.1", device.port)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_device_address_is_followed_only_on_its_proof(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An announcement of a known device at another address is only a hint; the device proving itself
    there moves it, with no new onboarding."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    registrar.announce(candidate_for(device))
    assert await onboarded(hass, device) is not None
    device_id = device.spec.device_id.hex()
    old = Address("127.0.0.1", device.port)

    nobody = free_port()
    registrar.announce(Candidate(device_id, "127.0.0.1", nobody, claimed=True, txt={}))
    await settle(hass)
    record = registrar.state.devices[device_id]
    assert record.address == old
    assert record.hint == Address("127.0.0.1", nobody)
    assert record.refusal is None  # nobody answered there: nothing to hold against the device

    await device.stop()
    await device.start()  # another port
    assert device.port != old.port
    registrar.announce(candidate_for(device, claimed=True))
    await settle(hass)
    assert record.address == Address("127.0.0.1", device.port)
    assert record.history[-1]["event"] == "moved"
    assert [event["event"] for event in record.history].count("onboarded") == 1
    assert record.phase is Phase.ONBOARDED


async def test_removed_device_stays_removed_until_reset(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The owner removes a device: it is not added back while claimed, but is after a factory reset."""
    registrar = registrar_of(loaded)
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    registrar.announce(candidate_for(device))
    device_entry = await onboarded(hass, device)
    assert device_entry is not None
    assert await async_remove_config_entry_device(hass, loaded, device_entry)
    dr.async_get(hass).async_remove_device(device_entry.id)
    assert registrar.state.devices[device_id].phase is Phase.REMOVED

    registrar.announce(candidate_for(device, claimed=True))
    assert await onboarded(hass, device) is None
    assert registrar.state.devices[device_id].phase is Phase.REMOVED
    assert device.device is not None
    device.device.factory_reset()
    registrar.announce(candidate_for(device, claimed=False))
    assert await onboarded(hass, device) is not None
    record = registrar.state.devices[device_id]
    assert record.phase is Phase.ONBOARDED
    assert [event["event"] for event in record.history] == ["onboarded", "removed", "onboarded"]


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
    registrar_of(loaded).announce(candidate_for(device))
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
    registrar_of(loaded).announce(Candidate(device_id, "127.0.0.1", port, claimed=False, txt={}))
    await settle(hass)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.refusal is not None
    assert record.refusal.code == "rollback"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "suspicious_devices")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert device_id[:16] in issue.translation_placeholders["devices"]
    assert issue.translation_placeholders["count"] == "1"
    assert issue.translation_placeholders["home"] == format_fingerprint(registrar_of(loaded).home.fingerprint)
    assert len(record.chain) == 2  # the known chain is kept
    assert record.address == Address("127.0.0.1", device.port)
    assert registered(hass, device_id) is not None


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
    registrar_of(loaded).announce(Candidate(device_id, "127.0.0.1", port, claimed=False, txt={}))
    await settle(hass)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.refusal is not None
    assert record.refusal.code == "fork"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "suspicious_devices")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert device_id[:16] in issue.translation_placeholders["devices"]
    assert record.chain == list(first.links)


async def test_diagnostics_hold_no_secret(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """Diagnostics show fingerprints, devices and refusals, never a private key (a kept old one neither)
    or device addresses."""
    device: RunningDevice = await devices([home])
    registrar = registrar_of(loaded)
    registrar.announce(candidate_for(device))
    assert await onboarded(hass, device) is not None
    await device.stop()
    await hass.services.async_call(DOMAIN, "rotate_home_key", {"destroy_old_key": False}, blocking=True)
    await settle(hass)
    assert registrar.keys.retired[0].key is not None

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    text = repr(diagnostics)
    assert "PRIVATE KEY" not in text
    assert "127.0.0.1" not in text
    assert diagnostics["home_key"]["fingerprint"] == format_fingerprint(registrar.home.fingerprint)
    assert diagnostics["devices"][0]["chain_length"] == 1
    assert diagnostics["devices"][0]["change"] == "rotate"
    assert diagnostics["trusted_manufacturers"][0]["name"] == "Acme"
    assert diagnostics["retired_home_keys"][0]["private_key_kept"] is True


async def test_unload_stops_running_attempts(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    trusted: list[dict[str, str]],
    silent_device: SilentDevice,
) -> None:
    """Unloading cancels a handshake in flight; the device is tried again at the next start."""
    device_id = "cd" * 32
    hass_storage_with_home[REGISTRAR_STORE] = v1_store_pending(trusted, device_id, silent_device.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await silent_device.hello_arrives()  # in flight, never answered
    registrar = registrar_of(entry)
    assert registrar.active_handshakes == 1

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert registrar.active_handshakes == 0  # cancelled, not waiting for the device
    assert registrar.retries == {}
    assert hass_storage_with_home[REGISTRAR_STORE]["data"]["devices"][device_id]["hint"] == {
        "host": "127.0.0.1",
        "port": silent_device.port,
    }

    assert await hass.config_entries.async_setup(entry.entry_id)
    await silent_device.hello_arrives()
    assert len(silent_device.hellos) == 2
    assert await hass.config_entries.async_unload(entry.entry_id)

"""Fixtures for integration tests: a registrar entry with a known home key, and reference devices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock, PropertyMock, patch

import aiohttp
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd import sensor
from custom_components.autoadd.const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import (
    certificate_public_key,
    certificate_to_der,
    certificate_to_pem,
)
from custom_components.autoadd.protocol.const import ContentType, Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.handshake import read_hello
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, private_key_to_pem
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO
from custom_components.autoadd.registrar.core import Candidate, Registrar
from custom_components.autoadd.storage import HOME_KEY_STORE, REGISTRAR_STORE
from tests.factory import Device, Manufacturer, fixed_key
from tests.reference_device import RunningDevice, make_running_device


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""


@pytest.fixture(autouse=True)
def auto_mock_zeroconf(mock_async_zeroconf: MagicMock) -> Iterator[MagicMock]:
    """Keep HA's zeroconf off the network: tests hand announcements to the registrar's browser."""
    with patch("custom_components.autoadd.discovery.AsyncServiceBrowser") as browser:
        browser.return_value.async_cancel = AsyncMock()
        yield browser


@pytest.fixture(autouse=True)
def allow_loopback_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The devices of these tests listen on 127.0.0.1, which the registrar contacts only when told to
    (AUTOADD_ALLOW_LOOPBACK, as the demo sets it); a test of that rule unsets it."""
    monkeypatch.setenv("AUTOADD_ALLOW_LOOPBACK", "1")


@pytest.fixture(autouse=True)
def onboarding_state_enabled() -> Iterator[None]:
    """The onboarding state sensor is disabled by default (test_onboarding.py checks that); the tests that
    follow a device through it see it enabled, as an owner who turned it on does."""
    enabled = tuple(
        replace(d, entity_registry_enabled_default=True) if d.key == "onboarding_state" else d
        for d in sensor.SENSORS
    )
    with patch.object(sensor, "SENSORS", enabled):
        yield


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Entities the integration leaves disabled are enabled (as Home Assistant's own tests do it)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def home() -> PrivateKey:
    """The home key of the registrar under test."""
    return fixed_key("integration home")


@pytest.fixture
def maker() -> Manufacturer:
    """A manufacturer the registrar trusts."""
    return Manufacturer.create("Acme")


def stored(key: str, data: dict[str, Any]) -> dict[str, Any]:
    """A Store file's content as hass_storage holds it."""
    return {"version": 1, "minor_version": 1, "key": key, "data": data}


@pytest.fixture
def trusted(maker: Manufacturer) -> list[dict[str, str]]:
    """The stored form of the trusted roots."""
    return [
        {
            "name": maker.name,
            "pem": certificate_to_pem(maker.root).decode(),
            "fingerprint": fingerprint(certificate_public_key(maker.root)).hex(),
            "added_on": "2026-06-01T00:00:00+00:00",
        }
    ]


@pytest.fixture
def hass_storage_with_home(
    hass_storage: dict[str, Any], home: PrivateKey, trusted: list[dict[str, str]]
) -> dict[str, Any]:
    """Storage holding the home key and a registrar that trusts `maker`."""
    hass_storage[HOME_KEY_STORE] = stored(
        HOME_KEY_STORE,
        {
            "private_pem": private_key_to_pem(home).decode(),
            "key_type": "ed25519",
            "created_at": "2026-06-01T00:00:00+00:00",
        },
    )
    hass_storage[REGISTRAR_STORE] = stored(REGISTRAR_STORE, {"roots": trusted, "devices": {}})
    return hass_storage


@pytest.fixture
def entry(hass: HomeAssistant) -> MockConfigEntry:
    """The registrar's config entry (not yet set up)."""
    config_entry = MockConfigEntry(
        domain=DOMAIN, title="Home", data={CONF_HOME_NAME: "Home", CONF_KEY_TYPE: "ed25519"}
    )
    config_entry.add_to_hass(hass)
    return config_entry


@pytest.fixture
async def loaded(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The registrar, set up (and unloaded after the test, cancelling its retry timers)."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session (for talking to devices directly)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def devices(
    tmp_path: Path, maker: Manufacturer, http: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Any]]:
    """Start reference devices on 127.0.0.1: `await devices(owners, serial=...)`."""
    started: list[RunningDevice] = []

    async def start(owners: list[PrivateKey], serial: str = "SN0001") -> RunningDevice:
        device = make_running_device(tmp_path / serial, maker, owners, serial, http)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


def candidate_for(device: RunningDevice, *, claimed: bool = False) -> Candidate:
    """What discovery would hand the registrar for this device."""
    return Candidate(
        device.spec.device_id.hex(),
        "127.0.0.1",
        device.port,
        claimed=claimed,
        txt={"v": "1", "id": device.spec.device_id.hex(), "st": "claimed" if claimed else "unclaimed"},
    )


type HelloHandler = Callable[[bytes], bytes]


@pytest.fixture
async def fake_device(socket_enabled: None) -> AsyncIterator[Callable[[HelloHandler], Awaitable[int]]]:
    """A device that answers hellos however the test says; returns its port."""
    runners: list[web.AppRunner] = []

    async def start(answer: HelloHandler) -> int:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(body=answer(await request.read()), content_type=MEDIA_TYPE)

        app = web.Application()
        app.router.add_post(PATH_HELLO, hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


def bundle(hello: bytes, signer: PrivateKey, device: Device, links: list[bytes]) -> bytes:
    """A proof bundle for any links, signed by any key: what a forger's device would send."""
    request = read_hello(hello)
    head = cose.parse(
        links[-1], ContentType.INVOICE if len(links) == 1 else ContentType.LINK, max_size=65536, what="link"
    ).digest
    proof = cose.sign(
        {
            Label.VERSION: 1,
            Label.DEVICE_ID: device.device_id,
            Label.REGISTRAR_NONCE: request.registrar_nonce,
            Label.DEVICE_NONCE: bytes(32),
            Label.CHAIN_HEAD: head,
            Label.CHAIN_LENGTH: len(links),
            Label.REGISTRAR_FINGERPRINT: request.registrar_fingerprint,
        },
        ContentType.PROOF,
        signer,
        kid=device.device_id,
    )
    return dumps({1: proof, 2: [certificate_to_der(device.cert)], 3: links})


def registered(hass: HomeAssistant, device_id: str) -> dr.DeviceEntry | None:
    """The registry's device for an AutoAdd device identifier (the lookup every supported HA allows)."""
    registry = dr.async_get(hass)
    for entry in hass.config_entries.async_entries(DOMAIN):
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            if (DOMAIN, device_id) in device.identifiers:
                return device
    return None


def registrar_of(entry: MockConfigEntry) -> Registrar:
    """The registrar of a loaded entry."""
    registrar: Registrar = entry.runtime_data.registrar
    return registrar


async def switch_home(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    key: PrivateKey,
    trusted: list[dict[str, str]],
) -> MockConfigEntry:
    """Stop this home's registrar and start another home's, with its own key and store.

    Two homes in one test run one after the other: each has its own home key and registrar store, as
    two Home Assistant installations would."""
    assert await hass.config_entries.async_remove(entry.entry_id)
    hass_storage[HOME_KEY_STORE] = stored(
        HOME_KEY_STORE,
        {
            "private_pem": private_key_to_pem(key).decode(),
            "key_type": "ed25519",
            "created_at": "2026-06-01T00:00:00+00:00",
        },
    )
    hass_storage[REGISTRAR_STORE] = stored(REGISTRAR_STORE, {"roots": trusted})
    other = MockConfigEntry(
        domain=DOMAIN, title="Other", data={CONF_HOME_NAME: "Other", CONF_KEY_TYPE: "ed25519"}
    )
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    await hass.async_block_till_done()
    return other


# --- Shared by the issue-9 tests: announcements, the sensor state, and impostors at a device's address ---

from dataclasses import dataclass, field  # noqa: E402
import socket  # noqa: E402

from homeassistant.helpers import entity_registry as er  # noqa: E402
from zeroconf.asyncio import AsyncServiceInfo  # noqa: E402

from custom_components.autoadd.const import SERVICE_TYPE  # noqa: E402


async def settle(hass: HomeAssistant) -> None:
    """Wait until every attempt, save and task the last step started has finished."""
    await hass.async_block_till_done(wait_background_tasks=True)


def service_info(device_id: str, port: int, *, claimed: bool) -> AsyncServiceInfo:
    """The resolved mDNS record of an AutoAdd device on 127.0.0.1 (anyone on the network can send one)."""
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"Lamp-{device_id[:8]}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=port,
        properties={"v": "1", "id": device_id, "st": "claimed" if claimed else "unclaimed"},
    )


def announce(entry: MockConfigEntry, device_id: str, port: int, *, claimed: bool) -> None:
    """Hand an announcement to the entry's mDNS browser, as zeroconf would."""
    entry.runtime_data.browser.async_service_info(service_info(device_id, port, claimed=claimed))


def onboarding_state(hass: HomeAssistant, device_id: str) -> str | None:
    """The state of a member's onboarding_state sensor (None: it has none)."""
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{device_id}_onboarding_state")
    state = hass.states.get(entity_id) if entity_id else None
    return state.state if state else None


@dataclass
class Impostor:
    """Something at a device's address that is not the device: it answers `/info` as the device did and
    `204` to `/links` and `/note`, and `/hello` with `hello` (a replayed proof) or `204`."""

    runner: web.AppRunner
    port: int
    requests: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop answering."""
        await self.runner.cleanup()


@pytest.fixture
async def impostor(socket_enabled: None) -> AsyncIterator[Callable[..., Awaitable[Impostor]]]:
    """Start an impostor on 127.0.0.1: `await impostor(info, port=..., hello=...)`."""
    started: list[Impostor] = []

    async def start(info: bytes, *, port: int = 0, hello: bytes | None = None) -> Impostor:
        requests: list[str] = []

        async def answer(request: web.Request) -> web.Response:
            requests.append(request.path)
            if request.method == "GET":
                return web.Response(body=info, content_type=MEDIA_TYPE)
            if request.path == PATH_HELLO and hello is not None:
                return web.Response(body=hello, content_type=MEDIA_TYPE)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        fake = Impostor(runner, int(runner.addresses[0][1]), requests)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


async def device_announces(
    hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice, *, claimed: bool = False
) -> None:
    """The device announces itself (as discovery hands it over); wait for whatever the registrar starts."""
    registrar_of(entry).announce(candidate_for(device, claimed=claimed))
    await settle(hass)


async def onboard(hass: HomeAssistant, entry: MockConfigEntry, *devices: RunningDevice) -> str:
    """Onboard devices whose invoice names the entry's home; returns the first one's AutoAdd identifier."""
    for device in devices:
        registrar_of(entry).announce(candidate_for(device))
    await settle(hass)
    for device in devices:
        assert registered(hass, device.spec.device_id.hex()) is not None
    return devices[0].spec.device_id.hex()


async def options_step(
    hass: HomeAssistant, entry: MockConfigEntry, step: str, user_input: dict[str, Any]
) -> ConfigFlowResult:
    """Open AutoAdd's options, pick a menu entry and submit its form; a confirmation that follows (a form
    whose only field is the confirm switch) is confirmed."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": step})
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    await settle(hass)
    schema = result.get("data_schema")
    if result["type"] is FlowResultType.FORM and schema is not None and list(schema.schema) == ["confirm"]:
        result = await hass.config_entries.options.async_configure(result["flow_id"], {"confirm": True})
        await settle(hass)
    return result


async def rotate(hass: HomeAssistant, *, destroy_old: bool = False) -> dict[str, Any]:
    """Rotate with the `autoadd.rotate_home_key` action; wait for what it started."""
    response = await hass.services.async_call(
        DOMAIN, "rotate_home_key", {"destroy_old_key": destroy_old}, blocking=True, return_response=True
    )
    await settle(hass)
    assert response is not None
    return dict(response)

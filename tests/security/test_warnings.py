"""What the owner is warned about: only what this home verified. A device's own error words, and anything
before a valid proof, raise no security warning; attacks proven by valid signatures raise one warning for
all devices; one IDevID answering at two addresses is held and asked about; an unexpected failure is a
refusal on record, never an exception that escapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import issue_link
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO, error_body
from custom_components.autoadd.registrar.record import Address
from custom_components.autoadd.registrar.session import Purpose
from tests.factory import NOW_TS
from tests.integration.test_repairs import choose, start_fix
from tests.reference_device import RunningDevice

from .conftest import HelloHandler, announce, bundle, candidate_for, onboard, registrar_of, settle


def issue_ids(hass: HomeAssistant) -> set[str]:
    return {issue_id for (domain, issue_id) in ir.async_get(hass).issues if domain == DOMAIN}


@pytest.fixture
async def says_bad_signature(socket_enabled: None) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """A host that answers every hello with an unsigned `403 bad_signature` and a hostile detail."""
    runners: list[web.AppRunner] = []

    async def start() -> int:
        async def hello(request: web.Request) -> web.Response:
            detail = "[click here](http://evil.example) \u202e# you were hacked"
            return web.Response(status=403, body=error_body("bad_signature", detail), content_type=MEDIA_TYPE)

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


async def test_fifty_unsigned_403s_raise_no_warning(
    hass: HomeAssistant, loaded: MockConfigEntry, says_bad_signature: Callable[[], Awaitable[int]]
) -> None:
    """A device's error body is its claim: remembered as its code, never a warning, never its words."""
    port = await says_bad_signature()
    for index in range(50):
        announce(loaded, f"{index:064x}", port, claimed=False)
    await settle(hass)
    records = registrar_of(loaded).state.devices
    assert {r.refusal.code for r in records.values() if r.refusal} == {"bad_signature"}
    assert all(r.refusal.detail == "" for r in records.values() if r.refusal)  # its words are not kept
    assert issue_ids(hass) == set()


async def _member_with_rotation(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey, serial: str
) -> RunningDevice:
    """A member whose chain is [invoice, rotation]: its invoice alone is a (validly signed) rollback."""
    device: RunningDevice = await devices([home], serial=serial)
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
    await onboard(hass, loaded, device)
    return device


async def test_proven_rollbacks_raise_one_warning_for_all_devices(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """Two members shown with their invoice only (signed by their own IDevID keys): one warning names
    both; a member that proves its real chain again is taken off it, and the warning goes with the last."""
    first = await _member_with_rotation(hass, loaded, devices, home, "SN0201")
    second = await _member_with_rotation(hass, loaded, devices, home, "SN0202")

    def invoice_only(device: RunningDevice) -> HelloHandler:
        return lambda hello: bundle(hello, device.spec.key, device.spec, device.spec.links[:1])

    for device in (first, second):
        port = await fake_device(invoice_only(device))
        announce(loaded, device.spec.device_id.hex(), port, claimed=True)
    await settle(hass)
    assert issue_ids(hass) == {"suspicious_devices"}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "suspicious_devices")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["count"] == "2"
    for device in (first, second):
        record = registrar_of(loaded).state.devices[device.spec.device_id.hex()]
        assert len(record.chain) == 2  # the known chain is kept
        assert record.address == Address("127.0.0.1", device.port)

    registrar = registrar_of(loaded)
    for device in (first, second):
        await registrar.attempt(device.spec.device_id.hex(), Address("127.0.0.1", device.port), Purpose.CHECK)
        await settle(hass)
    assert issue_ids(hass) == set()


async def test_one_idevid_at_two_addresses_is_held_and_asked_about(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """A clone of a member's IDevID key proves itself at another address while the member still answers
    at its own: the address is held, the owner is asked; the clone's proofs change nothing."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    record = registrar_of(loaded).state.devices[device_id]
    chain = list(record.chain)
    clone_port = await fake_device(
        lambda hello: bundle(hello, device.spec.key, device.spec, device.spec.links)
    )
    for _ in range(3):
        announce(loaded, device_id, clone_port, claimed=True)
        await settle(hass)
    assert record.address == Address("127.0.0.1", device.port)
    assert record.clone == Address("127.0.0.1", clone_port)
    assert record.chain == chain
    assert issue_ids(hass) == {f"clone_{device_id}"}
    assert [e["event"] for e in record.history].count("clone_suspected") == 1


async def test_a_hold_ends_once_the_kept_address_stops_proving_the_device(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """No one can keep a device held at an address it no longer answers at (a relay that stopped): the
    next proof from elsewhere finds nothing at the kept address, the hold ends and the device is followed."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    other = await fake_device(lambda hello: bundle(hello, device.spec.key, device.spec, device.spec.links))
    announce(loaded, device_id, other, claimed=True)
    await settle(hass)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.clone == Address("127.0.0.1", other)

    await device.stop()  # nothing proves it at the kept address any more
    announce(loaded, device_id, other, claimed=True)
    await settle(hass)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.clone is None
    assert record.address == Address("127.0.0.1", other)
    assert issue_ids(hass) == set()
    assert [e["event"] for e in record.history][-3:] == ["clone_suspected", "clone_gone", "moved"]


@pytest.mark.parametrize(("step", "followed"), [("keep", "device"), ("follow", "clone")])
async def test_the_owner_decides_where_a_cloned_device_is_followed(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
    hass_client: ClientSessionGenerator,
    step: str,
    followed: str,
) -> None:
    """The repair names both addresses; keeping or following ends the hold, and the issue goes."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    clone_port = await fake_device(
        lambda hello: bundle(hello, device.spec.key, device.spec, device.spec.links)
    )
    announce(loaded, device_id, clone_port, claimed=True)
    await settle(hass)

    status, result = await start_fix(hass_client, f"clone_{device_id}")
    assert status == HTTPStatus.OK
    assert result["menu_options"] == ["keep", "follow"]
    assert result["description_placeholders"]["kept"] == f"127.0.0.1 port {device.port}"
    assert result["description_placeholders"]["other"] == f"127.0.0.1 port {clone_port}"
    done = await choose(hass_client, result["flow_id"], step)
    assert done["type"] == "create_entry"
    await settle(hass)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.address == Address("127.0.0.1", device.port if followed == "device" else clone_port)
    assert record.clone is None
    assert f"clone_{device_id}" not in issue_ids(hass)


async def test_a_device_that_moved_is_followed_without_a_warning(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The same IDevID at a new address, and nothing at the old one any more: it moved."""
    device: RunningDevice = await devices([home])
    device_id = await onboard(hass, loaded, device)
    await device.stop()
    await device.start()
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.address == Address("127.0.0.1", device.port)
    assert record.clone is None
    assert issue_ids(hass) == set()


async def test_an_unexpected_failure_is_a_refusal_with_back_off(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever escapes the protocol core while reading a device's answer ends as a `malformed` refusal
    with a back-off, nothing stored about the device but that, and no traceback in the log."""
    device: RunningDevice = await devices([home])
    with patch(
        "custom_components.autoadd.protocol.handshake.RegistrarHandshake.read_proof",
        side_effect=ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
    ):
        registrar_of(loaded).announce(candidate_for(device))
        await settle(hass)
    record = registrar_of(loaded).state.devices[device.spec.device_id.hex()]
    assert record.refusal is not None
    assert record.refusal.code == "malformed"
    assert record.refusal.retry_after > record.refusal.at
    assert record.chain == []
    assert record.address is None
    assert "Traceback" not in "".join(r.message for r in caplog.records if r.levelname != "DEBUG")
    assert not any(r.exc_info for r in caplog.records if r.levelname != "DEBUG")
    assert issue_ids(hass) == set()

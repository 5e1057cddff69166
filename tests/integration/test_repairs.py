"""The approval repair: the owner accepts or rejects a device another owner handed to this home.

Home A hands a device over and pushes the link; home B (the same Home Assistant, with another home key and
store) is then asked through a fixable repair issue, driven through the repairs HTTP API as the frontend
does.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.chain import encode_chain
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.handover import hand_over
from custom_components.autoadd.registrar.ownership import accept_transfer, read_transfer
from custom_components.autoadd.registrar.record import Phase
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice

from .conftest import device_announces, registered, registrar_of, switch_home

FIX_PATH = "/api/repairs/issues/fix"


@pytest.fixture
def buyer() -> PrivateKey:
    """The home the device is handed to."""
    return fixed_key("buyer home")


@pytest.fixture
async def waiting(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    buyer: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> tuple[MockConfigEntry, RunningDevice]:
    """Home A onboards a device and pushes a hand-over to `buyer`; home B runs and the device announces
    itself there: it waits for B's approval. Returns B's entry and the device."""
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device)
    result = await hand_over(registrar_of(loaded), device.spec.device_id.hex(), buyer.public_key())
    assert result.delivered

    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    await hass.async_block_till_done()

    await device_announces(hass, home_b, device)
    assert registrar_of(home_b).state.devices[device.spec.device_id.hex()].phase is Phase.AWAITING_APPROVAL
    return home_b, device


async def start_fix(hass_client: ClientSessionGenerator, issue_id: str) -> tuple[HTTPStatus, dict[str, Any]]:
    """Start the issue's fix flow through the repairs API."""
    client = await hass_client()
    response = await client.post(FIX_PATH, json={"handler": DOMAIN, "issue_id": issue_id})
    body: dict[str, Any] = await response.json()
    return HTTPStatus(response.status), body


async def choose(hass_client: ClientSessionGenerator, flow_id: str, step: str) -> dict[str, Any]:
    """Pick a menu entry of a running fix flow."""
    client = await hass_client()
    response = await client.post(f"{FIX_PATH}/{flow_id}", json={"next_step_id": step})
    assert response.status == HTTPStatus.OK
    body: dict[str, Any] = await response.json()
    return body


async def test_approval_issue_shows_the_device_and_the_previous_owner(
    hass: HomeAssistant,
    waiting: tuple[MockConfigEntry, RunningDevice],
    home: PrivateKey,
    maker: Manufacturer,
    hass_client: ClientSessionGenerator,
) -> None:
    """The issue is fixable; its fix flow is a menu naming the device, its manufacturer's root and who
    handed it over."""
    _, device = waiting
    device_id = device.spec.device_id.hex()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}")
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "approve_device"
    assert issue.data == {"device_id": device_id}

    status, result = await start_fix(hass_client, f"approve_{device_id}")

    assert status == HTTPStatus.OK
    assert result["type"] == "menu"
    assert result["step_id"] == "init"
    assert result["menu_options"] == ["accept", "reject"]
    shown = result["description_placeholders"]
    assert shown == {
        "manufacturer": "Acme",
        "model": "Lamp 1",
        "serial_number": "SN0001",
        "device": device_id[:16],
        "previous_owner": format_fingerprint(fingerprint(home.public_key())),
        "manufacturer_root": format_fingerprint(fingerprint(certificate_public_key(maker.root))),
        "address": f"127.0.0.1 port {device.port}",
        "when": shown["when"],
    }
    assert shown["when"].endswith(" UTC")
    # The issue's title names the device, so two approvals are told apart in the list.
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["model"] == "Lamp 1"
    assert issue.translation_placeholders["serial_number"] == "SN0001"


async def test_accept_onboards_the_device(
    hass: HomeAssistant,
    waiting: tuple[MockConfigEntry, RunningDevice],
    buyer: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """Accepting adds the device at once and resolves the issue."""
    home_b, device = waiting
    device_id = device.spec.device_id.hex()
    _, result = await start_fix(hass_client, f"approve_{device_id}")

    result = await choose(hass_client, result["flow_id"], "accept")
    assert result["type"] == "create_entry"
    await hass.async_block_till_done(wait_background_tasks=True)

    assert registered(hass, device_id) is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    record = registrar_of(home_b).state.devices[device_id]
    assert record.phase is Phase.ONBOARDED
    assert record.approval is None
    assert record.owners == [fingerprint(buyer.public_key()).hex()]
    assert device.device is not None
    assert device.device.state.owner == fingerprint(buyer.public_key())
    events = [event["event"] for event in record.history]
    assert events == ["approval_requested", "approved", "accepted"]


async def test_reject_keeps_the_device_out(
    hass: HomeAssistant,
    waiting: tuple[MockConfigEntry, RunningDevice],
    hass_client: ClientSessionGenerator,
) -> None:
    """Rejecting adds nothing, remembers the rejected chain and resolves the issue."""
    home_b, device = waiting
    device_id = device.spec.device_id.hex()
    approval = registrar_of(home_b).state.devices[device_id].approval
    assert approval is not None
    head = approval.head
    _, result = await start_fix(hass_client, f"approve_{device_id}")

    result = await choose(hass_client, result["flow_id"], "reject")
    assert result["type"] == "create_entry"
    await hass.async_block_till_done(wait_background_tasks=True)

    assert registered(hass, device_id) is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    record = registrar_of(home_b).state.devices[device_id]
    assert record.phase is Phase.REJECTED
    assert record.approval is not None
    assert record.approval.head == head
    assert device.device is not None
    assert not device.device.claimed


@pytest.mark.parametrize("step", ["accept", "reject"])
async def test_decided_meanwhile_in_another_fix_flow(
    hass: HomeAssistant,
    waiting: tuple[MockConfigEntry, RunningDevice],
    hass_client: ClientSessionGenerator,
    step: str,
) -> None:
    """Two fix flows open (two browser tabs): once one approved the device, the other aborts."""
    _, device = waiting
    device_id = device.spec.device_id.hex()
    _, first = await start_fix(hass_client, f"approve_{device_id}")
    _, second = await start_fix(hass_client, f"approve_{device_id}")

    assert (await choose(hass_client, first["flow_id"], "accept"))["type"] == "create_entry"
    await hass.async_block_till_done(wait_background_tasks=True)
    result = await choose(hass_client, second["flow_id"], step)

    assert result["type"] == "abort"
    assert result["reason"] == "no_longer_waiting"
    assert registered(hass, device_id) is not None


async def test_issue_of_a_device_no_longer_waiting(
    hass: HomeAssistant,
    waiting: tuple[MockConfigEntry, RunningDevice],
    hass_client: ClientSessionGenerator,
) -> None:
    """An issue left over for a device that no longer waits (its record gone) aborts with a reason."""
    home_b, device = waiting
    device_id = device.spec.device_id.hex()
    del registrar_of(home_b).state.devices[device_id]

    status, result = await start_fix(hass_client, f"approve_{device_id}")

    assert status == HTTPStatus.OK
    assert result["type"] == "abort"
    assert result["reason"] == "no_longer_waiting"
    assert registered(hass, device_id) is None


async def test_accepting_the_transfer_file_resolves_the_issue(
    hass: HomeAssistant,
    waiting: tuple[MockConfigEntry, RunningDevice],
    buyer: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """The owner answers the question another way, by accepting the transfer file: the device is added
    and the issue asking about it goes away."""
    home_b, device = waiting
    device_id = device.spec.device_id.hex()
    assert device.device is not None
    transfer = read_transfer(registrar_of(home_b), encode_chain(device.device.chain.links))

    accept_transfer(registrar_of(home_b), transfer)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert registered(hass, device_id) is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    status, _ = await start_fix(hass_client, f"approve_{device_id}")
    assert status == HTTPStatus.BAD_REQUEST  # no issue, so nothing to fix

"""Unassigned stock (§14.9) in Home Assistant: a device whose invoice names no owner is asked about in
Repairs; its claim code, typed there or in Configure, claims it over CPace and adds it. Reference devices
over real HTTP on 127.0.0.1; flows through the repairs API and the options flow, as the frontend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from autoadd_device.claims import write_claim_code
from autoadd_device.files import write_root
from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.claim import ClaimRun
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code
from custom_components.autoadd.protocol.claim_link import issue_claim_link
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, public_key_to_bytes
from custom_components.autoadd.registrar.ownership import block
from custom_components.autoadd.registrar.record import Phase
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice, make_running_device

from .conftest import device_announces, options_step, registered, registrar_of, settle
from .offering import repairs
from .test_repairs import FIX_PATH, choose, start_fix

__all__ = ["repairs"]  # a fixture, used by name

SECRET = b"\x11\x22\x33\x44\x55\x66\x77\x88"


NEIGHBOUR = fixed_key("neighbour home")


async def claim_for(device: RunningDevice, bound_to: PrivateKey, owners: list[Any]) -> None:
    """Someone else who holds the code claims the device: the run bound to `bound_to`'s key."""
    run = ClaimRun(
        ClaimCode(device.spec.device_id[:3], SECRET),
        device_id=device.spec.device_id,
        home=bound_to.public_key(),
        owners=owners,
    )
    await device.client.claim_finish(run.finish(await device.client.claim_start(run.start)))


def code_of(device: RunningDevice, secret: bytes = SECRET) -> str:
    return format_claim_code(ClaimCode(device.spec.device_id[:3], secret))


@pytest.fixture
async def stock(
    tmp_path: Path, maker: Manufacturer, http: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Any]]:
    """Start unassigned devices of the trusted manufacturer, each with its claim code file."""
    started: list[RunningDevice] = []

    async def start(serial: str = "UN0001") -> RunningDevice:
        device = make_running_device(tmp_path / serial, maker, [], serial, http)
        write_claim_code(device.folder, code_of(device))
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


def claim_issue(hass: HomeAssistant, device: RunningDevice) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"claim_{device.spec.device_id.hex()}")


async def submit(hass_client: ClientSessionGenerator, flow_id: str, code: str) -> dict[str, Any]:
    client = await hass_client()
    response = await client.post(f"{FIX_PATH}/{flow_id}", json={"claim_code": code})
    assert response.status == HTTPStatus.OK
    body: dict[str, Any] = await response.json()
    return body


def owners_of(device: RunningDevice) -> tuple[bytes, ...]:
    assert device.device is not None
    return device.device.chain.head.owner_fingerprints


async def test_unassigned_device_is_asked_about_and_its_code_adds_it(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    stock: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    device = await stock()
    await device_announces(hass, repairs, device)
    device_id = device.spec.device_id.hex()
    record = registrar_of(repairs).state.devices[device_id]
    assert record.refusal is not None
    assert record.refusal.code == "unassigned"
    assert registered(hass, device_id) is None
    issue = claim_issue(hass, device)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "claim_device"
    assert issue.translation_placeholders == {
        "manufacturer": "Acme",
        "model": "Lamp 1",
        "serial_number": "UN0001",
        "device": device_id[:16],
    }

    status, result = await start_fix(hass_client, f"claim_{device_id}")
    assert status == HTTPStatus.OK
    assert result["type"] == "form"
    # A wrong code: the device refuses it, the form says so, nothing changed on either side.
    result = await submit(hass_client, result["flow_id"], code_of(device, bytes(8)))
    assert result["errors"] == {"base": "wrong_claim_code"}
    assert owners_of(device) == ()
    assert registered(hass, device_id) is None
    # A typo never reaches the device.
    result = await submit(hass_client, result["flow_id"], code_of(device)[:-1] + "Q")
    assert result["errors"] == {"base": "invalid_claim_code"}

    result = await submit(hass_client, result["flow_id"], code_of(device).lower())
    assert result["type"] == "create_entry"
    await settle(hass)
    assert owners_of(device) == (fingerprint(home.public_key()),)
    assert registered(hass, device_id) is not None
    assert claim_issue(hass, device) is None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())  # onboarded: a note was taken


async def test_a_code_alone_in_configure(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], home: PrivateKey
) -> None:
    first, second = await stock("UN0001"), await stock("UN0002")
    for device in (first, second):
        await device_announces(hass, repairs, device)

    result = await options_step(hass, repairs, "claim_device", {"claim_code": "AACC1-ABCDE"})
    assert result["errors"] == {"base": "invalid_claim_code"}
    other = ClaimCode(b"\xff\xff\xff", SECRET)
    result = await options_step(hass, repairs, "claim_device", {"claim_code": format_claim_code(other)})
    assert result["errors"] == {"base": "no_device_for_code"}

    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(second)})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "claimed"
    assert owners_of(second) == (fingerprint(home.public_key()),)
    assert owners_of(first) == ()  # the hint picked the device: the other spent no guess
    assert registered(hass, second.spec.device_id.hex()) is not None


async def test_claimed_by_someone_else_first(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """The code in two hands: the first claim wins; the second home is told, nothing changes."""
    device = await stock()
    await device_announces(hass, repairs, device)
    await claim_for(device, NEIGHBOUR, [NEIGHBOUR.public_key()])

    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(device)})
    assert result["errors"] == {"base": "already_claimed"}
    assert owners_of(device) == (fingerprint(NEIGHBOUR.public_key()),)
    assert registered(hass, device.spec.device_id.hex()) is None


async def test_claimed_by_another_home_naming_this_one_is_asked_about(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], home: PrivateKey
) -> None:
    """Someone with the code claims the device for their home and names this home too: the device
    names its claimer first, so this home is asked, as for a hand-over, and adds nothing by itself."""
    device = await stock()
    await claim_for(device, NEIGHBOUR, [NEIGHBOUR.public_key(), home.public_key()])
    await device_announces(hass, repairs, device)
    device_id = device.spec.device_id.hex()
    assert registered(hass, device_id) is None
    record = registrar_of(repairs).state.devices[device_id]
    assert record.approval is not None
    assert record.approval.previous_owner == fingerprint(NEIGHBOUR.public_key()).hex()
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is not None


async def test_a_code_for_a_device_another_home_claimed_naming_this_one_says_so(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], home: PrivateKey
) -> None:
    """The owner types the code after the other home claimed it: told so, never "claimed"."""
    device = await stock()
    await device_announces(hass, repairs, device)  # waiting for its code
    await claim_for(device, NEIGHBOUR, [NEIGHBOUR.public_key(), home.public_key()])
    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(device)})
    assert result["errors"] == {"base": "claimed_elsewhere"}
    device_id = device.spec.device_id.hex()
    assert registered(hass, device_id) is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is not None


async def test_two_devices_matching_one_code_are_not_guessed_between(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], home: PrivateKey
) -> None:
    """A device id can be ground to another's hint: a code alone that matches two waiting devices is
    tried on neither; the owner picks the one in front of them, and only that one is tried."""
    first, second = await stock("UN0001"), await stock("UN0002")
    for device in (first, second):
        await device_announces(hass, repairs, device)
    registrar = registrar_of(repairs)
    twin = registrar.state.devices.pop(second.spec.device_id.hex())
    fake_id = first.spec.device_id[:3].hex() + second.spec.device_id.hex()[6:]
    twin.device_id = fake_id
    registrar.state.devices[fake_id] = twin
    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(first)})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "claim_device_pick"
    assert owners_of(first) == ()  # nothing was tried yet
    picked = await hass.config_entries.options.async_configure(
        result["flow_id"], {"device": first.spec.device_id.hex()}
    )
    await settle(hass)
    assert picked["type"] is FlowResultType.ABORT
    assert picked["reason"] == "claimed"
    assert owners_of(first) == (fingerprint(home.public_key()),)


async def test_a_blocked_device_is_not_claimed(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any]
) -> None:
    device = await stock()
    await device_announces(hass, repairs, device)
    device_id = device.spec.device_id.hex()
    block(registrar_of(repairs), device_id, "the owner blocked it")
    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(device)})
    assert result["errors"] == {"base": "no_device_for_code"}
    assert owners_of(device) == ()


async def test_an_unreachable_device_changes_nothing(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any]
) -> None:
    device = await stock()
    await device_announces(hass, repairs, device)
    await device.stop()
    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(device)})
    assert result["errors"] == {"base": "claim_unreachable"}
    assert claim_issue(hass, device) is not None
    await settle(hass)


async def test_unassigned_from_a_manufacturer_not_trusted_yet(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """The code comes first (it names no home, so its root is not asked about yet); once the device
    names this home, its manufacturer is asked about as for any device, and trusting it adds the device."""
    stranger = Manufacturer.create("Initech")
    device = make_running_device(tmp_path / "IN0009", stranger, [], "IN0009", http)
    write_claim_code(device.folder, code_of(device))
    write_root(device.folder, stranger.root)
    await device.start()
    try:
        await device_announces(hass, repairs, device)
        device_id = device.spec.device_id.hex()
        assert registrar_of(repairs).state.devices[device_id].refusal is not None
        assert claim_issue(hass, device) is None  # anyone can make these: no question by themselves
        assert registrar_of(repairs).state.waiting_roots == {}

        result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(device)})
        assert result["reason"] == "claimed_not_added"
        assert owners_of(device) == (fingerprint(home.public_key()),)
        assert registered(hass, device_id) is None  # not before the owner trusts its manufacturer
        root = fingerprint(certificate_public_key(stranger.root)).hex()
        assert list(registrar_of(repairs).state.waiting_roots) == [root]

        _, started = await start_fix(hass_client, f"manufacturer_{root}")
        decided = await choose(hass_client, started["flow_id"], "approve")
        assert decided["type"] == "create_entry"
        await settle(hass)
        assert registered(hass, device_id) is not None
    finally:
        await device.stop()


async def test_a_device_that_names_this_home_by_itself_is_asked_about(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], home: PrivateKey
) -> None:
    """Home keys are public and a claim link is signed by the device alone: a device (an extracted
    IDevID key, a maker's own firmware) can sign one naming this home first without any code run. Only
    the claim this home ran and verified is its own entry; this one is asked about, and a code typed for
    it is not taken as "already this home's"."""
    device = await stock()
    assert device.device is not None
    link = issue_claim_link(
        idevid_key=device.spec.key,
        idevid_certificate=device.spec.cert,
        head=device.device.chain.head,
        owners=[public_key_to_bytes(home.public_key())],
        issued_at=1,
    )
    device.device.add_links([link])
    await device_announces(hass, repairs, device)
    device_id = device.spec.device_id.hex()
    record = registrar_of(repairs).state.devices[device_id]
    assert registered(hass, device_id) is None
    assert record.phase is Phase.AWAITING_APPROVAL
    assert record.approval is not None
    assert record.approval.previous_owner == device_id  # the claim link's signer: the device itself
    result = await options_step(hass, repairs, "claim_device", {"claim_code": code_of(device)})
    assert result["errors"] == {"base": "no_device_for_code"}  # it waits for approval, not for a code


async def test_a_run_bound_to_this_homes_key_by_someone_else_is_asked_about(
    hass: HomeAssistant, repairs: MockConfigEntry, stock: Callable[..., Any], home: PrivateKey
) -> None:
    """The device checks that the home the run was bound to comes first, but which home that is, is the
    runner's word: a neighbour with the code binds it to this home's public key and names itself after.
    This home never made that run, so it asks (the neighbour would stay a co-owner)."""
    device = await stock()
    await claim_for(device, home, [home.public_key(), NEIGHBOUR.public_key()])
    await device_announces(hass, repairs, device)
    device_id = device.spec.device_id.hex()
    assert registered(hass, device_id) is None
    record = registrar_of(repairs).state.devices[device_id]
    assert record.phase is Phase.AWAITING_APPROVAL

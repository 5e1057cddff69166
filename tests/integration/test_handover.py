"""Handing a device from home A to home B: pushed or by transfer file, approvals, cancel, co-owners.

Home A and home B are two registrars run one after the other in the same test: each has its own home key
and its own store, as two Home Assistant installations would.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import decode_chain
from custom_components.autoadd.protocol.errors import NotOwnerError
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.handover import cancel_hand_over, hand_over, transfer_file
from custom_components.autoadd.registrar.ownership import accept_transfer, approve, read_transfer, reject
from custom_components.autoadd.registrar.ports import StepError
from custom_components.autoadd.registrar.record import ChangeKind, Phase
from tests.factory import fixed_key
from tests.reference_device import RunningDevice, device_refuses

from .conftest import device_announces, registered, registrar_of, switch_home


async def test_hand_over_pushed_then_approved_by_the_buyer(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pushes the hand-over; the device leaves A (which, trying it again, refuses it without a warning);
    B is asked, approves, and the device refuses A."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()

    result = await hand_over(registrar_of(loaded), device_id, buyer.public_key())
    assert result.delivered  # pushed, then a fresh proof showed the device holds the hand-over link
    assert registered(hass, device_id) is None
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.HANDED_OVER  # kept with its chain, no longer a member
    assert [event["event"] for event in record.history] == ["onboarded", "handover_signed", "handed_over"]
    assert device.device is not None
    assert not device.device.claimed
    assert device.device.chain.links == tuple(decode_chain(result.transfer))

    caplog.clear()
    await device_announces(hass, loaded, device, claimed=False)  # A tries it: it may have come back
    assert record.refusal is not None
    assert record.refusal.code == "not_owner"
    assert record.phase is Phase.HANDED_OVER
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # expected: no warning

    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    await device_announces(hass, home_b, device, claimed=False)
    assert registered(hass, device_id) is None  # not silently: the owner is asked
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}")
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders is not None
    shown = format_fingerprint(fingerprint(home.public_key()))
    assert issue.translation_placeholders["previous_owner"] == shown

    approve(registrar_of(home_b), device_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registered(hass, device_id) is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    assert device.device.state.owner == fingerprint(buyer.public_key())
    assert await device_refuses(device, home) == "not_owner"


async def test_rejected_hand_over_is_not_asked_again(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """B rejects a device handed to it: it is not added and not asked about again for the same chain."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await hand_over(registrar_of(loaded), device_id, buyer.public_key())

    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    await device_announces(hass, home_b, device, claimed=False)
    reject(registrar_of(home_b), device_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    await device_announces(hass, home_b, device, claimed=False)
    registrar_of(home_b).try_now(device_id)  # whatever its back-off
    await hass.async_block_till_done(wait_background_tasks=True)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    assert registered(hass, device_id) is None
    record = registrar_of(home_b).state.devices[device_id]
    assert record.phase is Phase.REJECTED
    assert record.refusal is not None
    assert record.refusal.code == "not_owner"
    assert device.device is not None
    assert not device.device.claimed


async def test_hand_over_by_transfer_file(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """The device is offline when A signs: B accepts the transfer file and delivers the link itself."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await device.stop()

    result = await hand_over(registrar_of(loaded), device_id, buyer.public_key())
    assert not result.delivered
    assert transfer_file(registrar_of(loaded), device_id) == result.transfer
    assert registered(hass, device_id) is not None  # stays until the device takes it or A says so

    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    transfer = read_transfer(registrar_of(home_b), result.transfer)
    assert transfer.device_id == device_id
    assert transfer.previous_owner == fingerprint(home.public_key())
    accept_transfer(registrar_of(home_b), transfer)

    await device.start(device.port)
    await device_announces(hass, home_b, device, claimed=True)
    assert registered(hass, device_id) is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(buyer.public_key())
    assert await device_refuses(device, home) == "not_owner"
    history = [event["event"] for event in registrar_of(home_b).state.devices[device_id].history]
    assert history == ["transfer_accepted", "accepted"]


async def test_transfer_file_for_another_home_is_refused(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A transfer file that hands the device to someone else cannot be accepted here."""
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    await device.stop()
    result = await hand_over(registrar_of(loaded), device.spec.device_id.hex(), fixed_key("x").public_key())
    with pytest.raises(NotOwnerError):
        read_transfer(registrar_of(loaded), result.transfer)


async def test_cancelled_hand_over_makes_the_transfer_file_useless(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """A cancels before the device took the link: the buyer's transfer file no longer works."""
    buyer = fixed_key("buyer home")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await device.stop()
    result = await hand_over(registrar_of(loaded), device_id, buyer.public_key())
    await device.start(device.port)

    assert await cancel_hand_over(registrar_of(loaded), device_id)  # the device's receipt confirmed it
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert len(record.chain) == 2
    assert device.device is not None
    assert device.device.chain.links == tuple(record.chain)  # the keep-owner link
    with pytest.raises(StepError, match="no_handover"):
        transfer_file(registrar_of(loaded), device_id)

    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    accept_transfer(registrar_of(home_b), read_transfer(registrar_of(home_b), result.transfer))
    await device_announces(hass, home_b, device, claimed=True)
    assert registered(hass, device_id) is None
    assert device.device.state.owner == fingerprint(home.public_key())
    # The buyer is told the file is outdated, and the stored approval is dropped.
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"transfer_outdated_{device_id}") is not None
    assert registrar_of(home_b).state.devices[device_id].approval is None


async def test_cancel_needs_the_device(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A cancel is confirmed only by the device's receipt: while it is offline the cancel is signed and
    kept, not confirmed, and delivered when the device comes back."""
    buyer = fixed_key("buyer")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await device.stop()
    await hand_over(registrar_of(loaded), device_id, buyer.public_key())

    assert not await cancel_hand_over(registrar_of(loaded), device_id)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is not None
    assert record.change.kind is ChangeKind.CANCEL
    assert record.phase is Phase.CHANGING_OWNER
    assert registered(hass, device_id) is not None

    await device.start(device.port)
    await device_announces(hass, loaded, device, claimed=True)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())
    assert device.device.chain.links == tuple(record.chain)
    assert "handover_cancelled" in [event["event"] for event in record.history]


async def test_cancel_after_the_device_took_the_hand_over(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A hand-over the device already holds cannot be cancelled: the proof shows it took it."""
    buyer = fixed_key("buyer")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await device.stop()
    result = await hand_over(registrar_of(loaded), device_id, buyer.public_key())

    await device.start(device.port)
    assert device.device is not None
    device.device.add_links(list(decode_chain(result.transfer)[1:]))  # the buyer delivered it meanwhile
    with pytest.raises(StepError, match="already_taken"):
        await cancel_hand_over(registrar_of(loaded), device_id)
    assert registered(hass, device_id) is None
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.HANDED_OVER
    assert not device.device.claimed  # it waits for the buyer's registrar


async def test_offline_cancel_loses_to_a_hand_over_the_device_took(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A cancel signed while the device was away, but the buyer delivered the hand-over first: the next
    proof shows the device left, and it leaves this home."""
    buyer = fixed_key("buyer")
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await device.stop()
    result = await hand_over(registrar_of(loaded), device_id, buyer.public_key())
    assert not await cancel_hand_over(registrar_of(loaded), device_id)

    await device.start(device.port)
    assert device.device is not None
    device.device.add_links(list(decode_chain(result.transfer)[1:]))
    await device_announces(hass, loaded, device, claimed=False)
    assert registered(hass, device_id) is None
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.HANDED_OVER
    assert record.change is None
    assert device.device.chain.links == tuple(decode_chain(result.transfer))


async def test_pending_hand_over_is_delivered_when_the_device_returns(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A signed hand-over waits for the device; when it is seen again it gets the link and leaves."""
    device: RunningDevice = await devices([home])
    await device_announces(hass, loaded, device, claimed=False)
    device_id = device.spec.device_id.hex()
    await device.stop()
    await hand_over(registrar_of(loaded), device_id, fixed_key("buyer").public_key())
    await device.start(device.port)
    await device_announces(hass, loaded, device, claimed=True)
    assert registered(hass, device_id) is None
    assert device.device is not None
    assert not device.device.claimed


async def test_hand_over_needs_a_known_owned_device(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Handing over a device this home does not manage is refused with a reason."""
    with pytest.raises(StepError, match="unknown_device"):
        await hand_over(registrar_of(loaded), "ab" * 32, fixed_key("buyer").public_key())


async def test_co_owners_both_onboard_and_either_hands_over(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """An invoice naming A and B: both onboard it with no click; B hands it over; then A is refused."""
    co_owner = fixed_key("co-owner home")
    device: RunningDevice = await devices([home, co_owner])
    device_id = device.spec.device_id.hex()
    await device_announces(hass, loaded, device, claimed=False)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.owners == [fingerprint(home.public_key()).hex(), fingerprint(co_owner.public_key()).hex()]

    home_b = await switch_home(hass, hass_storage, loaded, co_owner, trusted)
    await device_announces(hass, home_b, device, claimed=True)  # unknown to B, so B runs the handshake
    assert registered(hass, device_id) is not None
    assert device.device is not None
    assert device.device.state.owner == fingerprint(co_owner.public_key())

    third = fixed_key("third home")
    result = await hand_over(registrar_of(home_b), device_id, third.public_key())
    assert result.delivered
    assert await device_refuses(device, home) == "not_owner"
    assert await device_refuses(device, co_owner) == "not_owner"

"""A device this home refused is tried again when its announcement changes (§10, §14.6): also when the
change is a hand-over that leaves `st` as it was, and when the change is heard while an attempt runs.

The announcements here are the reference device's own TXT records, as discovery would hand them on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from autoadd_device.advertise import txt_record
from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.discovery import candidate_from_txt
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar.core import TXT_NEWS_MIN, Candidate
from custom_components.autoadd.registrar.record import Refusal
from tests.factory import add_link, fixed_key
from tests.reference_device import RunningDevice

from .conftest import registrar_of


def announced(device: RunningDevice) -> Candidate:
    """What discovery hands on for the device's current TXT record."""
    assert device.device is not None
    candidate = candidate_from_txt("127.0.0.1", device.port, txt_record(device.device))
    assert candidate is not None
    return candidate


def refusal_of(entry: MockConfigEntry, device: RunningDevice) -> Refusal:
    record = registrar_of(entry).state.devices[device.spec.device_id.hex()]
    assert record.refusal is not None
    return record.refusal


def hand_over(device: RunningDevice, seller: PrivateKey, buyer: PrivateKey) -> None:
    """The seller's registrar pushes a hand-over link to the buyer: the device is unclaimed again."""
    assert device.device is not None
    links = list(device.device.chain.links)
    device.device.add_links([add_link(links, seller, [buyer], LinkReason.HANDOVER, [device.maker.root])])


def asked(hass: HomeAssistant, device: RunningDevice) -> bool:
    """Whether the owner is asked to approve the device handed to this home."""
    issue_id = f"approve_{device.spec.device_id.hex()}"
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None


def during_the_first_hello(
    device: RunningDevice, monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]
) -> None:
    """Run `action` once, while the device answers its first hello (the attempt is under way), after the
    answer is made."""
    assert device.device is not None
    responder = device.device.responder
    answer = responder.answer_hello
    done: list[bool] = []

    def answer_then_act(*args: Any, **kwargs: Any) -> bytes:
        bundle = answer(*args, **kwargs)
        if not done:
            done.append(True)
            action()
        return bundle

    monkeypatch.setattr(responder, "answer_hello", answer_then_act)


async def _ten_seconds_on(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Just over TXT_NEWS_MIN later: a retry set for then has run."""
    freezer.tick(TXT_NEWS_MIN + timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_a_hand_over_is_news_though_the_state_reads_as_before(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Refused while the seller's and unclaimed; claimed by the seller (an announcement this home
    missed); handed to this home, unclaimed again. Only `hd` tells the two unclaimed records apart: the
    device is tried 10 s after the refusal and the owner is asked."""
    seller = fixed_key("seller home")
    device: RunningDevice = await devices([seller])
    registrar = registrar_of(loaded)
    before = announced(device)
    registrar.announce(before)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert refusal_of(loaded, device).code == "not_owner"
    await device.onboard(seller)
    hand_over(device, seller, home)
    after = announced(device)
    assert (before.txt["st"], after.txt["st"]) == ("unclaimed", "unclaimed")

    registrar.announce(after)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert refusal_of(loaded, device).attempts == 1  # too soon after the refusal
    await _ten_seconds_on(hass, freezer)

    assert asked(hass, device)


async def test_news_heard_while_a_refused_attempt_runs_is_not_lost(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The device answers the hello as the seller's, and is handed to this home before the attempt
    ends; its new record is heard during the attempt. The refusal answers the record the attempt set out
    with, so the new one is still news: tried 10 s after the refusal, and the owner is asked."""
    seller = fixed_key("seller home")
    device: RunningDevice = await devices([seller])
    registrar = registrar_of(loaded)

    def hand_over_and_announce() -> None:
        hand_over(device, seller, home)
        registrar.announce(announced(device))

    during_the_first_hello(device, monkeypatch, hand_over_and_announce)
    registrar.announce(announced(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert refusal_of(loaded, device).code == "not_owner"
    assert not asked(hass, device)
    await _ten_seconds_on(hass, freezer)

    assert asked(hass, device)


async def test_the_same_record_heard_during_a_refused_attempt_is_no_news(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record heard again while the attempt runs (a second interface) is what the attempt answered:
    the refused device waits out its back-off."""
    device: RunningDevice = await devices([fixed_key("neighbour home")])
    registrar = registrar_of(loaded)
    heard: list[Candidate] = []

    def hear_again() -> None:
        heard.append(announced(device))
        registrar.announce(heard[-1])

    during_the_first_hello(device, monkeypatch, hear_again)
    registrar.announce(announced(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    await _ten_seconds_on(hass, freezer)
    await _ten_seconds_on(hass, freezer)

    assert len(heard) == 1
    assert refusal_of(loaded, device).attempts == 1

"""Transient failures are retried with back-off; refusals wait for theirs; discovery feeds only valid TXT."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from zeroconf import ServiceStateChange

from custom_components.autoadd.discovery import candidate_from_txt
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar import session
from custom_components.autoadd.registrar.core import TXT_NEWS_MIN, Candidate
from custom_components.autoadd.registrar.failures import RETRY_BASE
from custom_components.autoadd.registrar.record import Refusal
from tests.factory import fixed_key
from tests.integration.mdns import patched_mdns
from tests.reference_device import RunningDevice

from .conftest import candidate_for, registered, registrar_of


def added(hass: HomeAssistant, device: RunningDevice) -> bool:
    return registered(hass, device.spec.device_id.hex()) is not None


def refusal_of(entry: MockConfigEntry, device: RunningDevice) -> Refusal | None:
    """The device's remembered refusal, if the registrar knows it at all."""
    record = registrar_of(entry).state.devices.get(device.spec.device_id.hex())
    return record.refusal if record is not None else None


def attempts_of(entry: MockConfigEntry, device: RunningDevice) -> int:
    """How many attempts at the device were refused."""
    refusal = refusal_of(entry, device)
    assert refusal is not None
    return refusal.attempts


async def test_device_that_was_down_is_onboarded_on_retry(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Connection refused is transient: the registrar tries again after its back-off and succeeds."""
    device: RunningDevice = await devices([home])
    port = device.port
    await device.stop()
    registrar_of(loaded).announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not added(hass, device)
    assert refusal_of(loaded, device) is None

    await device.start(port)
    freezer.tick(timedelta(seconds=RETRY_BASE + 1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert added(hass, device)


async def test_back_off_grows(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each failed retry doubles the wait, and the line is logged once (at debug level: the device is not
    this home's yet, and a flood of fake ids must not flood the log)."""
    device: RunningDevice = await devices([home])
    await device.stop()
    registrar = registrar_of(loaded)
    caplog.set_level(logging.DEBUG)
    registrar.announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    for _ in range(2):
        freezer.tick(timedelta(seconds=RETRY_BASE * 4 + 1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert registrar.failures[device.spec.device_id.hex()] == 3
    assert [r.levelno for r in caplog.records if "did not answer" in r.message] == [logging.DEBUG]


async def test_rate_limited_device_is_retried_not_refused(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A 429 from the device is a reason to wait, not to refuse it."""
    device: RunningDevice = await devices([home])
    await device.stop()
    device.rate, device.burst = 0.0001, 0
    await device.start(device.port)
    registrar = registrar_of(loaded)
    registrar.announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert refusal_of(loaded, device) is None
    assert device.spec.device_id.hex() in registrar.retries


async def test_refusal_is_retried_after_its_back_off(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], freezer: FrozenDateTimeFactory
) -> None:
    """A refused device is considered again once its back-off has passed, and counted."""
    device: RunningDevice = await devices([fixed_key("neighbour")])
    registrar = registrar_of(loaded)
    registrar.announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    registrar.announce(candidate_for(device))  # within its back-off: not tried
    await hass.async_block_till_done(wait_background_tasks=True)
    assert attempts_of(loaded, device) == 1
    freezer.tick(timedelta(hours=1, seconds=1))
    registrar.announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert attempts_of(loaded, device) == 2


async def test_one_attempt_per_device_at_a_time(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Two announcements of one device (IPv4 and IPv6, two interfaces) make one handshake."""
    device: RunningDevice = await devices([home])
    registrar = registrar_of(loaded)
    with patch.object(session, "prove", wraps=session.prove) as handshake:
        registrar.announce(candidate_for(device))
        registrar.announce(candidate_for(device))
        await hass.async_block_till_done(wait_background_tasks=True)
    assert handshake.call_count == 1
    assert added(hass, device)


async def test_stopped_registrar_ignores_announcements(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """After unload, late announcements start nothing."""
    device: RunningDevice = await devices([home])
    registrar = registrar_of(loaded)
    assert await hass.config_entries.async_unload(loaded.entry_id)
    registrar.announce(candidate_for(device))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not added(hass, device)


@pytest.mark.parametrize(
    ("port", "properties"),
    [
        (None, {"v": "1", "id": "ab" * 32}),
        (80, {"v": "2", "id": "ab" * 32}),
        (80, {"v": "1", "id": "not-hex"}),
        (80, {"v": "1"}),
    ],
)
def test_txt_records_that_are_not_acted_on(port: int | None, properties: dict[str, str | None]) -> None:
    """No port, another protocol version or a bad identifier: not a candidate."""
    assert candidate_from_txt("127.0.0.1", port, properties) is None


def test_txt_record_makes_a_candidate() -> None:
    """A good TXT record names the device, its address and whether it is claimed."""
    candidate = candidate_from_txt("127.0.0.1", 80, {"v": "1", "id": "ab" * 32, "st": "claimed", "x": None})
    assert candidate == Candidate(
        "ab" * 32, "127.0.0.1", 80, claimed=True, txt={"v": "1", "id": "ab" * 32, "st": "claimed", "x": ""}
    )


async def test_browser_resolves_added_services(
    hass: HomeAssistant, loaded: MockConfigEntry, auto_mock_zeroconf: MagicMock
) -> None:
    """Added and updated services are resolved and handed on; removed ones and unresolvable ones are not."""
    registrar = registrar_of(loaded)
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    mdns.answering.set()
    device_id = "ab" * 32
    name = mdns.name_of(device_id)
    with in_place, patch.object(registrar, "announce") as candidate:
        mdns.announce(name, ServiceStateChange.Removed)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert candidate.call_count == 0
        mdns.announce(name, ServiceStateChange.Added)  # no answer to its query
        await hass.async_block_till_done(wait_background_tasks=True)
        assert candidate.call_count == 0
        mdns.answer(device_id, 80, claimed=True)
        mdns.announce(name, ServiceStateChange.Updated)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert candidate.call_count == 1
        assert candidate.call_args.args[0].claimed
    assert mdns.queried == [name, name]


async def test_announcement_without_address_is_ignored(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """A record with no usable address cannot be contacted, so it is not a candidate."""
    info = MagicMock()
    info.parsed_scoped_addresses.return_value = []
    with patch.object(registrar_of(loaded), "announce") as candidate:
        loaded.runtime_data.browser.async_service_info(info)
    assert candidate.call_count == 0


async def test_refused_device_is_tried_again_when_its_announcement_changes(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], freezer: FrozenDateTimeFactory
) -> None:
    """A device refused while another home owned it is tried again once it announces a change (10 s
    after the refusal at the earliest, so that a device changing its record in a loop is no storm)."""
    device: RunningDevice = await devices([fixed_key("neighbour")])
    registrar = registrar_of(loaded)
    registrar.announce(candidate_for(device, claimed=True))
    await hass.async_block_till_done(wait_background_tasks=True)
    registrar.announce(candidate_for(device, claimed=False))  # e.g. handed over: now unclaimed
    await hass.async_block_till_done(wait_background_tasks=True)
    assert attempts_of(loaded, device) == 1  # too soon after the refusal: tried once that time is up
    freezer.tick(TXT_NEWS_MIN)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert attempts_of(loaded, device) == 2
    registrar.announce(candidate_for(device, claimed=False))  # the same news again is no news
    await hass.async_block_till_done(wait_background_tasks=True)
    assert attempts_of(loaded, device) == 2

"""The addresses a registrar contacts (docs/protocol.md §10, "Addresses a registrar contacts").

An announcement's addresses are the sender's word: one that would reach Home Assistant's own API, this
host's other services, every host at once or nothing in particular is never contacted. Discovery hands
on the first address the policy allows and drops an announcement with none; the HTTP client refuses such
an address before connecting, wherever it came from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import logging
from typing import Any
from unittest.mock import patch

from homeassistant.components import network
from homeassistant.components.network.models import Adapter
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from zeroconf.asyncio import AsyncServiceInfo

from custom_components.autoadd.const import SERVICE_TYPE
from custom_components.autoadd.discovery import address_policy
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar.core import Candidate
from tests.reference_device import RunningDevice

from .conftest import (
    Impostor,
    announce,
    candidate_for,
    onboarding_state,
    registered,
    registrar_of,
    settle,
)

DEVICE_ID = "ab" * 32
#: Stands for Home Assistant's own HTTP port in the cases below.
OWN_PORT = -1
#: The address and network of the host's one adapter in the tests (pytest-homeassistant's mock_network).
HOST_ADDRESS = "10.10.10.10"


def announcement(
    device_id: str, addresses: list[str], port: int, *, interface_index: int | None = None
) -> AsyncServiceInfo:
    """A resolved record naming any addresses (IPv6 link-local ones get a scope from the interface)."""
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"Lamp-{device_id[:8]}.{SERVICE_TYPE}",
        parsed_addresses=addresses,
        port=port,
        properties={"v": "1", "id": device_id, "st": "unclaimed"},
        interface_index=interface_index,
    )


@pytest.mark.parametrize(
    ("addresses", "port"),
    [
        (["0.0.0.0"], 8080),
        (["::"], 8080),
        (["0.1.2.3"], 8080),
        (["224.0.0.251"], 8080),
        (["ff02::fb"], 8080),
        (["255.255.255.255"], 8080),
        (["10.10.10.255"], 8080),  # the broadcast address of the host's network
        (["fe80::1"], 8080),  # link-local without the interface it is on
        (["192.168.1.20"], 0),
        (["192.168.1.20"], 65536),
        (["127.0.0.1"], OWN_PORT),
        (["::1"], OWN_PORT),
        (["::ffff:127.0.0.1"], OWN_PORT),
        ([HOST_ADDRESS], OWN_PORT),
        (["224.0.0.251", "0.0.0.0", HOST_ADDRESS], OWN_PORT),  # every address counts, none may be used
    ],
)
async def test_an_announcement_naming_no_address_to_contact_is_dropped(
    hass: HomeAssistant, loaded: MockConfigEntry, addresses: list[str], port: int
) -> None:
    """Unspecified, multicast and broadcast addresses, IPv6 link-local without a scope, port 0 or over
    65535, and Home Assistant's own HTTP port (on loopback or on the host's address): the announcement
    is not handed to the registrar, so nothing is contacted and nothing recorded."""
    assert await async_setup_component(hass, "http", {})
    assert hass.config.api is not None
    own_port = hass.config.api.port
    registrar = registrar_of(loaded)
    with patch.object(registrar, "announce") as handed_on:
        loaded.runtime_data.browser.async_service_info(
            announcement(DEVICE_ID, addresses, own_port if port == OWN_PORT else port)
        )
    await settle(hass)

    assert handed_on.call_count == 0
    assert registrar.state.devices == {}


async def test_the_first_address_that_may_be_contacted_is_used(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """An announcement listing a multicast and a broadcast address before the device's own is followed
    to the device's (0.2.0 tried only the first address, and failed)."""
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()
    addresses = ["224.0.0.251", "255.255.255.255", "127.0.0.1"]

    loaded.runtime_data.browser.async_service_info(announcement(device_id, addresses, device.port))
    await settle(hass)

    assert onboarding_state(hass, device_id) == "onboarded"
    record = registrar_of(loaded).state.devices[device_id]
    assert record.address is not None
    assert (record.address.host, record.address.port) == ("127.0.0.1", device.port)


async def test_link_local_is_contacted_only_with_its_scope(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """fe80::1 names no interface and is dropped; fe80::1 on interface 1 is handed on as fe80::1%1."""
    registrar = registrar_of(loaded)
    with patch.object(registrar, "announce") as handed_on:
        loaded.runtime_data.browser.async_service_info(announcement(DEVICE_ID, ["fe80::1"], 8080))
        assert handed_on.call_count == 0
        loaded.runtime_data.browser.async_service_info(
            announcement(DEVICE_ID, ["fe80::1"], 8080, interface_index=1)
        )
    assert [call.args[0].host for call in handed_on.call_args_list] == ["fe80::1%1"]


async def test_loopback_is_contacted_only_when_the_host_allows_it(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without AUTOADD_ALLOW_LOOPBACK=1 a device on 127.0.0.1 is not contacted: its announcement is
    dropped, and the same address reaching the registrar another way is refused before connecting."""
    monkeypatch.delenv("AUTOADD_ALLOW_LOOPBACK")
    device: RunningDevice = await devices([home])
    device_id = device.spec.device_id.hex()

    announce(loaded, device_id, device.port, claimed=False)
    await settle(hass)
    assert registrar_of(loaded).state.devices == {}

    registrar_of(loaded).announce(candidate_for(device))  # as a stored record's address would
    await settle(hass)

    record = registrar_of(loaded).state.devices[device_id]
    assert record.refusal is not None
    assert record.refusal.code == "address_refused"
    assert (record.chain, record.address, record.is_member) == ([], None, False)
    assert device.device is not None
    assert not device.device.claimed
    assert registered(hass, device_id) is None


async def test_an_address_from_elsewhere_is_refused_before_connecting(
    hass: HomeAssistant, loaded: MockConfigEntry, impostor: Callable[..., Awaitable[Impostor]]
) -> None:
    """0.0.0.0 reaches this host's own services; given to the registrar other than by discovery (a record
    stored by an older release), it is refused with `address_refused` and nothing is sent."""
    local = await impostor(b"")
    registrar = registrar_of(loaded)

    registrar.announce(Candidate(DEVICE_ID, "0.0.0.0", local.port, claimed=False, txt={}))
    await settle(hass)

    assert local.requests == []
    record = registrar.state.devices[DEVICE_ID]
    assert record.refusal is not None
    assert record.refusal.code == "address_refused"
    assert (record.chain, record.address, record.is_member) == ([], None, False)


async def test_a_dropped_announcement_is_logged_once_per_device(
    hass: HomeAssistant, loaded: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Announcing a refused address again and again logs it once (at debug level), not each time."""
    caplog.set_level(logging.DEBUG, logger="custom_components.autoadd.discovery")
    browser = loaded.runtime_data.browser
    with patch.object(registrar_of(loaded), "announce") as handed_on:
        for _ in range(5):
            browser.async_service_info(announcement(DEVICE_ID, ["224.0.0.251"], 8080))
        browser.async_service_info(announcement("cd" * 32, ["0.0.0.0"], 8080))

    assert handed_on.call_count == 0
    logged = [r for r in caplog.records if r.name == "custom_components.autoadd.discovery"]
    assert [(r.levelno, r.args) for r in logged] == [
        (logging.DEBUG, ("abababababab", "multicast")),
        (logging.DEBUG, ("cdcdcdcdcdcd", "unspecified")),
    ]


async def test_the_address_policy_is_made_again_whenever_what_it_rests_on_changes(
    hass: HomeAssistant, loaded: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy is kept between announcements (a burst asks for it thousands of times); adapters Home
    Assistant loads again (a new network, its broadcast address refused from then on) and the loopback
    setting each make it again at once."""
    first = address_policy(hass)
    assert address_policy(hass) is first
    assert first.first_allowed(["192.168.77.255"], 8080) == "192.168.77.255"
    assert first.first_allowed(["127.0.0.1"], 8080) == "127.0.0.1"

    adapters = network.async_get_loaded_adapters(hass)
    joined: Adapter = {
        "name": "eth9",
        "index": 9,
        "enabled": True,
        "auto": True,
        "default": False,
        "ipv4": [{"address": "192.168.77.5", "network_prefix": 24}],
        "ipv6": [],
    }
    again = [*adapters, joined]  # Home Assistant loads its adapters into a new list
    monkeypatch.setattr(network, "async_get_loaded_adapters", lambda _: again)
    second = address_policy(hass)
    assert second.first_allowed(["192.168.77.255"], 8080) is None

    monkeypatch.delenv("AUTOADD_ALLOW_LOOPBACK")
    assert address_policy(hass).first_allowed(["127.0.0.1"], 8080) is None

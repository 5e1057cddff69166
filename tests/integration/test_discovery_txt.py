"""Which announcements discovery hands to the registrar (docs/protocol.md §10): a record is ignored only for
an unknown `v`, a missing or invalid `id` (exactly 64 lowercase hex digits), or a missing port. `path` is
not looked at: the base path is fixed, so a record without it, or with another one, is contacted on
`/autoadd/v1/...` all the same. Reference devices on loopback, real HTTP."""

from __future__ import annotations

from collections.abc import Callable
import socket
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from zeroconf.asyncio import AsyncServiceInfo

from custom_components.autoadd.const import SERVICE_TYPE
from custom_components.autoadd.protocol.keys import PrivateKey
from tests.reference_device import RunningDevice

from .conftest import registered, registrar_of, settle


def _record(
    device: RunningDevice, txt: dict[str, str | None] | None = None, *, port: int | None = -1
) -> AsyncServiceInfo:
    """The resolved record of `device` on 127.0.0.1, with the given TXT values (None: leave the key out)."""
    properties: dict[str, str | None] = {
        "v": "1",
        "id": device.spec.device_id.hex(),
        "mf": "Acme",
        "md": "Lamp 1",
        "st": "unclaimed",
        "sv": "7",
        "path": "/autoadd/v1",
    }
    properties.update(txt or {})
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"Lamp-{device.spec.device_id.hex()[:8]}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=device.port if port == -1 else port,
        properties={key: value for key, value in properties.items() if value is not None},
    )


async def _announce(hass: HomeAssistant, entry: MockConfigEntry, info: AsyncServiceInfo) -> None:
    entry.runtime_data.browser.async_service_info(info)
    await settle(hass)


@pytest.mark.parametrize("path", [None, "/other", "", "/autoadd/v1/", "/autoadd/v2"])
async def test_the_path_is_ignored_and_the_fixed_base_path_contacted(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    path: str | None,
) -> None:
    """A record without `path`, or with any other value, is onboarded on /autoadd/v1/... like any other."""
    device: RunningDevice = await devices([home])
    await _announce(hass, loaded, _record(device, {"path": path}))

    assert device.device is not None
    assert device.device.claimed  # the hello and the note went to /autoadd/v1/hello and /note
    assert registered(hass, device.spec.device_id.hex()) is not None


@pytest.mark.parametrize(
    "txt",
    [
        pytest.param({"id": "UPPER"}, id="upper-case id"),
        pytest.param({"id": "ONE-UPPER"}, id="one upper-case digit"),
        pytest.param({"id": "NEWLINE"}, id="id and a trailing newline"),
        pytest.param({"id": "SHORT"}, id="63 digits"),
        pytest.param({"id": "LONG"}, id="65 digits"),
        pytest.param({"id": "NOT-HEX"}, id="a character that is no hex digit"),
        pytest.param({"id": None}, id="no id"),
        pytest.param({"id": ""}, id="empty id"),
        pytest.param({"v": "2"}, id="unknown v"),
        pytest.param({"v": None}, id="no v"),
        pytest.param({"v": "01"}, id="v written otherwise"),
    ],
)
async def test_a_record_the_contract_says_to_ignore_is_not_handed_on(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    txt: dict[str, str | None],
) -> None:
    """§10's ignore conditions: nothing is contacted, nothing recorded, for any spelling of the id."""
    device: RunningDevice = await devices([home])
    real = device.spec.device_id.hex()
    forms = {
        "UPPER": real.upper(),
        "ONE-UPPER": real.replace(next(c for c in real if c in "abcdef"), "A", 1),
        "NEWLINE": real + "\n",
        "SHORT": real[:63],
        "LONG": real + "0",
        "NOT-HEX": real[:63] + "g",
    }
    txt = {key: forms.get(value, value) if value is not None else None for key, value in txt.items()}
    await _announce(hass, loaded, _record(device, txt))

    assert device.device is not None
    assert not device.device.claimed
    assert registered(hass, real) is None
    assert registrar_of(loaded).state.devices == {}
    assert registrar_of(loaded).announced_txt == {}


async def test_a_record_without_a_port_is_not_handed_on(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """No SRV port: nothing to contact, nothing recorded."""
    device: RunningDevice = await devices([home])
    await _announce(hass, loaded, _record(device, port=None))

    assert device.device is not None
    assert not device.device.claimed
    assert registrar_of(loaded).state.devices == {}
    assert registrar_of(loaded).announced_txt == {}


async def test_mf_md_and_sv_decide_nothing(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """`mf` and `md` are the device's words and `sv` any decimal: a record with odd ones is onboarded, and
    the device's name comes from its proven IDevID, not from the record."""
    device: RunningDevice = await devices([home])
    await _announce(
        hass, loaded, _record(device, {"mf": "<b>Evil</b>\u202e", "md": "\x00", "sv": "9999999999"})
    )

    assert device.device is not None
    assert device.device.claimed
    entry = registered(hass, device.spec.device_id.hex())
    assert entry is not None
    assert entry.manufacturer == "Acme"
    assert entry.model == "Lamp 1"

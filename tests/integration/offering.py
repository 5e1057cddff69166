"""Devices from a manufacturer this home does not trust, shipped with their root.pem (§14.7): fixtures
and look-ups shared by the approval tests and the security battery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from autoadd_device.files import write_root
from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from tests.factory import Manufacturer
from tests.reference_device import RunningDevice, make_running_device

from .conftest import registrar_of

type Start = Callable[..., Any]


@pytest.fixture
def stranger() -> Manufacturer:
    """A manufacturer this home has never heard of."""
    return Manufacturer.create("Initech")


@pytest.fixture
async def offering(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Start]:
    """Start reference devices shipped with their manufacturer's root.pem: `await offering(maker,
    owners, serial=...)`; `root=False` ships none."""
    started: list[RunningDevice] = []

    async def start(
        maker: Manufacturer, owners: list[PrivateKey], serial: str = "IN0001", *, root: bool = True
    ) -> RunningDevice:
        device = make_running_device(tmp_path / serial, maker, owners, serial, http)
        if root:
            write_root(device.folder, maker.root)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


@pytest.fixture
async def repairs(hass: HomeAssistant, loaded: MockConfigEntry) -> MockConfigEntry:
    """The repairs integration, for the fix flows."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    await hass.async_block_till_done()
    return loaded


def root_id(maker: Manufacturer) -> str:
    return fingerprint(certificate_public_key(maker.root)).hex()


def issue_of(hass: HomeAssistant, maker: Manufacturer) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"manufacturer_{root_id(maker)}")


def refusal_code(entry: MockConfigEntry, device: RunningDevice) -> str | None:
    record = registrar_of(entry).state.devices.get(device.spec.device_id.hex())
    return record.refusal.code if record is not None and record.refusal is not None else None


def our_issues(hass: HomeAssistant) -> list[str]:
    return [issue_id for (domain, issue_id) in ir.async_get(hass).issues if domain == DOMAIN]

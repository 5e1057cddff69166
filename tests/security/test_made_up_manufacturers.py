"""A made-up manufacturer (§13, §14.7): anyone can make a root, an IDevID under it and an invoice naming a
home, whose key is public. The owner is asked only about what this home verified, never automatically,
and a flood of such roots is capped."""

from __future__ import annotations

from dataclasses import replace

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.registrar.new_manufacturers import MAX_WAITING_ROOTS
from tests.factory import Manufacturer, fixed_key
from tests.integration.conftest import device_announces, options_step, registrar_of
from tests.integration.offering import (
    Start,
    issue_of,
    offering,
    our_issues,
    refusal_code,
    repairs,
    root_id,
    stranger,
)

__all__ = ["offering", "repairs", "stranger"]  # fixtures, used by name


@pytest.mark.parametrize(
    "case", ["neighbour", "no_root_offered", "setting_off", "root_that_did_not_sign", "not_a_root"]
)
async def test_nothing_is_asked_unless_this_home_verified_it(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    case: str,
) -> None:
    """No question for a neighbour's device, a device that offers no root, a root that did not certify
    the device or is no root at all, or when the owner turned the question off: the refusal stays
    `untrusted_manufacturer`, nothing is stored but the refusal, and no issue is raised."""
    owners = [fixed_key("neighbour home")] if case == "neighbour" else [home]
    if case == "setting_off":
        await options_step(
            hass, repairs, "settings", {"home_key_max_age_days": 0, "ask_about_manufacturers": False}
        )
        assert registrar_of(repairs).ask_about_manufacturers is False
    device = await offering(stranger, owners, root=case != "no_root_offered")
    assert device.device is not None
    if case == "root_that_did_not_sign":  # a real root, but another manufacturer's
        device.device.identity = replace(device.device.identity, root=Manufacturer.create("Globex").root)
    if case == "not_a_root":  # the device offers its own IDevID certificate as "root"
        device.device.identity = replace(device.device.identity, root=device.spec.cert)

    await device_announces(hass, repairs, device)

    assert refusal_code(repairs, device) == "untrusted_manufacturer"
    assert our_issues(hass) == []
    state = registrar_of(repairs).state
    assert state.waiting_roots == {}
    assert [root.name for root in state.roots] == ["Acme"]


async def test_a_revoked_root_is_not_offered_back(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    maker: Manufacturer,
    home: PrivateKey,
) -> None:
    """A root the owner revoked is not asked about when a device offers it."""
    digest = root_id(maker)
    await options_step(hass, repairs, "remove_manufacturer", {"roots": [digest]})
    assert digest in registrar_of(repairs).state.revoked_roots
    device = await offering(maker, [home], "SN0009")
    await device_announces(hass, repairs, device)
    assert refusal_code(repairs, device) == "untrusted_manufacturer"
    assert our_issues(hass) == []


async def test_a_flood_of_new_roots_is_capped(
    hass: HomeAssistant, repairs: MockConfigEntry, offering: Start, home: PrivateKey
) -> None:
    """Anyone can make a root and a device naming this home (home keys are public): at most
    MAX_WAITING_ROOTS approvals wait; a device offering one more is refused as before."""
    makers = [Manufacturer.create(f"Maker {n}") for n in range(MAX_WAITING_ROOTS + 1)]
    for n, maker in enumerate(makers):
        await device_announces(hass, repairs, await offering(maker, [home], f"MK{n:04d}"))
    assert len(our_issues(hass)) == MAX_WAITING_ROOTS
    assert len(registrar_of(repairs).state.waiting_roots) == MAX_WAITING_ROOTS
    assert issue_of(hass, makers[-1]) is None

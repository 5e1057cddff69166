"""A made-up manufacturer (§13, §14.7): anyone can make a root, an IDevID under it and an invoice naming a
home, whose key is public. The owner is asked only about what this home verified, never automatically,
and a flood of such roots is capped."""

from __future__ import annotations

from dataclasses import replace
import datetime as dt

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from custom_components.autoadd.registrar.new_manufacturers import MAX_WAITING_ROOTS, WAITING_FOR
from tests.factory import NOW, Manufacturer, fixed_key
from tests.integration.conftest import candidate_for, device_announces, options_step, registrar_of, settle
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
from tests.protocol.helpers import key_usage, make_certificate

__all__ = ["offering", "repairs", "stranger"]  # fixtures, used by name


@pytest.mark.parametrize(
    "case",
    [
        "neighbour",
        "no_root_offered",
        "setting_off",
        "root_that_did_not_sign",
        "not_a_root",
        "expired_root",
        "another_identity",
    ],
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
    the device, is no root at all or is no longer valid, a device that proves another identity than the
    one announced, or when the owner turned the question off: the refusal stays `untrusted_manufacturer`,
    nothing is stored but the refusal, and no issue is raised."""
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
    if case == "expired_root":  # the same key and name, self-signed, but its validity ended (X8)
        expired = make_certificate(
            stranger.root_key,
            stranger.root.subject,
            stranger.root_key.public_key(),
            stranger.root.subject,
            ca=True,
            usage=key_usage(key_cert_sign=True),
            not_after=NOW - dt.timedelta(days=1),
        )
        device.device.identity = replace(device.device.identity, root=expired)
    announced = device.spec.device_id.hex()
    if case == "another_identity":  # its id announced at another device's address
        announced = "ab" * 32
        registrar_of(repairs).announce(replace(candidate_for(device), device_id=announced))
        await settle(hass)
    else:
        await device_announces(hass, repairs, device)

    record = registrar_of(repairs).state.devices.get(announced)
    assert record is not None
    assert record.refusal is not None
    assert record.refusal.code == "untrusted_manufacturer"
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
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    home: PrivateKey,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Anyone can make a root and a device naming this home (home keys are public): at most
    MAX_WAITING_ROOTS approvals wait, and one issue says the list is full; a device offering one more is
    refused as before. A root waits 30 days at most: then a new one is asked about again."""
    makers = [Manufacturer.create(f"Maker {n}") for n in range(MAX_WAITING_ROOTS + 2)]
    for n, maker in enumerate(makers[:-1]):
        await device_announces(hass, repairs, await offering(maker, [home], f"MK{n:04d}"))
    issues = our_issues(hass)
    assert len(issues) == MAX_WAITING_ROOTS + 1
    assert "manufacturers_full_waiting" in issues
    state = registrar_of(repairs).state
    assert len(state.waiting_roots) == MAX_WAITING_ROOTS
    assert issue_of(hass, makers[-2]) is None

    freezer.tick(WAITING_FOR + dt.timedelta(days=1))
    await device_announces(hass, repairs, await offering(makers[-1], [home], "MK9999"))
    assert list(state.waiting_roots) == [root_id(makers[-1])]
    assert our_issues(hass) == [f"manufacturer_{root_id(makers[-1])}"]


async def test_a_counterfeit_that_offers_a_root_is_not_asked_about(
    hass: HomeAssistant, repairs: MockConfigEntry, offering: Start, home: PrivateKey
) -> None:
    """O0: a chain that claims the trusted Acme root (its exact name) is a counterfeit or a second root of
    Acme's; the root it offers is never shown for approval."""
    forger = Manufacturer.create("Acme", KeyType.P256)
    device = await offering(forger, [home], "FK0001")
    await device_announces(hass, repairs, device)
    assert refusal_code(repairs, device) == "wrong_manufacturer_root"
    assert registrar_of(repairs).state.waiting_roots == {}
    assert our_issues(hass) == ["counterfeit_devices"]


async def test_device_text_in_an_approval_is_made_safe(
    hass: HomeAssistant, repairs: MockConfigEntry, offering: Start, home: PrivateKey
) -> None:
    """The manufacturer name is the device's words: markdown and HTML in it render as text."""
    maker = Manufacturer.create("Ini *now* [c](http://e.x) <img>")
    await device_announces(hass, repairs, await offering(maker, [home]))
    issue = issue_of(hass, maker)
    assert issue is not None
    assert issue.translation_placeholders is not None
    name = issue.translation_placeholders["manufacturer"]
    assert "[c](" not in name
    assert "<img" not in name
    assert "\\*now\\*" in name

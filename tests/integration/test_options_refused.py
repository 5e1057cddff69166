"""The options' list of refused devices: which device, when, the code, and what the owner can do, in this
home's words for codes it decided, and never in those words for a code the device sent itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.autoadd.const import DOMAIN, EVENT_OWNERSHIP
from custom_components.autoadd.options_flow import MAX_REFUSED_LISTED
from custom_components.autoadd.protocol.certificates import certificate_to_pem
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO, error_body
from custom_components.autoadd.registrar.core import Candidate
from custom_components.autoadd.registrar.record import DeviceRecord, Phase, Refusal
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice, make_running_device

from .conftest import (
    candidate_for,
    device_announces,
    onboard,
    options_step,
    registered,
    registrar_of,
    settle,
)
from .test_options_lifecycle import open_options, placeholders


def _refused(device_id: str, code: str, at: str, *, by_device: bool = False) -> DeviceRecord:
    return DeviceRecord(device_id=device_id, refusal=Refusal(code, "", at, at, by_device=by_device))


async def test_no_refused_devices(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Nothing refused: said so, not an empty list."""
    result = await open_options(hass, loaded, "refused_devices")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_refused_devices"


async def test_refused_devices_are_listed_with_what_to_do(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], socket_enabled: None
) -> None:
    """A neighbour's device (refused by this home after its proof) is named with its code and what to
    do; a device's own code is quoted and said to be the device's; an unknown code is not explained."""
    neighbour: RunningDevice = await devices([fixed_key("neighbour")], serial="SN0009")
    await device_announces(hass, loaded, neighbour)
    registrar = registrar_of(loaded)
    said, odd = "aa" * 32, "bb" * 32

    async def hello(request: web.Request) -> web.Response:  # the device answers with an error of its own
        body = error_body("bad_signature", "your signature is forged, trust my root instead")
        return web.Response(status=403, body=body, content_type=MEDIA_TYPE)

    app = web.Application()
    app.router.add_post(PATH_HELLO, hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        registrar.announce(Candidate(said, "127.0.0.1", int(runner.addresses[0][1]), claimed=False, txt={}))
        await hass.async_block_till_done(wait_background_tasks=True)
    finally:
        await runner.cleanup()
    refusal = registrar.state.devices[said].refusal
    assert refusal is not None
    assert (refusal.code, refusal.by_device) == ("bad_signature", True)
    registrar.state.devices[odd] = _refused(odd, "from_the_future", "2000-06-01T09:00:00+00:00")

    result = await open_options(hass, loaded, "refused_devices")

    assert result["type"] is FlowResultType.ABORT  # a page to read, with a Close button
    assert result["reason"] == "refused_devices"
    shown = placeholders(result)
    assert (shown["count"], shown["listed"]) == ("3", "3")
    lines = shown["devices"].split("\n")
    by_line = {line.split("**")[1]: line for line in lines}
    assert list(by_line)[2] == f"device {odd[:16]}"  # newest first
    assert "code not_owner: Its invoice names another home" in by_line["Acme Lamp 1 SN0009"]
    lines = [by_line["Acme Lamp 1 SN0009"], by_line[f"device {said[:16]}"], by_line[f"device {odd[:16]}"]]
    assert "code bad_signature: " in lines[1]
    assert "gave this reason itself; AutoAdd did not check it" in lines[1]
    assert "forged invoice" not in lines[1]  # the device's claim is not explained as this home's finding
    assert "trust my root" not in shown["devices"]  # nor are its words shown
    assert "code from_the_future: " in lines[2]
    assert "AutoAdd does not know this reason" in lines[2]


async def test_a_long_list_says_how_many_it_shows(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Only the most recent refusals are listed; the count says how many there are in all."""
    registrar = registrar_of(loaded)
    for index in range(MAX_REFUSED_LISTED + 5):
        device_id = f"{index:02x}" * 32
        registrar.state.devices[device_id] = _refused(
            device_id, "not_owner", f"2026-06-01T10:{index:02d}:00+00:00"
        )

    shown = placeholders(await open_options(hass, loaded, "refused_devices"))

    assert (shown["count"], shown["listed"]) == (str(MAX_REFUSED_LISTED + 5), str(MAX_REFUSED_LISTED))
    assert len(shown["devices"].split("\n")) == MAX_REFUSED_LISTED
    newest = f"{MAX_REFUSED_LISTED + 4:02x}" * 8
    assert shown["devices"].startswith(f"- **device {newest}**")


async def test_a_counterfeit_of_a_trusted_manufacturer_is_shown(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    home: PrivateKey,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """A device whose certificates name the trusted Acme root as issuer, under a root with that name but
    another key, is refused with its own code, named in one repair issue (kept across a restart, gone
    once the owner blocks it) and listed as refused with advice that is not "trust its manufacturer";
    nothing is added. An id this home never knew gets no logbook entry: anyone can mint such ids."""
    forger = Manufacturer.create("Acme", KeyType.P256)  # the same root name as the trusted Acme's
    fake = make_running_device(tmp_path / "fake", forger, [home], "FK0001", http)
    await fake.start()
    events = async_capture_events(hass, EVENT_OWNERSHIP)
    try:
        for _ in range(2):  # told once, however often it shows up
            registrar_of(loaded).announce(candidate_for(fake))
            await hass.async_block_till_done(wait_background_tasks=True)
    finally:
        await fake.stop()
    device_id = fake.spec.device_id.hex()

    refusal = registrar_of(loaded).state.devices[device_id].refusal
    assert refusal is not None
    assert refusal.code == "wrong_manufacturer_root"
    assert registered(hass, device_id) is None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "counterfeit_devices")
    assert issue is not None
    assert issue.translation_key == "counterfeit_device"
    assert issue.translation_placeholders == {"devices": f"device {device_id[:16]}", "count": "1"}
    assert events == []

    line = placeholders(await open_options(hass, loaded, "refused_devices"))["devices"]
    assert "either a counterfeit" in line
    assert "Trust a manufacturer) only" not in line  # not the advice for an unknown manufacturer

    assert await hass.config_entries.async_reload(loaded.entry_id)
    await settle(hass)
    assert ir.async_get(hass).async_get_issue(DOMAIN, "counterfeit_devices") is not None  # raised again

    assert (await options_step(hass, loaded, "block_device", {"block": device_id}))["reason"] == "blocked_now"
    assert ir.async_get(hass).async_get_issue(DOMAIN, "counterfeit_devices") is None  # dealt with


async def test_block_and_unblock_in_one_go_is_refused(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Blocking one device and unblocking another in the same submit is refused, nothing changed: each
    confirmation says all it does."""
    first: RunningDevice = await devices([home], serial="SN0001")
    second: RunningDevice = await devices([home], serial="SN0002")
    await onboard(hass, loaded, first, second)
    first_id, second_id = first.spec.device_id.hex(), second.spec.device_id.hex()
    await options_step(hass, loaded, "block_device", {"block": first_id})
    registrar = registrar_of(loaded)
    assert registrar.state.devices[first_id].phase is Phase.BLOCKED

    result = await open_options(hass, loaded, "block_device")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"block": second_id, "unblock": [first_id]}
    )

    assert result["errors"] == {"base": "block_or_unblock"}
    assert registrar.state.devices[first_id].phase is Phase.BLOCKED
    assert registrar.state.devices[second_id].phase is Phase.ONBOARDED


async def test_trusting_another_manufacturer_keeps_a_counterfeit_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    home: PrivateKey,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """A chain refused for claiming the trusted Acme root names Acme's subject: trusting Globex cannot
    answer it, so it stays refused and named; trusting a second root with Acme's subject may, so the
    refusal is cleared for its next proof to tell."""
    forger = Manufacturer.create("Acme", KeyType.P256)
    fake = make_running_device(tmp_path / "fake", forger, [home], "FK0001", http)
    await fake.start()
    try:
        registrar_of(loaded).announce(candidate_for(fake))
        await settle(hass)
    finally:
        await fake.stop()
    record = registrar_of(loaded).state.devices[fake.spec.device_id.hex()]
    assert record.refusal is not None

    globex = certificate_to_pem(Manufacturer.create("Globex").root).decode()
    await options_step(hass, loaded, "add_manufacturer", {"pem": globex})
    assert [root.name for root in registrar_of(loaded).state.roots] == ["Acme", "Globex"]
    assert record.refusal is not None
    assert record.refusal.code == "wrong_manufacturer_root"
    assert ir.async_get(hass).async_get_issue(DOMAIN, "counterfeit_devices") is not None

    second_acme = certificate_to_pem(forger.root).decode()
    await options_step(hass, loaded, "add_manufacturer", {"pem": second_acme})
    assert registrar_of(loaded).state.devices[fake.spec.device_id.hex()].refusal is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, "counterfeit_devices") is None

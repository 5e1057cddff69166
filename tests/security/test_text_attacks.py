"""A device's words never pass for Home Assistant's, and never break what shows them.

A trusted manufacturer's certificates carry the manufacturer (the root's O), the model (the IDevID's title)
and the serial number: they are still the device maker's text, and may hold line breaks, bidi overrides,
markdown and HTML, or be thousands of characters long. So may a TXT value or an error code any device on
the network sends. Every place the owner sees them (device registry, repair issues and their fix flows,
diagnostics, the logbook, the log, a discovered flow's title) shows a safe form: no control or format
character, markdown and HTML escaped where markdown is rendered, a capped length.

`shown` itself, with generated text, is checked in tests/integration/test_shown_text.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import datetime as dt
from http import HTTPStatus
from ipaddress import ip_address
import logging
from pathlib import Path
from typing import Any
import unicodedata

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from homeassistant import config_entries
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from autoadd_device.files import write_identity, write_invoice
from custom_components.autoadd.const import DOMAIN, EVENT_DEVICE_ONBOARDED, EVENT_OWNERSHIP, SERVICE_TYPE
from custom_components.autoadd.logbook import async_describe_events
from custom_components.autoadd.protocol import chain as chains
from custom_components.autoadd.protocol.certificates import certificate_hash
from custom_components.autoadd.protocol.manufacturer import NO_EXPIRY, _builder
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO, error_body
from custom_components.autoadd.registrar.core import Candidate
from custom_components.autoadd.registrar.handover import hand_over
from custom_components.autoadd.registrar.record import Phase
from custom_components.autoadd.registrar.text import CAPS, ELLIPSIS, Place
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key
from tests.integration.conftest import (
    device_announces,
    registered,
    registrar_of,
    settle,
    switch_home,
)
from tests.reference_device import FakeClock, RunningDevice
from tests.registrar.test_text import (
    ATTACK,
    ESCAPED,
    UNSEEN,
    WORDS,
    assert_markdown_inert,
    assert_unseen_free,
)

ORG = f"Evil{ATTACK}"
SERIAL = f"SN{ATTACK}"
MODEL = f"Lamp{ATTACK} {'M' * 3400}"  # as long as an IDevID certificate (at most 4 096 bytes) allows


# --- a trusted manufacturer's hostile device ------------------------------------------------------------


def _certificate(
    subject: list[x509.NameAttribute[str]],
    key: Any,
    issuer_key: Any,
    issuer: x509.Name | None = None,
    **kw: Any,
) -> x509.Certificate:
    """A certificate with the protocol's profile (issuer None: self-signed)."""
    name = x509.Name(subject)
    return _builder(
        name,
        issuer or name,
        key.public_key(),
        issuer_key.public_key(),
        not_before=NOW - dt.timedelta(days=30),
        not_after=NO_EXPIRY,
        **kw,
    ).sign(issuer_key, None)


@pytest.fixture
def maker() -> Manufacturer:
    """A manufacturer the registrar trusts, whose certificates carry hostile text (the integration
    fixtures' `maker`, so the registrar under test trusts this root)."""
    org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)
    root_key, signer_key = fixed_key("hostile root"), fixed_key("hostile signer")
    root_subject = [org, x509.NameAttribute(NameOID.COMMON_NAME, "Hostile Root CA")]
    root = _certificate(root_subject, root_key, root_key, serial=1, ca=True, path_length=1)
    signer_subject = [org, x509.NameAttribute(NameOID.COMMON_NAME, "Hostile Invoice Signer")]
    signer = _certificate(signer_subject, signer_key, root_key, root.subject, serial=2, ca=False)
    return Manufacturer(ORG, root_key, root, signer_key, signer)


@pytest.fixture
async def hostile(
    tmp_path: Path, maker: Manufacturer, home: Any, http: aiohttp.ClientSession
) -> AsyncIterator[RunningDevice]:
    """A device of `maker`'s whose IDevID has a hostile title (model) and serial number, and whose
    invoice names this home and no model (so the certificate's is the one shown)."""
    key = fixed_key("hostile device")
    subject = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
        x509.NameAttribute(NameOID.TITLE, MODEL),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, SERIAL, _type=_ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.COMMON_NAME, "Hostile device"),
    ]
    cert = _certificate(subject, key, maker.root_key, maker.root.subject, serial=1000, ca=False)
    spec = Device(maker, key, cert)
    spec.links = [
        chains.issue_invoice(
            signer=maker.signer_key,
            signer_chain=[maker.signer],
            device_id=spec.device_id,
            idevid_hash=certificate_hash(cert),
            owners=[home.public_key()],
            issued_at=NOW_TS,
        )
    ]
    write_identity(tmp_path / "hostile", key, [cert])
    write_invoice(tmp_path / "hostile", spec.links)
    device = RunningDevice(tmp_path / "hostile", maker, spec, FakeClock(), http)
    await device.start()
    yield device
    await device.stop()


def strings_in(value: Any) -> list[str]:
    """Every string in a tree of dicts and lists, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [*strings_in(key), *strings_in(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


def no_forged_lines(caplog: pytest.LogCaptureFixture) -> None:
    """Every AutoAdd log line is one line, with no bidi trick."""
    for record in caplog.records:
        if record.name.startswith("custom_components.autoadd"):
            message = record.getMessage()
            assert not [ch for ch in message if unicodedata.category(ch) in UNSEEN], repr(message[:160])


async def test_onboarded_hostile_device_is_shown_safely(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    hostile: RunningDevice,
    hass_client: ClientSessionGenerator,
) -> None:
    """Registry, onboarding event, logbook and diagnostics show the safe forms of the certificate's
    manufacturer, model and serial number."""
    fired = async_capture_events(hass, EVENT_DEVICE_ONBOARDED)
    ownership = async_capture_events(hass, EVENT_OWNERSHIP)
    await device_announces(hass, loaded, hostile)
    device_id = hostile.spec.device_id.hex()
    entry = registered(hass, device_id)
    assert entry is not None
    assert registrar_of(loaded).state.devices[device_id].model == MODEL  # stored as proven, shown safely

    assert entry.manufacturer == f"Evil {WORDS}"
    assert entry.serial_number == f"SN {WORDS}"
    assert entry.model is not None
    assert entry.model.startswith(f"Lamp {WORDS} MMM")
    assert (len(entry.model), entry.model[-1]) == (CAPS[Place.NAME], ELLIPSIS)
    assert entry.name is not None
    assert entry.name.startswith("Lamp [link]")
    assert " SN [link]" in entry.name  # the serial still tells devices apart
    for text in (entry.manufacturer, entry.model, entry.serial_number, entry.name):
        assert_unseen_free(text, Place.NAME)

    assert [event.data["name"] for event in fired] == [entry.name]
    described: dict[str, Callable[[Event], dict[str, str]]] = {}
    async_describe_events(hass, lambda _domain, kind, describe: described.__setitem__(kind, describe))
    logbook = described[EVENT_OWNERSHIP](ownership[0])
    assert logbook["name"] == entry.name
    assert logbook["message"] == "was added securely by AutoAdd"

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    for text in strings_in(diagnostics):
        if text:
            assert_unseen_free(text, Place.PLAIN)
    (shown_device,) = diagnostics["devices"]
    assert shown_device["manufacturer"] == f"Evil {WORDS}"
    assert shown_device["model"].startswith(f"Lamp {WORDS} MMM")
    assert shown_device["model"].endswith(ELLIPSIS)
    assert diagnostics["trusted_manufacturers"][0]["name"] == f"Evil {WORDS}"


async def test_hostile_certificate_text_cannot_forge_a_log_line(
    hass: HomeAssistant, loaded: MockConfigEntry, hostile: RunningDevice, caplog: pytest.LogCaptureFixture
) -> None:
    """Onboarding logs the device by its manufacturer and model: on one line, with no bidi trick."""
    caplog.set_level(logging.DEBUG, logger="custom_components.autoadd")
    await device_announces(hass, loaded, hostile)
    assert registered(hass, hostile.spec.device_id.hex()) is not None
    assert any("Onboarded" in record.getMessage() for record in caplog.records)
    no_forged_lines(caplog)


async def test_approval_issue_of_a_hostile_device_is_inert_markdown(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    hostile: RunningDevice,
    home: Any,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
    hass_client: ClientSessionGenerator,
) -> None:
    """Handed over by another owner, the device waits for approval: the repair issue and its fix flow
    show its manufacturer, model and serial as text (no link, heading or tag), short, on one line."""
    buyer = fixed_key("buyer home")
    await device_announces(hass, loaded, hostile)
    device_id = hostile.spec.device_id.hex()
    assert (await hand_over(registrar_of(loaded), device_id, buyer.public_key())).delivered
    home_b = await switch_home(hass, hass_storage, loaded, buyer, trusted)
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    await device_announces(hass, home_b, hostile)
    assert registrar_of(home_b).state.devices[device_id].phase is Phase.AWAITING_APPROVAL

    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    for value in issue.translation_placeholders.values():
        assert_markdown_inert(value)
    assert issue.translation_placeholders["manufacturer"] == f"Evil {ESCAPED}"
    assert issue.translation_placeholders["model"].startswith(f"Lamp {ESCAPED} MMM")
    assert issue.translation_placeholders["device"] == device_id[:16]

    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue.issue_id}
    )
    assert response.status == HTTPStatus.OK
    flow = await response.json()
    shown_there = flow["description_placeholders"]
    for value in shown_there.values():
        assert_markdown_inert(value)
    assert shown_there["manufacturer"] == f"Evil {ESCAPED}"
    assert shown_there["serial_number"] == f"SN {ESCAPED}"
    assert shown_there["model"].endswith(ELLIPSIS)


@pytest.fixture
async def says(socket_enabled: None) -> AsyncIterator[Callable[[str], Any]]:
    """A device that answers every hello with an error body carrying `code`; returns its port."""
    runners: list[web.AppRunner] = []

    async def start(code: str) -> int:
        async def hello(request: web.Request) -> web.Response:
            body = error_body(code, "detail\nCRITICAL forged line")
            return web.Response(status=400, body=body, content_type=MEDIA_TYPE)

        app = web.Application()
        app.router.add_post(PATH_HELLO, hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_device_error_code_cannot_forge_a_log_line(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    says: Callable[[str], Any],
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device's error code with a line break and a bidi override is its own word: the log gets one line,
    diagnostics a safe form, and no repair issue quotes it."""
    caplog.set_level(logging.DEBUG, logger="custom_components.autoadd")
    port = await says("nope\nCRITICAL registrar compromised \u202e")
    device_id = "ab" * 32
    registrar_of(loaded).announce(Candidate(device_id, "127.0.0.1", port, claimed=False, txt={"v": "1"}))
    await settle(hass)
    assert registrar_of(loaded).state.devices[device_id].refusal is not None

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    for text in strings_in(diagnostics):
        if text:
            assert_unseen_free(text, Place.PLAIN)
    assert not ir.async_get(hass).issues  # no repair issue quotes (or even names) a device's own words
    no_forged_lines(caplog)


async def test_a_discovered_flow_title_shows_the_txt_model_safely(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Anyone can announce a TXT `md`: the set-up offer's title shows it on one line, short."""
    info = ZeroconfServiceInfo(
        ip_address=ip_address("192.0.2.10"),
        ip_addresses=[ip_address("192.0.2.10")],
        port=8443,
        hostname="autoadd-evil.local.",
        type=SERVICE_TYPE,
        name=f"AutoAdd evil.{SERVICE_TYPE}",
        properties={"id": "00" * 32, "v": "1", "st": "unclaimed", "md": f"Lamp{ATTACK}{'x' * 300}"},
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=info
    )
    title = hass.config_entries.flow.async_get(result["flow_id"])["context"]["title_placeholders"]["model"]
    assert title.startswith(f"Lamp {WORDS}")
    assert title.endswith(ELLIPSIS)
    assert_unseen_free(title, Place.NAME)

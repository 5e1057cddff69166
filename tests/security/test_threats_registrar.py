"""docs/protocol.md §13, the registrar's half: each threat tried on Home Assistant's registrar through
discovery, by something answering at an announced address (an impostor, a relay, a forger's device).

Every attack must end in the documented refusal code (or the documented recovery), and leave what this
home believes as it was: its keys, and per device its phase, chain, owners, address and pending change.
A repair issue is raised only for an attack proven by valid signatures on a chain this home knows (a
rollback, a fork); nothing anyone can send without keys (a bad signature, anything before a valid proof)
raises one. What the registrar checks inside a proof bundle (format, algorithms, limits, chains and
certificates) is test_threats_bundles.py; the device's half is test_threats_device.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import issue_link
from custom_components.autoadd.protocol.const import Label, LinkReason
from custom_components.autoadd.protocol.handshake import RegistrarHandshake, read_hello
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO, PATH_NOTE
from custom_components.autoadd.registrar.record import Address, DeviceRecord, Phase
from tests.factory import NOW_TS, Manufacturer, fixed_key
from tests.integration.conftest import (
    HelloHandler,
    announce,
    bundle,
    onboarding_state,
    registered,
    registrar_of,
    settle,
)
from tests.protocol.helpers import with_payload
from tests.reference_device import RunningDevice

ATTACKER = fixed_key("threat attacker")
CO_OWNER = fixed_key("threat co-owner")

#: What a record holds that only evidence may change (the rest: refusals, hints, history, are bookkeeping).
PROVEN = ("phase", "chain", "owners", "address", "change", "approval", "onboarded_at", "lost_key", "flags")


# --- What this home believes, and what it tells the owner -----------------------------------------------


def _proven(record: DeviceRecord) -> dict[str, Any]:
    stored = record.as_dict()
    return {key: stored[key] for key in PROVEN}


def beliefs(entry: MockConfigEntry) -> dict[str, Any]:
    """This home's keys, and what it holds proven about each device it knows anything proven about."""
    registrar = registrar_of(entry)
    nothing = _proven(DeviceRecord(device_id=""))
    devices = {device_id: _proven(record) for device_id, record in registrar.state.devices.items()}
    return {
        "home": registrar.home.fingerprint,
        "keys": registrar.keys.fingerprints(),
        "devices": {device_id: proven for device_id, proven in devices.items() if proven != nothing},
    }


def issues(hass: HomeAssistant) -> dict[str, str | None]:
    """AutoAdd's repair issues: id -> translation key."""
    return {
        issue_id: issue.translation_key
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    }


def one_warning_more(hass: HomeAssistant, before: dict[str, str | None]) -> None:
    """Exactly one new repair issue, and it is the warning about an attack (grouped: one for all)."""
    new = {issue_id: key for issue_id, key in issues(hass).items() if issue_id not in before}
    assert len(new) == 1, new
    assert "suspicious" in (next(iter(new.values())) or "")


async def attacked(hass: HomeAssistant, entry: MockConfigEntry, device_id: str, port: int) -> str:
    """Announce `device_id` at `port` (as anyone on the network can) and return the refusal it ends in:
    on the record, or, for a member refused at an address it never proved, held against that address
    only (the member's record is left as it is)."""
    announce(entry, device_id, port, claimed=False)
    await settle(hass)
    registrar = registrar_of(entry)
    record = registrar.state.devices[device_id]
    if record.refusal is not None:
        return record.refusal.code
    assert record.is_member
    assert record.address != Address("127.0.0.1", port)
    return registrar.elsewhere[(device_id, Address("127.0.0.1", port))][1]


async def onboarded_at(hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice, port: int) -> str:
    """Announce the device at `port` and check it was onboarded; return its identifier."""
    device_id = device.spec.device_id.hex()
    announce(entry, device_id, port, claimed=False)
    await settle(hass)
    assert onboarding_state(hass, device_id) == "onboarded"
    return device_id


# --- A relay between the registrar and a device ---------------------------------------------------------

type Forward = Callable[[bytes], Awaitable[tuple[int, bytes]]]
type Hook = Callable[[str, bytes, Forward], Awaitable[tuple[int, bytes]]]


@dataclass
class Relay:
    """Something at an announced address that passes requests on to the real device, as `hook` says."""

    port: int
    paths: list[str] = field(default_factory=list)


async def passing(path: str, body: bytes, forward: Forward) -> tuple[int, bytes]:
    """Pass every request on unchanged."""
    return await forward(body)


@pytest.fixture
async def relay(
    http: aiohttp.ClientSession,
) -> AsyncIterator[Callable[[RunningDevice, Hook], Awaitable[Relay]]]:
    """Start relays on 127.0.0.1: `await relay(device, hook)`."""
    runners: list[web.AppRunner] = []

    async def start(device: RunningDevice, hook: Hook) -> Relay:
        async def answer(request: web.Request) -> web.Response:
            relayed.paths.append(request.path)

            async def forward(body: bytes) -> tuple[int, bytes]:
                async with http.request(
                    request.method,
                    f"http://127.0.0.1:{device.port}{request.path}",
                    data=body if request.method == "POST" else None,
                    headers={"Content-Type": MEDIA_TYPE} if request.method == "POST" else None,
                ) as response:
                    return response.status, await response.read()

            status, body = await hook(request.path, await request.read(), forward)
            return web.Response(status=status, body=body or None, content_type=MEDIA_TYPE if body else None)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        relayed = Relay(int(runner.addresses[0][1]))
        return relayed

    yield start
    for runner in runners:
        await runner.cleanup()


# --- Cloned invoice, replayed proof, replayed receipt ---------------------------------------------------


@pytest.mark.parametrize(
    ("clone", "expected"),
    [("its copied invoice and certificate", "bad_signature"), ("another device's IDevID", "idevid_mismatch")],
)
async def test_cloned_invoice_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
    clone: str,
    expected: str,
) -> None:
    """P8-P12, I11-I12: a copy of an onboarded device's invoice and certificate, without its IDevID key
    (or moved to another genuine device), moves nothing: not its address, not its chain."""
    device: RunningDevice = await devices([home])
    device_id = await onboarded_at(hass, loaded, device, device.port)
    spec = device.spec
    if clone == "another device's IDevID":
        other = maker.make_device("SN0201")
        port = await fake_device(lambda hello: bundle(hello, other.key, other, spec.links))
    else:
        port = await fake_device(lambda hello: bundle(hello, ATTACKER, spec, spec.links))
    before, warned = beliefs(loaded), issues(hass)

    assert await attacked(hass, loaded, device_id, port) == expected
    assert beliefs(loaded) == before
    assert issues(hass) == warned
    assert registered(hass, device_id) is not None


async def test_replayed_proof_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """P12, P1: a proof the device gave for an earlier hello of this very home answers no other hello."""
    device: RunningDevice = await devices([home])
    recorded = await device.client.hello(RegistrarHandshake(home, issued_at=NOW_TS).hello)
    port = await fake_device(lambda hello: recorded)
    device_id = device.spec.device_id.hex()
    before, warned = beliefs(loaded), issues(hass)

    assert await attacked(hass, loaded, device_id, port) == "nonce_mismatch"
    assert beliefs(loaded) == before
    assert issues(hass) == warned
    assert registered(hass, device_id) is None


async def test_replayed_receipt_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[[RunningDevice, Hook], Awaitable[Relay]],
) -> None:
    """R6, R8: a relay that keeps the note from the device and answers with the receipt of an earlier
    session gets nothing past the registrar: the device is not counted as having taken the note."""
    device: RunningDevice = await devices([home])
    receipts: list[bytes] = []

    async def replaying(path: str, body: bytes, forward: Forward) -> tuple[int, bytes]:
        if path == PATH_NOTE and receipts:
            return 200, receipts[0]
        status, answer = await forward(body)
        if path == PATH_NOTE:
            receipts.append(answer)
        return status, answer

    relayed = await relay(device, replaying)
    device_id = await onboarded_at(hass, loaded, device, relayed.port)
    assert device.device is not None
    device.device.factory_reset()  # it asks to be onboarded again; the relay keeps the note from it
    before, warned, held = beliefs(loaded), issues(hass), device.device.state

    assert await attacked(hass, loaded, device_id, relayed.port) == "nonce_mismatch"
    assert beliefs(loaded) == before
    assert issues(hass) == warned
    assert device.device.state == held


# --- Relay / man in the middle --------------------------------------------------------------------------


async def test_relay_that_only_passes_messages_on_onboards_the_device(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[[RunningDevice, Hook], Awaitable[Relay]],
) -> None:
    """§13: physical proximity is not proven: a device that is this home's by its chain is onboarded
    through a relay, with exactly the messages the two sides signed."""
    device: RunningDevice = await devices([home])
    relayed = await relay(device, passing)
    await onboarded_at(hass, loaded, device, relayed.port)
    assert relayed.paths == [PATH_HELLO, PATH_NOTE]
    assert device.device is not None
    assert device.device.state.owner == fingerprint(home.public_key())


@pytest.mark.parametrize(
    ("change", "expected"),
    [("its own hello, with this home's nonce", "nonce_mismatch"), ("a rewritten note", "bad_signature")],
)
async def test_relay_that_changes_a_message_gets_nothing(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[[RunningDevice, Hook], Awaitable[Relay]],
    change: str,
    expected: str,
) -> None:
    """P12-P14, N4-N11: every message is signed and bound to both nonces, the device and the registrar:
    a proof for the relay's own hello is refused (P13); a note it rewrote is refused by the device."""

    async def tampering(path: str, body: bytes, forward: Forward) -> tuple[int, bytes]:
        if path == PATH_HELLO and change.startswith("its own hello"):
            nonce = read_hello(body).registrar_nonce
            return await forward(RegistrarHandshake(ATTACKER, issued_at=NOW_TS, nonce=nonce).hello)
        if path == PATH_NOTE:
            return await forward(
                with_payload(body, lambda payload: payload.update({Label.CONFIG: {"room": "attic"}}))
            )
        return await forward(body)

    device: RunningDevice = await devices([home])
    assert device.device is not None
    held = device.device.state
    relayed = await relay(device, tampering)
    device_id = device.spec.device_id.hex()
    warned = issues(hass)

    assert await attacked(hass, loaded, device_id, relayed.port) == expected
    assert issues(hass) == warned
    assert registered(hass, device_id) is None
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.SEEN
    assert registrar_of(loaded).state.devices[device_id].owners == []
    assert device.device.state == held


# --- Session exhaustion, stale session ------------------------------------------------------------------


async def test_hello_flood_before_the_note_costs_one_retry(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[[RunningDevice, Hook], Awaitable[Relay]],
) -> None:
    """§8.4, §12: eight hellos between this home's hello and its note evict its session; the device
    answers `unknown_session`, and the registrar starts a new handshake at once: no refusal, no warning."""
    device: RunningDevice = await devices([home])
    notes: list[bytes] = []

    async def flooding(path: str, body: bytes, forward: Forward) -> tuple[int, bytes]:
        if path == PATH_NOTE:
            notes.append(body)
            if len(notes) == 1:
                for _ in range(8):
                    await device.client.hello(RegistrarHandshake(ATTACKER, issued_at=NOW_TS).hello)
        return await forward(body)

    relayed = await relay(device, flooding)
    warned = issues(hass)
    device_id = await onboarded_at(hass, loaded, device, relayed.port)
    assert len(notes) == 2
    assert registrar_of(loaded).state.devices[device_id].refusal is None
    assert issues(hass) == warned


async def test_chain_that_moves_before_the_note_costs_one_retry(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[[RunningDevice, Hook], Awaitable[Relay]],
) -> None:
    """N7, §12: a co-owner's link arriving between the hello and the note makes the device refuse the
    note (`chain_head_mismatch`); the registrar proves the new head and onboards the device on it."""
    device: RunningDevice = await devices([home, CO_OWNER])
    assert device.device is not None
    moved: list[bytes] = []

    async def co_owner_pushes(path: str, body: bytes, forward: Forward) -> tuple[int, bytes]:
        if path == PATH_NOTE and not moved:
            assert device.device is not None
            moved.append(
                issue_link(
                    signer=CO_OWNER,
                    head=device.device.chain.head,
                    owners=[home.public_key(), fixed_key("threat new co-owner").public_key()],
                    reason=LinkReason.ROTATE,
                    issued_at=NOW_TS,
                )
            )
            await device.client.links(moved)
        return await forward(body)

    relayed = await relay(device, co_owner_pushes)
    warned = issues(hass)
    device_id = await onboarded_at(hass, loaded, device, relayed.port)
    record = registrar_of(loaded).state.devices[device_id]
    assert record.chain == [*device.spec.links, *moved]
    assert record.refusal is None
    assert issues(hass) == warned


async def test_a_hello_flood_before_every_note_is_retried_not_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    relay: Callable[[RunningDevice, Hook], Awaitable[Relay]],
) -> None:
    """A flooder evicting this home's session before every note makes the attempt fail, but only as no
    answer would: retried with back-off, never a refusal that would hold the device back for hours."""
    device: RunningDevice = await devices([home])

    async def flooding(path: str, body: bytes, forward: Forward) -> tuple[int, bytes]:
        if path == PATH_NOTE:
            for _ in range(8):
                await device.client.hello(RegistrarHandshake(ATTACKER, issued_at=NOW_TS).hello)
        return await forward(body)

    relayed = await relay(device, flooding)
    warned = issues(hass)
    device_id = device.spec.device_id.hex()
    announce(loaded, device_id, relayed.port, claimed=False)
    await settle(hass)
    registrar = registrar_of(loaded)
    assert registrar.state.devices[device_id].refusal is None
    assert registrar.failures[device_id] == 1
    assert device_id in registrar.retries
    assert registered(hass, device_id) is None
    assert issues(hass) == warned

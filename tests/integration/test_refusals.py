"""Devices that must not be added: forged and cloned invoices, replayed proofs. Each raises a repair issue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import cbor2
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.const import Label
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey, public_key_to_bytes
from custom_components.autoadd.registrar.core import Candidate
from custom_components.autoadd.registrar.record import Address
from custom_components.autoadd.registrar.session import Purpose
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key

from .conftest import HelloHandler, bundle, registered, registrar_of


async def refused(hass: HomeAssistant, entry: MockConfigEntry, device: Device, port: int) -> str:
    device_id = device.device_id.hex()
    registrar_of(entry).announce(Candidate(device_id, "127.0.0.1", port, claimed=False, txt={}))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registered(hass, device_id) is None
    refusal = registrar_of(entry).state.devices[device_id].refusal
    assert refusal is not None
    return refusal.code


def tampered_invoice(invoice: bytes, new_owner: PrivateKey) -> bytes:
    """The invoice with its owner replaced and the manufacturer's signature kept."""
    tag = cbor2.loads(invoice)
    payload = cbor2.loads(tag.value[2])
    payload[Label.OWNERS] = [public_key_to_bytes(new_owner.public_key())]
    tag.value[2] = cbor2.dumps(payload, canonical=True)
    return cbor2.dumps(tag, canonical=True)


async def test_forged_invoice_is_refused_without_a_security_warning(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    maker: Manufacturer,
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """An invoice whose owner was rewritten to this home fails the manufacturer's signature. Anyone on
    the network can send such a thing: it is remembered, but raises no security warning (only attacks
    proven by valid signatures do)."""
    device = maker.make_device("SN0100")
    genuine = maker.invoice(device, [fixed_key("real buyer")])
    forged = tampered_invoice(genuine, home)
    port = await fake_device(lambda hello: bundle(hello, device.key, device, [forged]))
    assert await refused(hass, loaded, device, port) == "bad_signature"
    assert not ir.async_get(hass).issues
    assert registered(hass, device.device_id.hex()) is None


async def test_cloned_invoice_without_the_device_key_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    maker: Manufacturer,
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """A copy of a genuine device's certificate and invoice is worthless without its IDevID key."""
    device = maker.make_device("SN0101")
    invoice = maker.invoice(device, [home])
    impostor_key = fixed_key("impostor")
    port = await fake_device(lambda hello: bundle(hello, impostor_key, device, [invoice]))
    assert await refused(hass, loaded, device, port) == "bad_signature"
    assert not ir.async_get(hass).issues


async def test_replayed_proof_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    maker: Manufacturer,
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """A proof recorded from an earlier session answers another hello: refused as a replay."""
    device = maker.make_device("SN0102")
    device.links = [maker.invoice(device, [home])]
    earlier = RegistrarHandshake(home, issued_at=NOW_TS)
    recorded = device.responder().answer_hello(
        earlier.hello, verify_chain(device.links, roots=[maker.root], now=NOW), now=0.0
    )
    port = await fake_device(lambda hello: recorded)
    assert await refused(hass, loaded, device, port) == "nonce_mismatch"
    assert not ir.async_get(hass).issues


async def test_garbage_answer_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    maker: Manufacturer,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """A device that answers with garbage is refused as malformed, without a repair issue."""
    device = maker.make_device("SN0103")
    port = await fake_device(lambda hello: b"\xff not cbor")
    assert await refused(hass, loaded, device, port) == "malformed"
    assert not ir.async_get(hass).issues


async def test_genuine_device_is_onboarded_after_its_impostor_was_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    maker: Manufacturer,
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
    devices: Callable[..., Any],
) -> None:
    """An impostor's refusal holds nothing against the genuine device: it proves itself and is added."""
    genuine = await devices([home], serial="SN0104")
    impostor_key = fixed_key("impostor")
    port = await fake_device(lambda hello: bundle(hello, impostor_key, genuine.spec, genuine.spec.links))
    assert await refused(hass, loaded, genuine.spec, port) == "bad_signature"
    device_id = genuine.spec.device_id.hex()
    await registrar_of(loaded).attempt(device_id, Address("127.0.0.1", genuine.port), Purpose.ONBOARD)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert registered(hass, device_id) is not None
    assert registrar_of(loaded).state.devices[device_id].refusal is None
    assert not ir.async_get(hass).issues


async def test_device_proving_another_identity_than_announced(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """A device whose proof names another identifier than its announcement is refused as wrong_device."""
    device = await devices([home])
    registrar_of(loaded).announce(Candidate("ee" * 32, "127.0.0.1", device.port, claimed=False, txt={}))
    await hass.async_block_till_done(wait_background_tasks=True)
    refusal = registrar_of(loaded).state.devices["ee" * 32].refusal
    assert refusal is not None
    assert refusal.code == "wrong_device"
    assert registered(hass, device.spec.device_id.hex()) is None

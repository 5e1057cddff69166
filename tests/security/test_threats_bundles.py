"""docs/protocol.md §13, the registrar's half for what it checks inside a proof bundle: rollback, fork,
signature malleability, a manufacturer invoicing another's devices, an expired invoice signer, clock skew,
and the format rows (algorithm confusion, cross-message reuse, oversized input, non-deterministic CBOR).

Each attack goes through discovery to a device (the reference device, or a forger's that signs with the
real IDevID key where the threat needs a validly signed proof). A validly signed rollback or fork of a
chain this home knows raises the one grouped security issue; everything else raises none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import cbor2
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from autoadd_device.files import write_identity, write_invoice
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import (
    certificate_hash,
    certificate_public_key,
    certificate_to_pem,
)
from custom_components.autoadd.protocol.chain import issue_invoice, issue_link, verify_chain
from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE, ContentType, LinkReason
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint
from custom_components.autoadd.protocol.manufacturer import (
    make_idevid_certificate,
    make_root_certificate,
    make_signer_certificate,
)
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key
from tests.integration.conftest import HelloHandler, bundle, registered, registrar_of
from tests.protocol.helpers import encode, non_canonical_map, payload_of, sign_raw, with_protected
from tests.reference_device import FakeClock, RunningDevice

from .test_threats_device import high_s_twin
from .test_threats_registrar import attacked, beliefs, issues, onboarded_at, one_warning_more

P256_CO_OWNER = fixed_key("threat p256 co-owner", KeyType.P256)
YEAR = dt.timedelta(days=365)


def _old_maker() -> Manufacturer:
    """A manufacturer whose root is 20 years old and whose invoice signer expired two years ago."""
    root_key, signer_key = fixed_key("Oldco root"), fixed_key("Oldco signer")
    root = make_root_certificate(root_key, "Oldco", now=NOW - 20 * YEAR, serial=1)
    signer = make_signer_certificate(root_key, root, signer_key.public_key(), now=NOW - 12 * YEAR, serial=2)
    return Manufacturer("Oldco", root_key, root, signer_key, signer)


OTHER_MAKER = Manufacturer.create("Bogus")
OLD_MAKER = _old_maker()


@pytest.fixture
def trusted(trusted: list[dict[str, str]]) -> list[dict[str, str]]:
    """This home trusts Acme, and also Bogus and Oldco (trusting them is what the attacks need)."""
    return [
        *trusted,
        *(
            {
                "name": maker.name,
                "pem": certificate_to_pem(maker.root).decode(),
                "fingerprint": fingerprint(certificate_public_key(maker.root)).hex(),
                "added_on": "2026-06-01T00:00:00+00:00",
            }
            for maker in (OTHER_MAKER, OLD_MAKER)
        ),
    ]


@pytest.fixture
async def serve(
    tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[Callable[[Device, list[bytes]], Awaitable[RunningDevice]]]:
    """Start a reference device with any identity and any shipped chain: `await serve(spec, links)`."""
    started: list[RunningDevice] = []

    async def start(spec: Device, links: list[bytes]) -> RunningDevice:
        folder = tmp_path / f"served{len(started)}"
        write_identity(folder, spec.key, [spec.cert])
        spec.links = list(links)
        write_invoice(folder, links)
        device = RunningDevice(folder, spec.maker, spec, FakeClock(), http)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


def invoice_for(spec: Device, maker: Manufacturer, owner: PrivateKey, issued_at: int, **extra: Any) -> bytes:
    """An invoice from `maker`'s signer naming the device and `owner`, dated `issued_at`."""
    return issue_invoice(
        signer=maker.signer_key,
        signer_chain=[maker.signer],
        device_id=spec.device_id,
        idevid_hash=certificate_hash(spec.cert),
        owners=[owner.public_key()],
        issued_at=issued_at,
        model="Lamp 1",
        **extra,
    )


# --- Rollback, fork, malleability -----------------------------------------------------------------------

EVIDENCE = ("phase", "chain", "owners", "address", "change", "approval")


def _kept(entry: MockConfigEntry, device_id: str) -> dict[str, Any]:
    stored = registrar_of(entry).state.devices[device_id].as_dict()
    return {key: stored[key] for key in EVIDENCE}


async def _rotated_and_onboarded(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    devices: Callable[..., Any],
    signer: PrivateKey,
    owners: list[PrivateKey],
) -> RunningDevice:
    """A device whose owner `signer` pushed a rotation to `owners`, then onboarded by this home."""
    device: RunningDevice = await devices(owners)
    assert device.device is not None
    link = issue_link(
        signer=signer,
        head=device.device.chain.head,
        owners=[owner.public_key() for owner in owners],
        reason=LinkReason.ROTATE,
        issued_at=NOW_TS,
    )
    await device.client.links([link])
    device.spec.links.append(link)
    await onboarded_at(hass, entry, device, device.port)
    return device


@pytest.mark.parametrize(
    "attack",
    ["its invoice alone (rollback)", "another second link (fork)", "a re-issued invoice (fork at 0)"],
)
async def test_validly_signed_rollback_or_fork_is_refused_with_one_warning(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
    attack: str,
) -> None:
    """K1, K2, L8: the device's own IDevID key proves a chain that undoes or contradicts the one this
    home knows: refused, the known chain and address kept, and the owner warned once."""
    device = await _rotated_and_onboarded(hass, loaded, devices, home, [home])
    spec = device.spec
    invoice = verify_chain(spec.links[:1], roots=[maker.root], now=NOW)
    if attack.endswith("(rollback)"):
        presented, expected = spec.links[:1], "rollback"
    elif attack.endswith("(fork)"):
        other = issue_link(
            signer=home,
            head=invoice.head,
            owners=[fixed_key("threat someone").public_key(), home.public_key()],
            reason=LinkReason.HANDOVER,
            issued_at=NOW_TS + 5,
        )
        presented, expected = [spec.links[0], other], "fork"
    else:
        presented, expected = [maker.invoice(spec, [home], order_ref="re-issued")], "fork"
    port = await fake_device(lambda hello: bundle(hello, spec.key, spec, presented))
    device_id = spec.device_id.hex()
    kept, warned = _kept(loaded, device_id), issues(hass)

    assert await attacked(hass, loaded, device_id, port) == expected
    assert _kept(loaded, device_id) == kept
    one_warning_more(hass, warned)
    assert registered(hass, device_id) is not None


async def test_high_s_twin_of_a_known_link_is_no_fork(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
) -> None:
    """V1a: anyone can turn a P-256 co-owner's link (r, s) into (r, n - s). Without the low-S rule that
    twin would have another digest and look like a fork nobody made; it is refused as malformed, and the
    owner is not warned of a fork."""
    device = await _rotated_and_onboarded(hass, loaded, devices, P256_CO_OWNER, [P256_CO_OWNER, home])
    spec = device.spec
    twin = [spec.links[0], high_s_twin(spec.links[1])]
    port = await fake_device(lambda hello: bundle(hello, spec.key, spec, twin))
    device_id = spec.device_id.hex()
    before, warned = beliefs(loaded), issues(hass)

    assert await attacked(hass, loaded, device_id, port) == "malformed"
    assert beliefs(loaded) == before
    assert issues(hass) == warned


# --- Manufacturers, signer certificates, clocks ---------------------------------------------------------


async def test_invoice_from_another_manufacturer_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    home: PrivateKey,
    maker: Manufacturer,
    serve: Callable[[Device, list[bytes]], Awaitable[RunningDevice]],
) -> None:
    """I13: a trusted manufacturer cannot issue invoices for another trusted manufacturer's devices."""
    spec = maker.make_device("SN0220")
    device = await serve(spec, [invoice_for(spec, OTHER_MAKER, home, NOW_TS)])
    device_id = spec.device_id.hex()
    before, warned = beliefs(loaded), issues(hass)

    assert await attacked(hass, loaded, device_id, device.port) == "manufacturer_mismatch"
    assert beliefs(loaded) == before
    assert issues(hass) == warned
    assert registered(hass, device_id) is None


@pytest.mark.parametrize(
    ("issued", "expected"),
    [(NOW - 5 * YEAR, None), (NOW - YEAR, "untrusted_manufacturer")],
    ids=["while the signer was valid", "after the signer expired"],
)
async def test_invoice_is_checked_at_its_issue_time(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    home: PrivateKey,
    serve: Callable[[Device, list[bytes]], Awaitable[RunningDevice]],
    issued: dt.datetime,
    expected: str | None,
) -> None:
    """I8-I9: an invoice stays good after its signer certificate expired, if it was issued while the
    certificate was valid; one dated after the expiry is refused."""
    spec = OLD_MAKER.make_device("SN0230")
    device = await serve(spec, [invoice_for(spec, OLD_MAKER, home, int(issued.timestamp()))])
    await _expect(hass, loaded, device, expected)


async def _expect(
    hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice, expected: str | None
) -> None:
    """Onboarded (`expected` None), or refused with `expected` and nothing stored or raised."""
    device_id = device.spec.device_id.hex()
    if expected is None:
        await onboarded_at(hass, entry, device, device.port)
        return
    before, warned = beliefs(entry), issues(hass)
    assert await attacked(hass, entry, device_id, device.port) == expected
    assert beliefs(entry) == before
    assert issues(hass) == warned
    assert registered(hass, device_id) is None


@pytest.mark.parametrize(
    ("skew", "expected"),
    [
        ("an invoice 12 hours ahead", None),
        ("an invoice 2 days ahead", "untrusted_manufacturer"),
        ("an IDevID valid from 2 days ahead", "untrusted_manufacturer"),
    ],
)
async def test_clock_skew_tolerance(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    home: PrivateKey,
    maker: Manufacturer,
    serve: Callable[[Device, list[bytes]], Awaitable[RunningDevice]],
    skew: str,
    expected: str | None,
) -> None:
    """I8, P6: `issued_at` may be up to 1 day ahead of the registrar's clock; an IDevID is checked at the
    registrar's current time. A wrong clock rejects good devices rather than accepting bad ones."""
    now = dt.datetime.now(dt.UTC)  # the registrar's clock
    spec = maker.make_device("SN0240")
    issued = NOW_TS
    if skew == "an IDevID valid from 2 days ahead":
        cert = make_idevid_certificate(
            maker.root_key,
            maker.root,
            spec.key.public_key(),
            serial_number="SN0240",
            model="Lamp 1",
            now=now + dt.timedelta(days=2),
            serial=4240,
        )
        spec = Device(maker, spec.key, cert)
    else:
        issued = int((now + dt.timedelta(hours=12 if skew.startswith("an invoice 12") else 48)).timestamp())
    device = await serve(spec, [invoice_for(spec, maker, home, issued)])
    await _expect(hass, loaded, device, expected)


# --- Forged answers -------------------------------------------------------------------------------------


def genuine_bundle(spec: Device, hello: bytes) -> bytes:
    """The proof bundle the device itself would answer `hello` with (its IDevID key signs)."""
    return spec.responder().answer_hello(hello, spec.chain(), now=0.0)


def with_proof(data: bytes, proof: bytes) -> bytes:
    """A proof bundle with its proof replaced."""
    value = cbor2.loads(data)
    value[1] = proof
    return encode(value)


def recorded_receipt(spec: Device, home: PrivateKey) -> bytes:
    """A receipt the device signed for some owner's note (which anyone on the path could record)."""
    session = RegistrarHandshake(home, issued_at=NOW_TS)
    responder, chain = spec.responder(), spec.chain()
    session.read_proof(
        responder.answer_hello(session.hello, chain, now=0.0), roots=[spec.maker.root], now=NOW
    )
    return responder.accept_note(session.make_note(signer=home, issued_at=NOW_TS), chain, now=0.0).receipt


# --- Algorithm confusion, cross-message reuse, oversized input, non-deterministic encoding --------------


def _es256(header: dict[int, Any]) -> None:
    header[cose.HEADER_ALG] = -7


def _forged(kind: str, spec: Device, home: PrivateKey, hello: bytes) -> bytes:
    """What a forger's device answers `hello` with, for each way of breaking the rules."""
    real = genuine_bundle(spec, hello)
    proof = cbor2.loads(real)[1]
    if kind == "a proof claiming ES256 for an Ed25519 IDevID":
        return with_proof(real, with_protected(proof, _es256))
    if kind == "a receipt passed off as the proof":
        return with_proof(real, recorded_receipt(spec, home))
    if kind == "a bundle over 155 648 bytes":
        return b"\x00" * (MAX_BUNDLE_SIZE + 1)
    if kind == "a bundle nested 17 deep":
        return b"\x81" * 17 + b"\x00"
    if kind == "65 links in the chain":
        value = cbor2.loads(real)
        value[3] = value[3] * 65
        return encode(value)
    if kind == "bundle keys out of order":
        return non_canonical_map(cbor2.loads(real))
    assert kind == "proof payload keys out of order, validly signed"
    payload = non_canonical_map(payload_of(proof))
    return with_proof(real, sign_raw(payload, ContentType.PROOF, spec.key, kid=spec.device_id))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("a proof claiming ES256 for an Ed25519 IDevID", "unsupported_algorithm"),  # S7, V1
        ("a receipt passed off as the proof", "wrong_content_type"),  # S5-S8
        ("a bundle over 155 648 bytes", "too_large"),  # E2
        ("a bundle nested 17 deep", "malformed"),  # E4
        ("65 links in the chain", "too_large"),  # §4.3
        ("bundle keys out of order", "malformed"),  # E6
        ("proof payload keys out of order, validly signed", "malformed"),  # E6
    ],
)
async def test_forged_proof_bundle_is_refused_without_a_warning(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    maker: Manufacturer,
    home: PrivateKey,
    fake_device: Callable[[HelloHandler], Awaitable[int]],
    kind: str,
    expected: str,
) -> None:
    """A device of this home's whose answer breaks the format, the algorithm rules or a limit is refused
    with the rule's code; anyone can send such bytes, so the owner is not warned."""
    spec = maker.make_device("SN0210")
    spec.links = [maker.invoice(spec, [home])]
    port = await fake_device(lambda hello: _forged(kind, spec, home, hello))
    device_id = spec.device_id.hex()
    before, warned = beliefs(loaded), issues(hass)

    assert await attacked(hass, loaded, device_id, port) == expected
    assert beliefs(loaded) == before
    assert issues(hass) == warned
    assert registered(hass, device_id) is None

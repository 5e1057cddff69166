"""Choosing which manufacturers to trust, in AutoAdd's options: what the owner sees and what follows."""

from __future__ import annotations

from collections.abc import Callable
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.protocol.certificates import certificate_public_key, certificate_to_pem
from custom_components.autoadd.protocol.errors import UntrustedManufacturerError
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.record import DeviceRecord, Phase, Refusal
from tests.factory import NOW, Manufacturer, fixed_key
from tests.reference_device import make_running_device

from .conftest import candidate_for, registered, registrar_of


def fields(result: ConfigFlowResult) -> dict[str, Any]:
    """The form's fields by name."""
    schema = result["data_schema"]
    assert schema is not None
    return {str(marker.schema): marker for marker in schema.schema}


def placeholders(result: ConfigFlowResult) -> dict[str, str]:
    """The form's description placeholders."""
    shown = result["description_placeholders"]
    assert shown is not None
    return dict(shown)


def self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    *,
    organisation: str | None = "Other",
    ca: bool | None = True,
) -> x509.Certificate:
    """A self-signed certificate; `ca=None` leaves basicConstraints out."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "Test Root CA")]
    if organisation is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    name = x509.Name(attributes)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(77)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def pem_of(cert: x509.Certificate) -> str:
    """A certificate as the owner pastes it."""
    return certificate_to_pem(cert).decode()


def digest_of(cert: x509.Certificate) -> str:
    """A root's stored fingerprint."""
    return fingerprint(certificate_public_key(cert)).hex()


async def open_options(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    """Open AutoAdd's options and pick a menu entry."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    return await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": step})


async def paste_root(
    hass: HomeAssistant, entry: MockConfigEntry, pem: str, name: str | None = None
) -> ConfigFlowResult:
    """Open "Trust a manufacturer" and submit the pasted PEM."""
    result = await open_options(hass, entry, "add_manufacturer")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "add_manufacturer"
    user_input = {"pem": pem} if name is None else {"name": name, "pem": pem}
    return await hass.config_entries.options.async_configure(result["flow_id"], user_input)


def assert_trusted(result: ConfigFlowResult, name: str, digest: str) -> None:
    """The step ended by saying which manufacturer is trusted now, by name and root fingerprint."""
    assert result["type"] is FlowResultType.ABORT, result
    assert result["reason"] == "manufacturer_trusted"
    assert result["description_placeholders"] == {
        "name": name,
        "fingerprint": format_fingerprint(bytes.fromhex(digest)),
    }


def trusted(result: ConfigFlowResult) -> bool:
    """Whether the step ended with a manufacturer trusted."""
    return result["type"] is FlowResultType.ABORT and result["reason"] == "manufacturer_trusted"


async def revoke(hass: HomeAssistant, entry: MockConfigEntry, digests: list[str]) -> ConfigFlowResult:
    """Pick roots under "Revoke a manufacturer" and confirm."""
    result = await open_options(hass, entry, "remove_manufacturer")
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"roots": digests})
    assert result["step_id"] == "remove_manufacturer_confirm"
    return await hass.config_entries.options.async_configure(result["flow_id"], {"confirm": True})


def refused_record(device_id: str, code: str) -> DeviceRecord:
    """A device the registrar remembers refusing."""
    at = NOW.isoformat()
    return DeviceRecord(device_id=device_id, refusal=Refusal(code, "refused", at, at))


# --- trusting -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shown"), [("Other Ltd", "Other Ltd"), ("", "Other"), (None, "Other")])
async def test_trusting_a_manufacturer(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer, name: str | None, shown: str
) -> None:
    """A pasted root is trusted under the given name, or its organisation when no name is given."""
    other = Manufacturer.create("Other")
    result = await open_options(hass, loaded, "add_manufacturer")
    assert result["type"] is FlowResultType.FORM
    assert placeholders(result) == {"count": "1"}
    assert set(fields(result)) == {"name", "pem"}
    assert result["errors"] == {}

    user_input = {"pem": pem_of(other.root)} if name is None else {"name": name, "pem": pem_of(other.root)}
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)

    assert_trusted(result, shown, digest_of(other.root))
    assert loaded.options == {}  # no option changed, so no "Options saved"
    roots = registrar_of(loaded).state.roots
    assert [(root.name, root.fingerprint) for root in roots] == [
        (maker.name, digest_of(maker.root)),
        (shown, digest_of(other.root)),
    ]
    assert roots[1].certificate() == other.root
    assert registrar_of(loaded).roots == [maker.root, other.root]


async def test_a_root_without_organisation_is_named_by_its_subject(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """A root whose subject has no organisation is listed under its whole subject."""
    cert = self_signed(fixed_key("no organisation root"), organisation=None)

    result = await paste_root(hass, loaded, pem_of(cert), name="  ")

    assert trusted(result)
    assert registrar_of(loaded).state.roots[-1].name == "CN=Test Root CA"


def _device_certificate(maker: Manufacturer) -> str:
    return pem_of(maker.make_device().cert)


def _two_roots(maker: Manufacturer) -> str:
    return pem_of(Manufacturer.create("Other").root) + pem_of(Manufacturer.create("Third").root)


def _no_basic_constraints(maker: Manufacturer) -> str:
    return pem_of(self_signed(fixed_key("no constraints"), ca=None))


def _rsa_root(maker: Manufacturer) -> str:
    return pem_of(self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048)))


def _p384_root(maker: Manufacturer) -> str:
    return pem_of(self_signed(ec.generate_private_key(ec.SECP384R1())))


def _maker_root_again(maker: Manufacturer) -> str:
    return pem_of(maker.root)


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        (lambda maker: "this is not a certificate", "invalid_pem"),
        (lambda maker: "", "invalid_pem"),
        (_two_roots, "one_certificate"),
        (_device_certificate, "not_a_ca"),
        (_no_basic_constraints, "not_a_ca"),
        (_rsa_root, "unsupported_key"),
        (_p384_root, "unsupported_key"),
        (_maker_root_again, "already_trusted"),
    ],
    ids=[
        "garbage",
        "empty",
        "two_certificates",
        "device_certificate",
        "no_basic_constraints",
        "rsa",
        "p384",
        "already_trusted",
    ],
)
async def test_a_root_that_cannot_be_trusted_is_refused_with_a_reason(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer, pasted: Any, reason: str
) -> None:
    """A paste that is not one usable, new CA root shows why, keeps what was pasted and trusts nothing."""
    pem = pasted(maker)
    before = list(registrar_of(loaded).state.roots)

    result = await paste_root(hass, loaded, pem, name="Mine")

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "add_manufacturer"
    assert result["errors"] == {"pem": reason}
    assert placeholders(result) == {"count": "1"}
    suggested = {name: marker.description for name, marker in fields(result).items()}
    assert suggested == {"name": {"suggested_value": "Mine"}, "pem": {"suggested_value": pem}}
    assert registrar_of(loaded).state.roots == before

    # The owner can correct the paste in the same form.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"name": "Mine", "pem": pem_of(Manufacturer.create("Other").root)}
    )
    assert trusted(result)
    assert registrar_of(loaded).state.roots[-1].name == "Mine"


async def test_trusting_a_manufacturer_retries_devices_refused_as_unknown(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """Devices refused only because their manufacturer was unknown are tried again at once once it is
    trusted; other refusals stay (with their back-off)."""
    registrar = registrar_of(loaded)
    other = Manufacturer.create("Other")
    unknown = make_running_device(tmp_path / "other", other, [home], "OT0001", http)
    await unknown.start()
    neighbours = await devices([fixed_key("neighbour")], serial="SN0002")
    try:
        for device in (unknown, neighbours):
            registrar.announce(candidate_for(device))
        await hass.async_block_till_done(wait_background_tasks=True)
        unknown_id, neighbours_id = unknown.spec.device_id.hex(), neighbours.spec.device_id.hex()
        refusal = registrar.state.devices[unknown_id].refusal
        assert refusal is not None
        assert refusal.code == UntrustedManufacturerError.code
        before = registrar.state.devices[neighbours_id].refusal
        assert before is not None
        assert before.code == "not_owner"

        result = await paste_root(hass, loaded, pem_of(other.root))

        assert trusted(result)
        assert registrar.state.devices[unknown_id].refusal is None
        assert registrar.state.devices[neighbours_id].refusal == before
        registrar.announce(candidate_for(unknown))  # within the hour its refusal would have held it back
        await hass.async_block_till_done(wait_background_tasks=True)
        assert registered(hass, unknown_id) is not None
        assert registrar.state.devices[unknown_id].phase is Phase.ONBOARDED
        assert registrar.state.devices[unknown_id].manufacturer == "Other"
        assert unknown.device is not None
        assert unknown.device.claimed
    finally:
        await unknown.stop()


async def test_a_refused_root_does_not_retry_refused_devices(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer
) -> None:
    """Pasting a root that is already trusted leaves remembered refusals alone."""
    devices = registrar_of(loaded).state.devices
    devices["ab" * 32] = refused_record("ab" * 32, UntrustedManufacturerError.code)

    result = await paste_root(hass, loaded, pem_of(maker.root))

    assert result["errors"] == {"pem": "already_trusted"}
    refusal = devices["ab" * 32].refusal
    assert refusal is not None
    assert refusal.code == UntrustedManufacturerError.code


# --- revoking -----------------------------------------------------------------------------------------------


async def test_stop_trusting_selected_manufacturers(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer
) -> None:
    """The owner sees each trusted root and revokes the ones selected; the others stay."""
    other = Manufacturer.create("Other")
    third = Manufacturer.create("Third")
    for root, name in ((other.root, "Other"), (third.root, "Third")):
        assert trusted(await paste_root(hass, loaded, pem_of(root), name))
    registrar = registrar_of(loaded)

    result = await open_options(hass, loaded, "remove_manufacturer")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "remove_manufacturer"
    selector = fields(result)["roots"]
    config = result["data_schema"].schema[selector].config  # type: ignore[union-attr]
    options = config["options"]
    assert [option["value"] for option in options] == [
        digest_of(maker.root),
        digest_of(other.root),
        digest_of(third.root),
    ]
    shown = format_fingerprint(bytes.fromhex(digest_of(maker.root)))
    assert options[0]["label"] == f"Acme ({shown}, added 2026-06-01)"
    assert config["multiple"] is True
    assert not str(selector).startswith("required")  # nothing is ticked for the owner
    assert selector.default() == []

    # Nothing picked: said so, nothing revoked.
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["errors"] == {"roots": "pick_manufacturer"}
    assert len(registrar.state.roots) == 3

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"roots": [digest_of(maker.root), digest_of(third.root)]}
    )
    # What revoking does, before anything changes; the switch is off until the owner turns it on.
    assert result["step_id"] == "remove_manufacturer_confirm"
    assert result["description_placeholders"] == {
        "manufacturers": f"Acme ({shown}, added 2026-06-01); Third "
        f"({format_fingerprint(bytes.fromhex(digest_of(third.root)))}, added {options[2]['label'][-11:-1]})",
        "devices": "0",
    }
    assert fields(result)["confirm"].default() is False
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"confirm": False})
    assert result["errors"] == {"confirm": "not_confirmed"}
    assert len(registrar.state.roots) == 3
    assert registrar.state.revoked_roots == {}

    result = await hass.config_entries.options.async_configure(result["flow_id"], {"confirm": True})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "manufacturer_revoked"
    assert placeholders(result)["devices"] == "0"
    assert loaded.options == {}
    assert [root.name for root in registrar.state.roots] == ["Other"]
    assert registrar.roots == [other.root]
    revoked = registrar.state.revoked_roots
    assert set(revoked) == {digest_of(maker.root), digest_of(third.root)}
    assert revoked[digest_of(maker.root)]["name"] == "Acme"


async def test_nothing_to_stop_trusting(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer
) -> None:
    """With no manufacturer trusted, "Revoke a manufacturer" says so instead of showing an empty list."""
    assert (await revoke(hass, loaded, [digest_of(maker.root)]))["reason"] == "manufacturer_revoked"
    assert registrar_of(loaded).state.roots == []

    result = await open_options(hass, loaded, "remove_manufacturer")

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_manufacturers"

"""Setting AutoAdd up, seeing the home key, and choosing which manufacturers to trust: what the owner sees."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from ipaddress import ip_address
from typing import Any
from unittest.mock import MagicMock, patch

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from homeassistant import config_entries
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.http import KEY_HASS
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN, SERVICE_TYPE
from custom_components.autoadd.home_key_view import (
    QR_LINK_LIFETIME,
    QR_PATH,
    HomeKeyQrView,
    home_key_placeholders,
    home_key_svg,
)
from custom_components.autoadd.protocol.certificates import certificate_public_key, certificate_to_pem
from custom_components.autoadd.protocol.errors import UntrustedManufacturerError
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_key
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    fingerprint,
    format_fingerprint,
    key_type_of,
    private_key_from_pem,
    public_key_to_bytes,
)
from custom_components.autoadd.registrar.core import Registrar
from custom_components.autoadd.storage import HOME_KEY_STORE, HomeKeyStore, Refusal
from tests.factory import NOW, Manufacturer, fixed_key

PEM_HEADER = "-----BEGIN PRIVATE KEY-----"


# --- helpers ------------------------------------------------------------------------------------------------


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


def stored_private_key(hass_storage: dict[str, Any]) -> PrivateKey:
    """The home key as stored, after checking it is a PEM private key."""
    pem = hass_storage[HOME_KEY_STORE]["data"]["current"]["private_pem"]
    assert isinstance(pem, str)
    assert pem.startswith(PEM_HEADER)
    return private_key_from_pem(pem.encode())


def same_key(shown: str, key: PrivateKey) -> bool:
    """Whether a home key string names this private key's public key."""
    return public_key_to_bytes(parse_home_key(shown)) == public_key_to_bytes(key.public_key())


def assert_shows_home_key(result: ConfigFlowResult, key: PrivateKey) -> None:
    """The home key step shows this key's string, its fingerprint and a signed link to its QR code."""
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "home_key"
    shown = placeholders(result)
    assert shown["home_key"].startswith("AAHK1-")
    assert shown["home_key"] == format_home_key(key.public_key())
    assert same_key(shown["home_key"], key)
    assert shown["fingerprint"] == format_fingerprint(fingerprint(key.public_key()), 4)
    assert shown["qr_code"].startswith(f"![QR code]({QR_PATH}?authSig=")


def discovery(model: str | None = "Lamp 1", device_id: str = "00" * 16) -> ZeroconfServiceInfo:
    """What zeroconf hands the flow for an AutoAdd device's announcement."""
    properties = {"id": device_id, "v": "1", "st": "unclaimed"}
    if model is not None:
        properties["md"] = model
    return ZeroconfServiceInfo(
        ip_address=ip_address("192.0.2.10"),
        ip_addresses=[ip_address("192.0.2.10")],
        port=8443,
        hostname=f"autoadd-{device_id[:8]}.local.",
        type=SERVICE_TYPE,
        name=f"AutoAdd {device_id[:8]}.{SERVICE_TYPE}",
        properties=properties,
    )


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


def registrar_of(entry: MockConfigEntry) -> Registrar:
    """The loaded entry's registrar."""
    registrar = entry.runtime_data.registrar
    assert isinstance(registrar, Registrar)
    return registrar


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


# --- setting up ---------------------------------------------------------------------------------------------


async def test_user_form_offers_a_key_type_when_there_is_no_home_key(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Setting up for the first time asks for the home's name and the type of key to make."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert placeholders(result) == {"existing": "no"}
    shown = fields(result)
    assert set(shown) == {CONF_HOME_NAME, CONF_KEY_TYPE}
    assert shown[CONF_HOME_NAME].default() == hass.config.location_name
    assert shown[CONF_KEY_TYPE].default() == KeyType.ED25519.value
    assert HOME_KEY_STORE not in hass_storage  # nothing is made before the owner submits


@pytest.mark.parametrize("key_type", list(KeyType))
async def test_setting_up_makes_a_home_key_and_shows_it(
    hass: HomeAssistant, hass_storage: dict[str, Any], key_type: KeyType
) -> None:
    """Submitting makes a home key of the chosen type, shows its string, then creates the entry."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: key_type.value}
    )

    key = stored_private_key(hass_storage)
    assert key_type_of(key) is key_type
    assert_shows_home_key(result, key)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Cottage"
    assert result["data"] == {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: key_type.value}
    entry = result["result"]
    assert entry.data == {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: key_type.value}
    assert PEM_HEADER not in repr(dict(entry.data))
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert stored_private_key(hass_storage).public_key() == key.public_key()  # not replaced on setup


async def test_setting_up_again_keeps_the_stored_home_key(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """A home key left from an earlier setup is kept: no key type is asked and no new key is made."""
    stored_before = dict(hass_storage_with_home[HOME_KEY_STORE]["data"])

    with patch.object(HomeKeyStore, "async_create", side_effect=AssertionError("new key made")) as create:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "user"
        assert placeholders(result) == {"existing": "yes"}
        assert set(fields(result)) == {CONF_HOME_NAME}

        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_HOME_NAME: "Home"})
        assert_shows_home_key(result, home)

        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        await hass.async_block_till_done()
    create.assert_not_called()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Home"
    assert result["data"] == {CONF_HOME_NAME: "Home", CONF_KEY_TYPE: "ed25519"}
    assert hass_storage_with_home[HOME_KEY_STORE]["data"] == stored_before


async def test_a_second_registrar_is_refused(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """With AutoAdd set up, starting another setup stops at once: one registrar per Home Assistant."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# --- discovery ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "title"), [("Lamp 1", "Lamp 1"), (None, "AutoAdd")])
async def test_a_discovered_device_offers_to_set_up_autoadd(
    hass: HomeAssistant, hass_storage: dict[str, Any], model: str | None, title: str
) -> None:
    """A device on the network offers setup, titled with its model; confirming leads to the user step."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(model)
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"] == {"model": title}
    assert flow["context"]["unique_id"] == DOMAIN

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert set(fields(result)) == {CONF_HOME_NAME, CONF_KEY_TYPE}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOME_NAME: "Flat", CONF_KEY_TYPE: "ed25519"}
    )
    assert_shows_home_key(result, stored_private_key(hass_storage))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_HOME_NAME: "Flat", CONF_KEY_TYPE: "ed25519"}


async def test_more_devices_do_not_offer_setup_twice(hass: HomeAssistant) -> None:
    """While one setup offer is open, another device's announcement adds no second offer."""
    first = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(device_id="01" * 16)
    )
    assert first["type"] is FlowResultType.FORM

    second = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery(device_id="02" * 16)
    )

    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"
    assert len(hass.config_entries.flow.async_progress_by_handler(DOMAIN)) == 1


async def test_no_setup_offer_once_autoadd_is_set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """With a registrar already set up, a discovered device offers nothing (the registrar adds it)."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=discovery()
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


# --- options: the home key ----------------------------------------------------------------------------------


async def test_options_menu(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """The options offer the home key, its rotation, hand-overs, manufacturers, blocks and settings."""
    result = await hass.config_entries.options.async_init(loaded.entry_id)

    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    assert result["menu_options"] == [
        "home_key",
        "rotate_home_key",
        "hand_over",
        "pending_hand_overs",
        "accept_transfer",
        "add_manufacturer",
        "remove_manufacturer",
        "block_device",
        "settings",
    ]


async def test_options_show_the_home_key(
    hass: HomeAssistant, loaded: MockConfigEntry, home: PrivateKey
) -> None:
    """The home key can be seen again; closing it changes nothing."""
    result = await open_options(hass, loaded, "home_key")
    assert_shows_home_key(result, home)

    result = await hass.config_entries.options.async_configure(result["flow_id"], {})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {}
    assert loaded.options == {}


# --- options: trusting manufacturers ------------------------------------------------------------------------


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

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {}
    roots = registrar_of(loaded).store.data.roots
    assert [(root.name, root.fingerprint) for root in roots] == [
        (maker.name, digest_of(maker.root)),
        (shown, digest_of(other.root)),
    ]
    assert roots[1].certificate() == other.root


async def test_a_root_without_organisation_is_named_by_its_subject(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """A root whose subject has no organisation is listed under its whole subject."""
    cert = self_signed(fixed_key("no organisation root"), organisation=None)

    result = await paste_root(hass, loaded, pem_of(cert), name="  ")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert registrar_of(loaded).store.data.roots[-1].name == "CN=Test Root CA"


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
    before = list(registrar_of(loaded).store.data.roots)

    result = await paste_root(hass, loaded, pem, name="Mine")

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "add_manufacturer"
    assert result["errors"] == {"pem": reason}
    assert placeholders(result) == {"count": "1"}
    suggested = {name: marker.description for name, marker in fields(result).items()}
    assert suggested == {"name": {"suggested_value": "Mine"}, "pem": {"suggested_value": pem}}
    assert registrar_of(loaded).store.data.roots == before

    # The owner can correct the paste in the same form.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"name": "Mine", "pem": pem_of(Manufacturer.create("Other").root)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert registrar_of(loaded).store.data.roots[-1].name == "Mine"


async def test_trusting_a_manufacturer_retries_devices_refused_as_unknown(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """Devices refused only because their manufacturer was unknown are forgotten, so they are tried again."""
    refused = registrar_of(loaded).store.data.refused
    at = NOW.isoformat()
    refused["unknown-maker"] = Refusal(
        "unknown-maker", UntrustedManufacturerError.code, "unknown root", at, at
    )
    refused["forged"] = Refusal("forged", "bad_signature", "invoice signature does not verify", at, at)

    result = await paste_root(hass, loaded, pem_of(Manufacturer.create("Other").root))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert set(refused) == {"forged"}


async def test_a_refused_root_does_not_retry_refused_devices(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer
) -> None:
    """Pasting a root that is already trusted leaves remembered refusals alone."""
    refused = registrar_of(loaded).store.data.refused
    at = NOW.isoformat()
    refused["unknown-maker"] = Refusal(
        "unknown-maker", UntrustedManufacturerError.code, "unknown root", at, at
    )

    result = await paste_root(hass, loaded, pem_of(maker.root))

    assert result["errors"] == {"pem": "already_trusted"}
    assert set(refused) == {"unknown-maker"}


async def test_stop_trusting_selected_manufacturers(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer
) -> None:
    """The owner sees each trusted root and stops trusting the ones selected; the others stay."""
    other = Manufacturer.create("Other")
    third = Manufacturer.create("Third")
    registrar = registrar_of(loaded)
    registrar.async_add_root(other.root, "Other")
    registrar.async_add_root(third.root, "Third")

    result = await open_options(hass, loaded, "remove_manufacturer")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "remove_manufacturer"
    selector = fields(result)["roots"]
    options = result["data_schema"].schema[selector].config["options"]  # type: ignore[union-attr]
    assert [option["value"] for option in options] == [
        digest_of(maker.root),
        digest_of(other.root),
        digest_of(third.root),
    ]
    assert options[0]["label"] == f"Acme ({digest_of(maker.root)[:16]}, added 2026-06-01)"
    assert result["data_schema"].schema[selector].config["multiple"] is True  # type: ignore[union-attr]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"roots": [digest_of(maker.root), digest_of(third.root)]}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {}
    assert [root.name for root in registrar.store.data.roots] == ["Other"]


async def test_nothing_to_stop_trusting(
    hass: HomeAssistant, loaded: MockConfigEntry, maker: Manufacturer
) -> None:
    """With no manufacturer trusted, "Stop trusting" says so instead of showing an empty list."""
    registrar_of(loaded).async_remove_root(digest_of(maker.root))

    result = await open_options(hass, loaded, "remove_manufacturer")

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_manufacturers"


# --- the home key's QR code ---------------------------------------------------------------------------------


def test_no_qr_code_without_the_web_server(hass: HomeAssistant, home: PrivateKey) -> None:
    """Without the web server there is no QR image, only the string and the fingerprint."""
    text = format_home_key(home.public_key())
    digest = fingerprint(home.public_key())
    assert "http" not in hass.config.components

    with patch.object(hass, "http", None):
        shown = home_key_placeholders(hass, text, digest)

    assert shown == {"home_key": text, "fingerprint": format_fingerprint(digest, 4), "qr_code": ""}


def test_qr_code_is_a_signed_link_to_the_view(hass: HomeAssistant, home: PrivateKey) -> None:
    """With the web server the QR code is a signed image link; the view is registered only once."""
    text = format_home_key(home.public_key())
    digest = fingerprint(home.public_key())
    http = MagicMock()
    with (
        patch.object(hass, "http", http),
        patch("custom_components.autoadd.home_key_view.async_sign_path", return_value="/signed") as sign,
    ):
        first = home_key_placeholders(hass, text, digest)
        second = home_key_placeholders(hass, text, digest)

    assert (
        first
        == second
        == {
            "home_key": text,
            "fingerprint": format_fingerprint(digest, 4),
            "qr_code": "![QR code](/signed)",
        }
    )
    http.register_view.assert_called_once()
    view = http.register_view.call_args.args[0]
    assert isinstance(view, HomeKeyQrView)
    assert view.url == QR_PATH
    assert view.requires_auth is True
    sign.assert_called_with(hass, QR_PATH, QR_LINK_LIFETIME)
    assert sign.call_count == 2  # a fresh link each time the key is shown


async def test_options_home_key_shows_the_qr_code(
    hass: HomeAssistant, loaded: MockConfigEntry, home: PrivateKey
) -> None:
    """With the web server running, the home key step in the options carries the QR image."""
    with (
        patch.object(hass, "http", MagicMock()),
        patch("custom_components.autoadd.home_key_view.async_sign_path", return_value="/signed"),
    ):
        result = await open_options(hass, loaded, "home_key")

    assert placeholders(result)["qr_code"] == "![QR code](/signed)"
    assert placeholders(result)["home_key"] == format_home_key(home.public_key())


async def test_the_signed_qr_link_serves_the_home_key(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    home: PrivateKey,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The QR link shown in the options opens the home key's QR code; without the signature it does not."""
    result = await open_options(hass, loaded, "home_key")
    link = placeholders(result)["qr_code"].removeprefix("![QR code](").removesuffix(")")
    client = await hass_client_no_auth()

    response = await client.get(link)
    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/svg+xml"
    assert await response.read() == home_key_svg(format_home_key(home.public_key()))

    response = await client.get(QR_PATH)
    assert response.status == HTTPStatus.UNAUTHORIZED


def test_home_key_svg(home: PrivateKey) -> None:
    """The QR code is an SVG image."""
    svg = home_key_svg(format_home_key(home.public_key()))

    assert isinstance(svg, bytes)
    assert b"<svg" in svg


async def test_view_serves_the_stored_home_key(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """The view serves the stored home key's QR code as an uncached SVG."""
    request = MagicMock()
    request.app = {KEY_HASS: hass}

    response = await HomeKeyQrView().get(request)

    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.body == home_key_svg(format_home_key(home.public_key()))


async def test_view_without_a_home_key_is_not_found(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Before any home key is made the view has nothing to show."""
    request = MagicMock()
    request.app = {KEY_HASS: hass}

    response = await HomeKeyQrView().get(request)

    assert response.status == HTTPStatus.NOT_FOUND


async def test_options_need_a_running_registrar(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Options on an entry that did not load (no home key) abort with a clear reason instead of failing."""
    await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"

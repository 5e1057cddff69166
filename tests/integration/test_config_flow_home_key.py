"""The home key after setup: shown again in the options, with a QR code served to the signed-in owner."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.http import KEY_HASS
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from custom_components.autoadd.home_key_view import (
    QR_LINK_LIFETIME,
    QR_PATH,
    HomeKeyQrView,
    home_key_placeholders,
    home_key_svg,
)
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint, format_fingerprint
from tests.factory import fixed_key

from .conftest import registrar_of
from .test_config_flow import assert_shows_home_key, open_options, placeholders


def view_request(hass: HomeAssistant) -> MagicMock:
    """A request as the HTTP server hands it to a view."""
    request = MagicMock()
    request.app = {KEY_HASS: hass}
    return request


async def test_options_show_the_home_key(
    hass: HomeAssistant, loaded: MockConfigEntry, home: PrivateKey
) -> None:
    """The home key can be seen again, on a page with only a Close button; seeing it changes nothing."""
    result = await open_options(hass, loaded, "home_key")
    assert_shows_home_key(result, home)
    assert result["type"] is FlowResultType.ABORT  # no Submit, no "Options saved"
    assert loaded.options == {}
    assert registrar_of(loaded).home.fingerprint == fingerprint(home.public_key())


# --- the home key's QR code ---------------------------------------------------------------------------------


def test_no_qr_code_without_the_web_server(hass: HomeAssistant, home: PrivateKey) -> None:
    """Without the web server there is no QR image, only the string and the fingerprint."""
    text = format_home_key(home.public_key())
    digest = fingerprint(home.public_key())
    assert "http" not in hass.config.components

    with patch.object(hass, "http", None):
        shown = home_key_placeholders(hass, text, digest)

    assert shown == {"home_key": text, "fingerprint": format_fingerprint(digest), "qr_code": ""}


def test_qr_code_is_a_signed_link_to_the_view(hass: HomeAssistant, home: PrivateKey) -> None:
    """With the web server the QR code is a signed image link (the view is registered at load)."""
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
            "fingerprint": format_fingerprint(digest),
            "qr_code": "![QR code](/signed)",
        }
    )
    http.register_view.assert_not_called()  # a route added to a started web server fails
    assert HomeKeyQrView.url == QR_PATH
    assert HomeKeyQrView.requires_auth is True
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
    """The QR code is an SVG image, different for different keys."""
    svg = home_key_svg(format_home_key(home.public_key()))

    assert isinstance(svg, bytes)
    assert b"<svg" in svg
    assert svg != home_key_svg(format_home_key(fixed_key("another home").public_key()))


async def test_view_serves_the_stored_home_key(
    hass: HomeAssistant, hass_storage_with_home: dict[str, Any], home: PrivateKey
) -> None:
    """The view serves the stored home key's QR code as an uncached SVG."""
    response = await HomeKeyQrView().get(view_request(hass))

    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.body == home_key_svg(format_home_key(home.public_key()))


async def test_view_serves_the_new_key_after_a_rotation(
    hass: HomeAssistant, loaded: MockConfigEntry, home: PrivateKey
) -> None:
    """Once the home key is rotated, the QR code shows the new key (the one to give shops)."""
    await hass.services.async_call(DOMAIN, "rotate_home_key", {}, blocking=True)
    new = registrar_of(loaded).home
    assert new.fingerprint != fingerprint(home.public_key())

    response = await HomeKeyQrView().get(view_request(hass))

    assert response.status == HTTPStatus.OK
    assert response.body == home_key_svg(format_home_key(new.key.public_key()))
    result = await open_options(hass, loaded, "home_key")
    assert placeholders(result)["home_key"] == format_home_key(new.key.public_key())


async def test_view_without_a_home_key_is_not_found(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Before any home key is made the view has nothing to show."""
    response = await HomeKeyQrView().get(view_request(hass))

    assert response.status == HTTPStatus.NOT_FOUND


async def test_the_set_up_flow_shows_a_qr_code_that_loads(
    hass: HomeAssistant, hass_storage: dict[str, Any], hass_client_no_auth: ClientSessionGenerator
) -> None:
    """The first set-up shows the key before the integration itself is set up: its QR code view is
    registered by then (the browser test found it missing)."""
    assert await async_setup_component(hass, "http", {})
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOME_NAME: "Cottage", CONF_KEY_TYPE: KeyType.ED25519.value, "make_recovery_key": False},
    )
    assert result["step_id"] == "home_key"
    link = placeholders(result)["qr_code"].removeprefix("![QR code](").removesuffix(")")
    client = await hass_client_no_auth()
    response = await client.get(link)
    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/svg+xml"

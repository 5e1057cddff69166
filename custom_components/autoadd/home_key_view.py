"""Showing the home key: its string, its fingerprint and a QR code the owner can show a shop."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
import io

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
import segno

from .protocol.home_key import format_home_key
from .protocol.keys import format_fingerprint
from .storage import async_load_home_keys

QR_PATH = "/api/autoadd/home_key_qr.svg"
QR_LINK_LIFETIME = timedelta(minutes=30)


def home_key_svg(text: str) -> bytes:
    """The home key string as an SVG QR code (alphanumeric mode, medium error correction)."""
    qr = segno.make_qr(text, error="m")
    buffer = io.BytesIO()
    # A standalone SVG document (with its XML namespace): browsers render nothing else as an image.
    qr.save(buffer, kind="svg", scale=6, border=2, xmldecl=False)
    return buffer.getvalue()


class HomeKeyQrView(HomeAssistantView):
    """Serves the home key's QR code to the signed-in owner (the string is public, the view is not)."""

    url = QR_PATH
    name = "api:autoadd:home_key_qr"
    requires_auth = True

    async def get(self, request: web.Request) -> web.Response:
        """The current home key as SVG."""
        hass = request.app[KEY_HASS]
        keys = await async_load_home_keys(hass)
        if keys is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        svg = home_key_svg(format_home_key(*keys.owner_keys()))
        return web.Response(body=svg, content_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def home_key_placeholders(hass: HomeAssistant, text: str, digest: bytes) -> dict[str, str]:
    """Description placeholders: the string, the fingerprint, and a QR image when the web server runs."""
    qr = ""
    if hass.http is not None:
        qr = f"![QR code]({async_sign_path(hass, QR_PATH, QR_LINK_LIFETIME)})"
    return {"home_key": text, "fingerprint": format_fingerprint(digest), "qr_code": qr}

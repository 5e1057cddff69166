"""Showing a new recovery key once: its string, and a QR code served from memory to the signed-in owner
for as long as the flow that made it is open (never written anywhere, never served after)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
import secrets

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .home_key_view import home_key_svg

QR_PATH = "/api/autoadd/recovery_qr/{token}"
LINK_LIFETIME = timedelta(minutes=15)
#: The strings shown right now, by one-time token (hass.data; memory only).
_SHOWN = "autoadd_recovery_shown"


def show(hass: HomeAssistant, text: str) -> tuple[str, str]:
    """Keep `text` for its QR code; returns the token (to forget it) and the markdown image, if the web
    server runs."""
    token = secrets.token_urlsafe(16)
    hass.data.setdefault(_SHOWN, {})[token] = text
    qr = ""
    if hass.http is not None:
        qr = f"![QR code]({async_sign_path(hass, QR_PATH.format(token=token), LINK_LIFETIME)})"
    return token, qr


def forget(hass: HomeAssistant, token: str | None) -> None:
    """The flow moved on: the string is no longer served."""
    if token is not None:
        hass.data.get(_SHOWN, {}).pop(token, None)


class RecoveryQrView(HomeAssistantView):
    """The QR code of a recovery key string being shown to the owner (no cache, gone with its flow)."""

    url = QR_PATH
    name = "api:autoadd:recovery_qr"
    requires_auth = True

    async def get(self, request: web.Request, token: str) -> web.Response:
        """The string as SVG, while its flow shows it."""
        text = request.app[KEY_HASS].data.get(_SHOWN, {}).get(token)
        if text is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return web.Response(
            body=home_key_svg(text), content_type="image/svg+xml", headers={"Cache-Control": "no-store"}
        )

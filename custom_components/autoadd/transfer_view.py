"""The transfer file of a signed hand-over, for the owner to download and give the buyer."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
import segno

from .const import DOMAIN
from .protocol.transport import MEDIA_TYPE
from .registrar.handover import transfer_file
from .registrar.ports import StepError
from .registrar.text import Place, shown

TRANSFER_PATH = "/api/autoadd/transfer/{device_id}"
LINK_LIFETIME = timedelta(minutes=30)
#: A QR code in byte mode holds at most 2 953 bytes (version 40, low error correction).
MAX_QR_BYTES = 2953


class TransferFileView(HomeAssistantView):
    """Serves a pending hand-over's transfer file to a signed-in administrator (it is part of a hand-over)."""

    url = TRANSFER_PATH
    name = "api:autoadd:transfer"
    requires_auth = True

    async def get(self, request: web.Request, device_id: str) -> web.Response:
        """The transfer file, as an attachment."""
        if not request[KEY_HASS_USER].is_admin:
            return web.Response(status=HTTPStatus.FORBIDDEN)
        hass = request.app[KEY_HASS]
        for entry in hass.config_entries.async_entries(DOMAIN):
            if entry.state is not ConfigEntryState.LOADED:
                continue
            try:
                data = transfer_file(entry.runtime_data.registrar, device_id)
            except StepError:
                break
            name = shown(device_id[:12], Place.FILENAME)  # from the URL: never a quote or a header break
            return web.Response(
                body=data,
                content_type=MEDIA_TYPE,
                headers={
                    "Content-Disposition": f'attachment; filename="autoadd-transfer-{name}.cbor"',
                    "Cache-Control": "no-store",
                },
            )
        return web.Response(status=HTTPStatus.NOT_FOUND)


def transfer_placeholders(hass: HomeAssistant, device_id: str, data: bytes) -> dict[str, str]:
    """A signed download link and, when the file fits, a QR code of it (as an inline SVG data URL)."""
    link = ""
    qr = ""
    if hass.http is not None:
        link = async_sign_path(hass, TRANSFER_PATH.format(device_id=device_id), LINK_LIFETIME)
    if len(data) <= MAX_QR_BYTES:
        qr = f"![QR code]({segno.make_qr(data, error='l').svg_data_uri(scale=3)})"
    return {"download": link, "qr_code": qr, "size": str(len(data))}

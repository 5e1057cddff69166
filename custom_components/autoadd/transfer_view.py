"""The transfer file of a signed hand-over, for the owner to download and give the buyer (as a file: the
buyer's Home Assistant takes it as an upload, so no QR code of its bytes is offered)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import DOMAIN
from .protocol.transport import MEDIA_TYPE
from .registrar.handover import transfer_file
from .registrar.ports import StepError
from .registrar.text import Place, shown

TRANSFER_PATH = "/api/autoadd/transfer/{device_id}"
#: How long a download link works; every step that lists a pending hand-over signs a new one.
LINK_LIFETIME = timedelta(minutes=30)


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


def transfer_link(hass: HomeAssistant, device_id: str) -> str:
    """A signed download link of a pending hand-over's transfer file ("" without a web server)."""
    link = ""
    if hass.http is not None:  # not in every test harness, whatever its type says
        link = async_sign_path(hass, TRANSFER_PATH.format(device_id=device_id), LINK_LIFETIME)
    return link

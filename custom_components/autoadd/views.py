"""The integration's HTTP views (the home key's and a new recovery key's QR codes, a hand-over's transfer
file), registered once.

Registered when the integration loads, and at the latest when the set-up flow first shows the home key
(the flow runs before the integration's own set-up).
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback

from .home_key_view import HomeKeyQrView
from .recovery_view import RecoveryQrView
from .transfer_view import TransferFileView

_REGISTERED = "autoadd_views_registered"


@callback
def async_register_views(hass: HomeAssistant) -> None:
    """Register the views unless that is done already (or there is no web server)."""
    if hass.http is None or hass.data.get(_REGISTERED):
        return
    hass.http.register_view(HomeKeyQrView())
    hass.http.register_view(RecoveryQrView())
    hass.http.register_view(TransferFileView())
    hass.data[_REGISTERED] = True

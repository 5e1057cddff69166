"""Whether a member answers: what the owner sees as available or not. Nothing here moves a record.

A member is unreachable once an attempt at its proven address got no answer (this home's own
observation, not the device's words), and reachable again once it proves itself. Its mDNS record going
away (a goodbye, or records that expired) is no evidence either way, as anyone can send a goodbye: it
only makes the registrar look, with a check at the proven address. Each change is logged once, at info
level, as Home Assistant's quality scale asks. Kept in memory only: after a restart every member starts
out reachable, and its check at start says otherwise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import session  # a module, not its names: session.py imports this one
from .record import Address
from .text import Place, shown

if TYPE_CHECKING:
    from .core import Registrar

_LOGGER = logging.getLogger(__name__)


def no_answer(registrar: Registrar, device_id: str, address: Address) -> None:
    """An attempt got no answer at `address`: a member there is unreachable from now on."""
    record = registrar.state.devices.get(device_id)
    if record is None or not record.is_member or record.address != address:
        return  # an unknown id, or an address the device never proved: says nothing about the device
    if device_id in registrar.unreachable:
        return
    registrar.unreachable.add(device_id)
    _LOGGER.info(
        "%s %s does not answer at %s port %s; shown offline until it proves itself again",
        shown(record.model or "AutoAdd device", Place.LOG),
        device_id[:12],
        shown(address.host, Place.LOG),
        address.port,
    )
    registrar.owner.device_updated(device_id)


def proved(registrar: Registrar, device_id: str) -> None:
    """The device proved itself: it answers."""
    if device_id not in registrar.unreachable:
        return
    registrar.unreachable.discard(device_id)
    record = registrar.state.devices.get(device_id)
    _LOGGER.info(
        "%s %s answers again",
        shown(record.model if record is not None and record.model else "AutoAdd device", Place.LOG),
        device_id[:12],
    )
    registrar.owner.device_updated(device_id)


def out_of_sight(registrar: Registrar, device_id: str) -> None:
    """The device's announcement went away: check a member at its proven address (one attempt at a
    time per device, so a flood of goodbyes costs at most one check per member)."""
    record = registrar.state.devices.get(device_id)
    if record is not None and record.is_member and record.address is not None:
        registrar.try_now(device_id, session.Purpose.CHECK)


def reachable(registrar: Registrar, device_id: str) -> bool:
    """Whether the device is to be shown available (a member that did not stop answering)."""
    return device_id not in registrar.unreachable

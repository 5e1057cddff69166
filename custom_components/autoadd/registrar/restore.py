"""Restoring a home with its recovery key (§14.8): while the owner lets this registrar hold the recovery
key's private part, a device whose head names the recovery key and none of this home's keys is moved to
the current home key by a rotation link the recovery key signs (verdict.py, rotation.py); finishing
forgets the private part. Nothing else here: the recovery key is a co-owner to every other rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.autoadd.protocol.errors import NotOwnerError
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint

from .keys import RecoveryKey, utcnow
from .ports import PersistError, StepError
from .record import Phase

if TYPE_CHECKING:
    from .core import Registrar
    from .keys import HomeKeys


def hold(keys: HomeKeys, key: PrivateKey) -> None:
    """Hold the recovery key's private part (the caller writes the keys before anything uses it)."""
    known = keys.recovery
    if known is not None and known.fingerprint != fingerprint(key.public_key()):
        raise StepError("not_this_home")
    created = known.created_at if known is not None else utcnow().isoformat()
    # A key this home did not know is confirmed only once it moves one of its devices (rotation.py).
    keys.recovery = RecoveryKey(
        public=key.public_key(), created_at=created, key=key, confirmed=known is not None and known.confirmed
    )


async def start_restore(registrar: Registrar, key: PrivateKey) -> None:
    """Hold the recovery key on disk; devices whose key is lost are tried now, and devices refused as
    someone else's (they may be this home's under a lost key) when they are next announced."""
    keys = registrar.keys
    previous = keys.recovery
    hold(keys, key)
    try:
        await registrar.persistence.save_keys(keys)
    except PersistError as err:
        keys.recovery = previous
        raise StepError("storage_failed") from err
    lost: list[str] = []
    for record in registrar.state.devices.values():
        if record.phase is Phase.KEY_LOST:
            lost.append(record.device_id)
        elif (
            record.refusal is not None and record.refusal.code == NotOwnerError.code and not record.is_member
        ):
            record.refusal = None  # its next announcement is tried, with the recovery key at hand
            registrar.changed(record.device_id)
    for device_id in lost:
        registrar.try_now(device_id)


async def finish_restore(registrar: Registrar) -> bool:
    """Forget the recovery key's private part; the public part stays (it is still a co-owner), unless the
    key moved none of this home's devices (typed by mistake, another home's): then it is forgotten
    whole. Returns whether it is kept."""
    keys = registrar.keys
    recovery = keys.recovery
    if recovery is None or recovery.key is None:
        raise StepError("not_restoring")
    held = recovery.key
    recovery.key = None
    keys.recovery = recovery if recovery.confirmed else None
    try:
        await registrar.persistence.save_keys(keys)
    except PersistError as err:
        recovery.key = held
        keys.recovery = recovery
        raise StepError("storage_failed") from err
    return keys.recovery is not None

"""The registrar: turns discovered candidates into onboarded devices, through the protocol core.

One attempt per device at a time, at most `MAX_CONCURRENT` handshakes at once, a timeout on every request.
A transient failure (no answer, rate limited) is retried with exponential backoff; a verification failure
is remembered and not retried before its back-off (an hour, growing with each refusal) has passed, so a
bad device cannot cause a retry storm. Nothing is added unless the whole handshake succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import hashlib
import logging
from typing import Any

from cryptography import x509
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .const import (
    DOMAIN,
    EVENT_DEVICE_ONBOARDED,
    SIGNAL_DEVICE_UPDATED,
)
from .device_client import DeviceClient, DeviceUnreachableError
from .protocol.chain import compare_with_known
from .protocol.errors import AutoAddError, NotOwnerError, UntrustedManufacturerError, WrongDeviceError
from .protocol.handshake import ProvenDevice, RegistrarHandshake
from .protocol.keys import format_fingerprint
from .protocol.transport import RATE_LIMITED, PeerError
from .storage import DeviceRecord, HomeKey, Refusal, RegistrarStore, TrustedRoot, b64
from .trust import RootError

_LOGGER = logging.getLogger(__name__)

MAX_CONCURRENT = 8
REQUEST_TIMEOUT = 10.0
RETRY_BASE = 15.0
RETRY_MAX = 15 * 60.0
REFUSAL_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A device as mDNS announced it: untrusted until the handshake proves it."""

    device_id: str
    host: str
    port: int
    claimed: bool
    txt: dict[str, str]


class Registrar:
    """The home registrar, one per config entry (and Home Assistant instance)."""

    def __init__(self, hass: HomeAssistant, entry_id: str, home: HomeKey, store: RegistrarStore) -> None:
        """Bind to the home key and the loaded store."""
        self.hass = hass
        self.entry_id = entry_id
        self.home = home
        self.store = store
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT)
        self._in_progress: set[str] = set()
        self._retries: dict[str, CALLBACK_TYPE] = {}
        self._attempts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.active_handshakes = 0
        self.peak_handshakes = 0
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------------------------

    @callback
    def async_start(self) -> None:
        """Retry every device that was mid-handshake when Home Assistant stopped."""
        for device_id, where in list(self.store.data.pending.items()):
            self.async_candidate(
                Candidate(device_id, where["host"], where["port"], claimed=False, txt={}), force=True
            )

    async def async_stop(self) -> None:
        """Cancel retries and running attempts; pending work stays stored for the next start."""
        self._closed = True
        for cancel in self._retries.values():
            cancel()
        self._retries.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.async_save()

    # --- candidates ---------------------------------------------------------------------------------------

    @property
    def roots(self) -> list[x509.Certificate]:
        """The trusted manufacturer root certificates."""
        return [root.certificate() for root in self.store.data.roots]

    @callback
    def async_candidate(self, candidate: Candidate, *, force: bool = False) -> None:
        """Consider a device seen on the network; start an attempt if one is due."""
        if self._closed:
            return
        known = self.store.data.devices.get(candidate.device_id)
        if known is not None and candidate.claimed and not force:
            self._seen(known, candidate)
            return
        if candidate.device_id in self.store.data.removed:
            if candidate.claimed and not force:
                return  # the owner removed it; it comes back only once reset or handed over
            del self.store.data.removed[candidate.device_id]
        refusal = self.store.data.refused.get(candidate.device_id)
        if (
            refusal is not None
            and not force
            and dt_util.utcnow() < datetime.fromisoformat(refusal.retry_after)
        ):
            return
        if candidate.device_id in self._in_progress:
            return
        self._in_progress.add(candidate.device_id)
        task = self.hass.async_create_background_task(
            self._attempt(candidate), f"autoadd onboarding {candidate.device_id[:12]}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @callback
    def _seen(self, record: DeviceRecord, candidate: Candidate) -> None:
        """A known, claimed device announced itself: follow its address and note when it was seen."""
        record.last_seen = dt_util.utcnow().isoformat()
        if (record.host, record.port) != (candidate.host, candidate.port):
            _LOGGER.debug("Device %s moved to %s:%s", record.device_id[:12], candidate.host, candidate.port)
            record.host, record.port = candidate.host, candidate.port
        self.store.async_schedule_save()
        async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, record.device_id)

    async def _attempt(self, candidate: Candidate) -> None:
        device_id = candidate.device_id
        keep_pending = False
        try:
            self.store.data.pending[device_id] = {"host": candidate.host, "port": candidate.port}
            await self.store.async_save()
            async with self._semaphore:
                self.active_handshakes += 1
                self.peak_handshakes = max(self.peak_handshakes, self.active_handshakes)
                try:
                    await self._handshake(candidate)
                finally:
                    self.active_handshakes -= 1
        except DeviceUnreachableError as err:
            self._schedule_retry(candidate, err)
        except PeerError as err:
            if err.peer_code == RATE_LIMITED:
                self._schedule_retry(candidate, err)
            else:
                self._refuse(candidate, err)
        except AutoAddError as err:
            self._refuse(candidate, err)
        except asyncio.CancelledError:
            keep_pending = True  # stopped mid-handshake: tried again at the next start
            raise
        else:
            self._attempts.pop(device_id, None)
            self.store.data.refused.pop(device_id, None)
            ir.async_delete_issue(self.hass, DOMAIN, f"suspicious_{device_id}")
        finally:
            self._in_progress.discard(device_id)
            if device_id not in self._retries and not keep_pending:
                self.store.data.pending.pop(device_id, None)
            self.store.async_schedule_save()

    async def _handshake(self, candidate: Candidate) -> None:
        client = DeviceClient(
            async_get_clientsession(self.hass), candidate.host, candidate.port, timeout=REQUEST_TIMEOUT
        )
        session = RegistrarHandshake(self.home.key, issued_at=int(dt_util.utcnow().timestamp()))
        bundle = await client.hello(session.hello)
        proven = session.read_proof(bundle, roots=self.roots, now=dt_util.utcnow())
        if proven.device_id.hex() != candidate.device_id:
            raise WrongDeviceError(
                f"the device announced {candidate.device_id} but proved {proven.device_id.hex()}"
            )
        known = self.store.data.devices.get(proven.device_id.hex())
        if known is not None:
            compare_with_known([link_digest(link) for link in known.links], proven.chain.digests)
        if not proven.chain.head.is_owner(self.home.key.public_key()):
            raise NotOwnerError("the device's chain does not name this home as a current owner")
        note = session.make_note(signer=self.home.key, issued_at=int(dt_util.utcnow().timestamp()))
        session.read_receipt(await client.note(note))
        self._onboarded(proven, candidate)

    @callback
    def _onboarded(self, proven: ProvenDevice, candidate: Candidate) -> None:
        identity = proven.identity
        device_id = identity.device_id.hex()
        now = dt_util.utcnow().isoformat()
        previous = self.store.data.devices.get(device_id)
        record = DeviceRecord(
            device_id=device_id,
            manufacturer=identity.manufacturer,
            model=proven.chain.model or identity.model or "AutoAdd device",
            serial_number=identity.serial_number,
            chain=[b64(link) for link in proven.chain.links],
            onboarded_at=previous.onboarded_at if previous else now,
            last_seen=now,
            host=candidate.host,
            port=candidate.port,
            owners=[fp.hex() for fp in proven.chain.head.owner_fingerprints],
        )
        self.store.data.devices[device_id] = record
        device = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry_id,
            identifiers={(DOMAIN, device_id)},
            manufacturer=record.manufacturer,
            model=record.model,
            name=f"{record.model} {record.serial_number or device_id[:8]}",
            serial_number=record.serial_number,
        )
        _LOGGER.info("Onboarded %s %s (%s)", record.manufacturer, record.model, device_id[:12])
        self.hass.bus.async_fire(
            EVENT_DEVICE_ONBOARDED,
            {
                "device_id": device.id,
                "autoadd_id": device_id,
                "manufacturer": record.manufacturer,
                "model": record.model,
                "name": device.name,
            },
        )
        async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, device_id)

    # --- failures -----------------------------------------------------------------------------------------

    @callback
    def _schedule_retry(self, candidate: Candidate, err: AutoAddError) -> None:
        attempts = self._attempts.get(candidate.device_id, 0) + 1
        self._attempts[candidate.device_id] = attempts
        delay = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_MAX)
        if attempts == 1:
            _LOGGER.warning(
                "Device %s at %s:%s did not answer (%s); retrying with back-off",
                candidate.device_id[:12],
                candidate.host,
                candidate.port,
                err.code,
            )

        @callback
        def _retry(_now: Any) -> None:
            self._retries.pop(candidate.device_id, None)
            self.async_candidate(candidate, force=True)

        if old := self._retries.pop(candidate.device_id, None):
            old()
        self._retries[candidate.device_id] = async_call_later(self.hass, delay, _retry)

    @callback
    def _refuse(self, candidate: Candidate, err: AutoAddError) -> None:
        device_id = candidate.device_id
        previous = self.store.data.refused.get(device_id)
        attempts = previous.attempts + 1 if previous else 1
        now = dt_util.utcnow()
        self.store.data.refused[device_id] = Refusal(
            device_id=device_id,
            code=err.code,
            detail=str(err),
            at=now.isoformat(),
            retry_after=(now + REFUSAL_BACKOFF * min(attempts, 24)).isoformat(),
            attempts=attempts,
        )
        known = device_id in self.store.data.devices
        if previous is None or previous.code != err.code:
            _LOGGER.warning("Device %s refused: %s", device_id[:12], err)
        if err.suspicious or (known and isinstance(err, NotOwnerError)):
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"suspicious_{device_id}",
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="suspicious_device",
                translation_placeholders={
                    "device": device_id[:16],
                    "code": err.code,
                    "detail": err.detail,
                    "home": format_fingerprint(self.home.fingerprint, 4),
                },
            )

    # --- trusted manufacturers ----------------------------------------------------------------------------

    @callback
    def async_add_root(self, cert: x509.Certificate, name: str) -> None:
        """Trust a manufacturer root; devices refused as unknown are tried again when next seen."""
        root = TrustedRoot.from_certificate(cert, name)
        if any(known.fingerprint == root.fingerprint for known in self.store.data.roots):
            raise RootError("already_trusted")
        self.store.data.roots.append(root)
        for device_id, refusal in list(self.store.data.refused.items()):
            if refusal.code == UntrustedManufacturerError.code:
                del self.store.data.refused[device_id]
        self.store.async_schedule_save()

    @callback
    def async_remove_root(self, digest: str) -> None:
        """Stop trusting a manufacturer root: its devices are no longer onboarded."""
        self.store.data.roots = [root for root in self.store.data.roots if root.fingerprint != digest]
        self.store.async_schedule_save()

    # --- removal ------------------------------------------------------------------------------------------

    @callback
    def async_forget(self, device_id: str) -> None:
        """Forget a device the owner removed; it is not added again while it stays claimed by this home."""
        self.store.data.devices.pop(device_id, None)
        self.store.data.refused.pop(device_id, None)
        self.store.data.removed[device_id] = dt_util.utcnow().isoformat()
        self.store.async_schedule_save()


def link_digest(link: bytes) -> bytes:
    """SHA-256 of a link's exact bytes."""
    return hashlib.sha256(link).digest()

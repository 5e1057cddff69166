"""The registrar: turns discovered candidates into onboarded devices, through the protocol core.

One attempt per device at a time, at most `MAX_CONCURRENT` handshakes at once, a timeout on every request.
A transient failure (no answer, rate limited) is retried with exponential backoff; a verification failure
is remembered and not retried before its back-off (an hour, growing with each refusal) has passed or the
device announces something new (its TXT record changed, e.g. after a hand-over), so a bad device cannot
cause a retry storm. Nothing is added unless the whole handshake succeeded.

A device handed to this home by someone else is not added silently: it waits for the owner's approval
(a repair flow), unless the owner already accepted its transfer file. Links this home signed for a device
that has not confirmed them (a key rotation) are presented in the next acceptance note.
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
    EVENT_OWNERSHIP,
    SIGNAL_DEVICE_UPDATED,
)
from .device_client import DeviceClient, DeviceUnreachableError
from .protocol.chain import VerifiedChain, compare_with_known, extend, verify_chain
from .protocol.const import Label
from .protocol.errors import (
    AutoAddError,
    ForkError,
    NotOwnerError,
    UntrustedManufacturerError,
    WrongDeviceError,
)
from .protocol.handshake import ProvenDevice, RegistrarHandshake
from .protocol.keys import PrivateKey, format_fingerprint
from .protocol.transport import RATE_LIMITED, PeerError
from .storage import (
    DeviceRecord,
    HomeKey,
    HomeKeys,
    HomeKeyStore,
    Refusal,
    RegistrarStore,
    TrustedRoot,
    b64,
    unb64,
)
from .trust import RootError

_LOGGER = logging.getLogger(__name__)

MAX_CONCURRENT = 8
REQUEST_TIMEOUT = 10.0
RETRY_BASE = 15.0
RETRY_MAX = 15 * 60.0
REFUSAL_BACKOFF = timedelta(hours=1)
MAX_HISTORY = 200


@dataclass(frozen=True, slots=True)
class Candidate:
    """A device as mDNS announced it: untrusted until the handshake proves it."""

    device_id: str
    host: str
    port: int
    claimed: bool
    txt: dict[str, str]


class AwaitingApproval(Exception):
    """A device handed to this home by another owner: the owner decides before it is added."""

    def __init__(self, details: dict[str, Any]) -> None:
        """Keep what the approval shows."""
        self.details = details
        super().__init__(f"device {details['device_id'][:12]} awaits the owner's approval")


def link_digest(link: bytes) -> bytes:
    """SHA-256 of a link's exact bytes."""
    return hashlib.sha256(link).digest()


def ownership_origin(chain: VerifiedChain, ours: set[bytes]) -> bytes | None:
    """How this home came to own the chain's head: None when from the invoice or its own link, else
    the fingerprint of the other owner who handed the device over."""
    entry = len(chain.history) - 1
    while entry > 0 and ours & set(chain.history[entry - 1].owner_fingerprints):
        entry -= 1
    signer = chain.history[entry].signer
    if entry == 0 or signer in ours:
        return None
    return signer


class Registrar:
    """The home registrar, one per config entry (and Home Assistant instance)."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        keys: HomeKeys,
        key_store: HomeKeyStore,
        store: RegistrarStore,
    ) -> None:
        """Bind to the home keys and the loaded store."""
        self.hass = hass
        self.entry_id = entry_id
        self.keys = keys
        self.key_store = key_store
        self.store = store
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT)
        self._in_progress: set[str] = set()
        self._retries: dict[str, CALLBACK_TYPE] = {}
        self._attempts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.active_handshakes = 0
        self.peak_handshakes = 0
        self._closed = False

    @property
    def home(self) -> HomeKey:
        """The current home key."""
        return self.keys.current

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

    # --- history ------------------------------------------------------------------------------------------

    @callback
    def record_event(self, device_id: str, event: str, **detail: str) -> None:
        """Append to the device's ownership history and tell the logbook."""
        entry = {"at": dt_util.utcnow().isoformat(), "event": event, **detail}
        history = self.store.data.history.setdefault(device_id, [])
        history.append(entry)
        del history[:-MAX_HISTORY]
        self.store.async_schedule_save()
        self.hass.bus.async_fire(EVENT_OWNERSHIP, {"autoadd_id": device_id, **entry})
        async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, device_id)

    # --- candidates ---------------------------------------------------------------------------------------

    @property
    def roots(self) -> list[x509.Certificate]:
        """The trusted manufacturer root certificates."""
        return [root.certificate() for root in self.store.data.roots]

    @callback
    def async_candidate(self, candidate: Candidate, *, force: bool = False) -> None:
        """Consider a device seen on the network; start an attempt if one is due."""
        if self._closed or candidate.device_id in self.store.data.blocked:
            return
        if not force and self._handled_as_known(candidate):
            return
        if not self._due(candidate, force=force) or candidate.device_id in self._in_progress:
            return
        self._in_progress.add(candidate.device_id)
        self.async_create_task(self._attempt(candidate), "onboarding")

    @callback
    def _handled_as_known(self, candidate: Candidate) -> bool:
        """A device this home manages needs no handshake when claimed with nothing to deliver."""
        known = self.store.data.devices.get(candidate.device_id)
        if known is None:
            return False
        if known.handover is not None:
            self._seen(known, candidate)
            self.async_create_task(self._deliver_hand_over(known), "hand-over")
            return True
        if candidate.claimed and not known.unconfirmed:
            self._seen(known, candidate)
            return True
        return False

    @callback
    def _due(self, candidate: Candidate, *, force: bool) -> bool:
        """Whether an attempt may start: not removed by the owner, not waiting for them, not backing off."""
        data = self.store.data
        if candidate.device_id in data.removed:
            if candidate.claimed and not force:
                return False  # the owner removed it; it comes back only once reset or handed over
            del data.removed[candidate.device_id]
        if candidate.device_id in data.awaiting and not force:
            return False  # the owner has not decided yet
        refusal = data.refused.get(candidate.device_id)
        if refusal is None or force or (candidate.txt and candidate.txt != refusal.txt):
            return True  # never refused, asked for, or the device announces a change (e.g. a hand-over)
        return dt_util.utcnow() >= datetime.fromisoformat(refusal.retry_after)

    @callback
    def async_create_task(self, coro: Any, what: str) -> None:
        """Run `coro` in the background, cancelled when the registrar stops."""
        task = self.hass.async_create_background_task(coro, f"autoadd {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @callback
    def _seen(self, record: DeviceRecord, candidate: Candidate) -> None:
        """A known device announced itself: follow its address and note when it was seen."""
        record.last_seen = dt_util.utcnow().isoformat()
        if (record.host, record.port) != (candidate.host, candidate.port):
            _LOGGER.debug("Device %s moved to %s:%s", record.device_id[:12], candidate.host, candidate.port)
            record.host, record.port = candidate.host, candidate.port
        self.store.async_schedule_save()
        async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, record.device_id)

    def client(self, host: str, port: int) -> DeviceClient:
        """An HTTP client for a device, on Home Assistant's shared session."""
        return DeviceClient(async_get_clientsession(self.hass), host, port, timeout=REQUEST_TIMEOUT)

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
        except AwaitingApproval as waiting:
            self._await_approval(candidate, waiting.details)
        except AutoAddError as err:
            self._refuse(candidate, err)
        except asyncio.CancelledError:
            keep_pending = True  # stopped mid-handshake: tried again at the next start
            raise
        else:
            self._attempts.pop(device_id, None)
            if self.store.data.refused.pop(device_id, None) is not None:
                async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, device_id)
            ir.async_delete_issue(self.hass, DOMAIN, f"suspicious_{device_id}")
        finally:
            self._in_progress.discard(device_id)
            if device_id not in self._retries and not keep_pending:
                self.store.data.pending.pop(device_id, None)
            self.store.async_schedule_save()

    def chain_of(self, record: DeviceRecord) -> VerifiedChain:
        """The chain as this home knows it, with the links it signed that the device has not confirmed."""
        return verify_chain([*record.links, *record.unconfirmed], roots=None, now=dt_util.utcnow())

    def _links_to_present(self, device_id: str, chain: VerifiedChain) -> list[bytes]:
        """Links this home holds that continue the device's chain: its own pending ones, or a transfer's."""
        record = self.store.data.devices.get(device_id)
        approval = self.store.data.approvals.get(device_id)
        if record is not None:
            held = [*record.links, *record.unconfirmed]
        elif approval is not None:
            held = [unb64(link) for link in approval.get("links", [])]
        else:
            return []
        digests = [link_digest(link) for link in held]
        if chain.head.digest not in digests:
            return []  # the device's chain is not a prefix of what this home holds: nothing to add
        return held[digests.index(chain.head.digest) + 1 :]

    def own_signer(self, chain: VerifiedChain) -> PrivateKey | None:
        """The first private key this home holds that owns the chain's head, if any."""
        return next((key for key in self.keys.signing_keys() if chain.head.is_owner(key.public_key())), None)

    def _signer(self, chain: VerifiedChain) -> PrivateKey:
        signer = self.own_signer(chain)
        if signer is None:
            raise NotOwnerError("the device's chain does not name this home as a current owner")
        return signer

    async def _handshake(self, candidate: Candidate) -> None:
        client = self.client(candidate.host, candidate.port)
        session = RegistrarHandshake(self.home.key, issued_at=int(dt_util.utcnow().timestamp()))
        bundle = await client.hello(session.hello)
        proven = session.read_proof(bundle, roots=self.roots, now=dt_util.utcnow())
        device_id = proven.device_id.hex()
        if device_id != candidate.device_id:
            raise WrongDeviceError(f"the device announced {candidate.device_id} but proved {device_id}")
        record = self.store.data.devices.get(device_id)
        if record is not None:
            compare_with_known([link_digest(link) for link in record.links], proven.chain.digests)
            if (
                record.handover is not None
                and link_digest(unb64(record.handover["link"])) in proven.chain.digests
            ):
                await self.async_finish_hand_over(device_id, confirmed=True)
                return
        extra = self._links_to_present(device_id, proven.chain)
        chain = extend(proven.chain, extra)
        signer = self._signer(chain)
        if record is None:
            self._check_approval(proven, chain)
        note = session.make_note(signer=signer, issued_at=int(dt_util.utcnow().timestamp()), links=extra)
        session.read_receipt(await client.note(note))
        self._onboarded(proven, chain, candidate)

    def _check_approval(self, proven: ProvenDevice, chain: VerifiedChain) -> None:
        """Raise AwaitingApproval unless the device came to this home without someone else's hand-over,
        or the owner approved exactly this chain head."""
        device_id = proven.device_id.hex()
        previous = ownership_origin(chain, self.keys.fingerprints())
        if previous is None:
            return
        approval = self.store.data.approvals.get(device_id)
        head = chain.head.digest.hex()
        if approval is not None and approval["head"] == head:
            return
        if self.store.data.rejected.get(device_id) == head:
            raise NotOwnerError("the owner rejected this hand-over")
        raise AwaitingApproval(
            {
                "device_id": device_id,
                "head": head,
                "manufacturer": proven.identity.manufacturer,
                "model": chain.model or proven.identity.model or "AutoAdd device",
                "serial_number": proven.identity.serial_number or "",
                "previous_owner": previous.hex(),
            }
        )

    @callback
    def _onboarded(self, proven: ProvenDevice, chain: VerifiedChain, candidate: Candidate) -> None:
        identity = proven.identity
        device_id = identity.device_id.hex()
        now = dt_util.utcnow().isoformat()
        data = self.store.data
        previous = data.devices.get(device_id)
        record = DeviceRecord(
            device_id=device_id,
            manufacturer=identity.manufacturer,
            model=chain.model or identity.model or "AutoAdd device",
            serial_number=identity.serial_number,
            chain=[b64(link) for link in chain.links],
            onboarded_at=previous.onboarded_at if previous else now,
            last_seen=now,
            host=candidate.host,
            port=candidate.port,
            owners=[fp.hex() for fp in chain.head.owner_fingerprints],
            manufacturer_root=identity.issuer.root_fingerprint.hex(),
            flags=previous.flags if previous else [],
        )
        data.devices[device_id] = record
        approval = data.approvals.pop(device_id, None)
        data.awaiting.pop(device_id, None)
        device = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry_id,
            identifiers={(DOMAIN, device_id)},
            manufacturer=record.manufacturer,
            model=record.model,
            name=f"{record.model} {record.serial_number or device_id[:8]}",
            serial_number=record.serial_number,
        )
        if previous is None:
            _LOGGER.info("Onboarded %s %s (%s)", record.manufacturer, record.model, device_id[:12])
            self.record_event(
                device_id, "accepted" if approval else "onboarded", owners=",".join(record.owners)
            )
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
        elif len(previous.chain) != len(record.chain):
            self.record_event(device_id, "rotated", chain_length=str(len(record.chain)))
        self._after_confirmation()
        async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, device_id)

    @callback
    def _after_confirmation(self) -> None:
        """Once every device has its rotation link, a rotation that kept the old key can let it go."""
        rotation = self.store.data.rotation
        if rotation is None or any(record.pending_links for record in self.store.data.devices.values()):
            return
        self.store.data.rotation = None
        self.async_create_task(self.async_destroy_retired_keys(), "destroy retired keys")

    async def async_destroy_retired_keys(self) -> None:
        """Forget the private part of every retired home key."""
        if not any(old.key is not None for old in self.keys.retired):
            return
        for old in self.keys.retired:
            old.key = None
        await self.key_store.async_save(self.keys)
        _LOGGER.info("Retired home keys destroyed: every device has moved to the current key")

    # --- approvals ----------------------------------------------------------------------------------------

    @callback
    def _await_approval(self, candidate: Candidate, details: dict[str, Any]) -> None:
        device_id = details["device_id"]
        known = self.store.data.awaiting.get(device_id)
        self.store.data.awaiting[device_id] = {**details, "host": candidate.host, "port": candidate.port}
        if known is None or known["head"] != details["head"]:
            self.record_event(device_id, "approval_requested", previous_owner=details["previous_owner"])
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"approve_{device_id}",
            is_fixable=True,
            is_persistent=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key="approve_device",
            translation_placeholders={
                "manufacturer": details["manufacturer"],
                "model": details["model"],
                "device": device_id[:16],
                "previous_owner": format_fingerprint(bytes.fromhex(details["previous_owner"]), 4),
            },
            data={"device_id": device_id},
        )

    @callback
    def async_approve(self, device_id: str) -> None:
        """The owner accepts a device handed to this home; it is onboarded now."""
        waiting = self.store.data.awaiting.pop(device_id)
        self.store.data.approvals[device_id] = {
            "head": waiting["head"],
            "links": [],
            "previous_owner": waiting["previous_owner"],
        }
        self.store.data.rejected.pop(device_id, None)
        ir.async_delete_issue(self.hass, DOMAIN, f"approve_{device_id}")
        self.record_event(device_id, "approved", previous_owner=waiting["previous_owner"])
        candidate = Candidate(device_id, waiting["host"], waiting["port"], claimed=False, txt={})
        self.async_candidate(candidate, force=True)

    @callback
    def async_reject(self, device_id: str) -> None:
        """The owner rejects a device handed to this home; not asked again until its chain changes."""
        waiting = self.store.data.awaiting.pop(device_id)
        self.store.data.rejected[device_id] = waiting["head"]
        ir.async_delete_issue(self.hass, DOMAIN, f"approve_{device_id}")
        self.record_event(device_id, "rejected", previous_owner=waiting["previous_owner"])

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
            txt=candidate.txt or (previous.txt if previous else {}),
        )
        known = device_id in self.store.data.devices
        if known:
            async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, device_id)
        if previous is None or previous.code != err.code:
            _LOGGER.warning("Device %s refused: %s", device_id[:12], err)
        if err.suspicious or (known and isinstance(err, NotOwnerError)):
            if known:
                self.record_event(device_id, "tamper_evidence", code=err.code)
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

    # --- hand-over (used by lifecycle.py; here because the handshake finishes it too) ---------------------

    async def _deliver_hand_over(self, record: DeviceRecord) -> None:
        """Push a signed hand-over to a device that showed up; it leaves this home once it took it."""
        assert record.handover is not None
        with contextlib.suppress(AutoAddError):
            if await self.async_push(record, [*record.unconfirmed, unb64(record.handover["link"])]):
                await self.async_finish_hand_over(record.device_id, confirmed=True)

    async def async_push(self, record: DeviceRecord, links: list[bytes]) -> bool:
        """Push links that extend the device's confirmed chain, skipping those it already holds.

        False when the device does not answer; ForkError when its chain is not one this home knows;
        the device's own error when it refuses the links."""
        try:
            info = await self.client(record.host, record.port).info()
        except DeviceUnreachableError:
            return False
        full = [*record.links, *links]
        digests = [link_digest(link) for link in full]
        if info[Label.CHAIN_HEAD] not in digests:
            raise ForkError("the device holds a chain this home does not know")
        missing = full[digests.index(info[Label.CHAIN_HEAD]) + 1 :]
        if missing:
            try:
                await self.client(record.host, record.port).links(missing)
            except DeviceUnreachableError:
                return False
        return True

    async def async_finish_hand_over(self, device_id: str, *, confirmed: bool) -> None:
        """The device belongs to its new owner now: it leaves this home's registry (its history stays)."""
        record = self.store.data.devices.pop(device_id, None)
        if record is None:
            return  # it left already (the device took the hand-over meanwhile)
        new_owner = record.handover["new_owner"] if record.handover else ""
        self.record_event(device_id, "handed_over", new_owner=new_owner, confirmed=str(confirmed).lower())
        registry = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(registry, self.entry_id):
            if (DOMAIN, device_id) in device.identifiers:
                registry.async_update_device(device.id, remove_config_entry_id=self.entry_id)
        await self.store.async_save()

    # --- trusted manufacturers ----------------------------------------------------------------------------

    @callback
    def async_add_root(self, cert: x509.Certificate, name: str) -> None:
        """Trust a manufacturer root; devices refused as unknown are tried again when next seen."""
        root = TrustedRoot.from_certificate(cert, name)
        if any(known.fingerprint == root.fingerprint for known in self.store.data.roots):
            raise RootError("already_trusted")
        self.store.data.roots.append(root)
        self.store.data.revoked_roots.pop(root.fingerprint, None)
        for device_id, refusal in list(self.store.data.refused.items()):
            if refusal.code == UntrustedManufacturerError.code:
                del self.store.data.refused[device_id]
                async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, device_id)
        for record in self.store.data.devices.values():
            if record.manufacturer_root == root.fingerprint and "revoked_manufacturer" in record.flags:
                record.flags.remove("revoked_manufacturer")
                async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, record.device_id)
        self.store.async_schedule_save()

    @callback
    def async_remove_root(self, digest: str) -> None:
        """Revoke a manufacturer root: its new devices are refused, the ones it vouches for flagged."""
        for root in [root for root in self.store.data.roots if root.fingerprint == digest]:
            self.store.data.roots.remove(root)
            self.store.data.revoked_roots[digest] = {"name": root.name, "at": dt_util.utcnow().isoformat()}
        for record in self.store.data.devices.values():
            if record.manufacturer_root == digest and "revoked_manufacturer" not in record.flags:
                record.flags.append("revoked_manufacturer")
                self.record_event(record.device_id, "revoked", manufacturer_root=digest)
                async_dispatcher_send(self.hass, SIGNAL_DEVICE_UPDATED, record.device_id)
        self.store.async_schedule_save()

    # --- removal ------------------------------------------------------------------------------------------

    @callback
    def async_forget(self, device_id: str) -> None:
        """Forget a device the owner removed; it is not added again while it stays claimed by this home."""
        self.store.data.devices.pop(device_id, None)
        self.store.data.refused.pop(device_id, None)
        self.store.data.removed[device_id] = dt_util.utcnow().isoformat()
        self.store.async_schedule_save()

"""The device's protocol logic and persisted state, without the network.

State (state.cbor, a CBOR map):
    "chain"   the links the device holds (invoice first); only ever extended, never replaced or shortened
    "owner"   the fingerprint of the owner that onboarded it (the imprint), or null when unclaimed
    "config"  the configuration from the last accepted note

Factory reset clears the owner and the configuration but keeps the chain, so only a current owner can
onboard the device again, and a claimed device can't be claimed again (claims.py). When a link makes
the imprinted owner no longer an owner (a hand-over, a rotation), the device is unclaimed again, so
that the new owner's registrar onboards it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from cryptography.x509.oid import NameOID

from custom_components.autoadd.protocol.certificates import certificate_hash
from custom_components.autoadd.protocol.chain import VerifiedChain, decode_chain, extend, verify_chain
from custom_components.autoadd.protocol.claim_code import ClaimCode
from custom_components.autoadd.protocol.const import MAX_CHAIN_SIZE
from custom_components.autoadd.protocol.encoding import dumps, loads
from custom_components.autoadd.protocol.errors import AutoAddError, MalformedError
from custom_components.autoadd.protocol.handshake import DeviceResponder
from custom_components.autoadd.protocol.idevid import device_id_for
from custom_components.autoadd.protocol.keys import fingerprint, format_fingerprint

from .claims import CLAIM_CODE, ClaimKeeper, read_claim_code
from .files import INVOICE, STATE, DeviceFileError, DeviceIdentityFiles, load_identity, write_atomic

_LOGGER = logging.getLogger(__name__)
_STATE_LIMIT = MAX_CHAIN_SIZE + 16 * 1024


@dataclass
class DeviceState:
    """What the device persists."""

    chain: tuple[bytes, ...]
    owner: bytes | None = None
    config: dict[Any, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The state file's bytes."""
        return dumps({"chain": list(self.chain), "owner": self.owner, "config": self.config})

    @classmethod
    def decode(cls, data: bytes) -> DeviceState:
        """Read a state file; anything unexpected is an AutoAddError."""
        value = loads(data, what="state", max_size=_STATE_LIMIT)
        if not isinstance(value, dict) or set(value) != {"chain", "owner", "config"}:
            raise MalformedError("the state file is not a map of chain, owner and config")
        owner, config = value["owner"], value["config"]
        if owner is not None and not isinstance(owner, bytes):
            raise MalformedError("the state file's owner is not a fingerprint")
        if not isinstance(config, dict):
            raise MalformedError("the state file's config is not a map")
        return cls(decode_chain(dumps(value["chain"])), owner, config)


class ReferenceDevice:
    """One device: its identity, its verified chain, its imprint, and the handshake responder."""

    def __init__(
        self,
        folder: Path,
        *,
        clock: Callable[[], float],
        on_change: Callable[[], None] | None = None,
        name: str | None = None,
        claim_code: ClaimCode | None = None,
    ) -> None:
        """Load the device directory; a missing or corrupt file raises DeviceFileError naming it.
        `claim_code` (else the directory's claim_code file) lets unassigned stock be claimed."""
        self.folder = folder
        self.identity: DeviceIdentityFiles = load_identity(folder)
        self.device_id = device_id_for(self.identity.key.public_key())
        self.name = name or folder.name
        self._clock = clock
        self.on_change = on_change
        self.state = self._load_state()
        self.chain = self._verify_own(self.state.chain, folder / STATE)
        self.responder = DeviceResponder(self.identity.key, self.identity.certificates)
        code = claim_code or read_claim_code(folder)
        if code is not None and not code.is_for(self.device_id):
            raise DeviceFileError(folder / CLAIM_CODE, "the claim code is for another device")
        if code is None and not self.chain.head.owners:
            raise DeviceFileError(
                folder / INVOICE, "the invoice names no owner and the device has no claim code"
            )
        self.claims = ClaimKeeper(folder, code, self.device_id, clock) if code is not None else None

    # --- persisted state ----------------------------------------------------------------------------------

    def _load_state(self) -> DeviceState:
        path = self.folder / STATE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return DeviceState(chain=self.identity.invoice)
        except OSError as err:
            raise DeviceFileError(path, f"cannot be read: {err.strerror}") from err
        try:
            return DeviceState.decode(data)
        except AutoAddError as err:
            raise DeviceFileError(path, f"corrupt state: {err.detail}") from err

    def _verify_own(self, links: tuple[bytes, ...], path: Path) -> VerifiedChain:
        try:
            # Without roots no certificate time is checked: the device needs no clock for its own chain.
            chain = verify_chain(links, roots=None, now=dt.datetime.now(dt.UTC))
        except AutoAddError as err:
            raise DeviceFileError(path, f"the chain does not verify: {err}") from err
        if chain.device_id != self.device_id:
            raise DeviceFileError(path, "the chain is for another device")
        if chain.idevid_hash != certificate_hash(self.identity.certificates[0]):
            raise DeviceFileError(path, "the invoice names another IDevID certificate")
        return chain

    def _save(self, state: DeviceState) -> None:
        write_atomic(self.folder / STATE, state.encode(), mode=0o600)
        self.state = state
        if self.on_change is not None:
            self.on_change()

    # --- what the network sees ----------------------------------------------------------------------------

    @property
    def claimed(self) -> bool:
        """Whether an owner has onboarded the device (and is still an owner)."""
        return self.state.owner is not None

    @property
    def manufacturer(self) -> str:
        """The manufacturer, from the IDevID certificate's organisation."""
        values = self.identity.certificates[0].subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(values[0].value) if values else "unknown"

    @property
    def model(self) -> str:
        """The model, from the invoice or else the IDevID certificate."""
        if self.chain.model:
            return self.chain.model
        values = self.identity.certificates[0].subject.get_attributes_for_oid(NameOID.TITLE)
        return str(values[0].value) if values else "AutoAdd device"

    def log(self, step: str, detail: str = "") -> None:
        """One readable line per protocol step."""
        _LOGGER.info(
            "%s [%s] %s%s", self.name, self.device_id.hex()[:12], step, f": {detail}" if detail else ""
        )

    def answer_hello(self, body: bytes) -> bytes:
        """Answer a hello with a proof bundle."""
        bundle = self.responder.answer_hello(body, self.chain, now=self._clock())
        self.log("hello answered", f"chain of {len(self.chain.links)} link(s)")
        return bundle

    def accept_note(self, body: bytes) -> bytes:
        """Take an acceptance note: extend the chain, imprint the owner, persist, and return the receipt."""
        accepted = self.responder.accept_note(body, self.chain, now=self._clock())
        owner = fingerprint(accepted.owner)
        self._save(DeviceState(accepted.chain.links, owner, dict(accepted.config)))
        self.chain = accepted.chain
        self.log(
            "note accepted", f"owner {format_fingerprint(owner)}, chain of {len(self.chain.links)} link(s)"
        )
        return accepted.receipt

    def add_links(self, links: list[bytes]) -> None:
        """Extend the chain with links signed by current owners (rotation, hand-over)."""
        new_chain = extend(self.chain, links)
        owner = self.state.owner if self.state.owner in new_chain.head.owner_fingerprints else None
        config = self.state.config if owner is not None else {}
        self._save(DeviceState(new_chain.links, owner, config))
        self.chain = new_chain
        self.log(
            "chain extended", f"{len(links)} link(s), now {len(new_chain.links)}; claimed={owner is not None}"
        )

    def claim_start(self, body: bytes) -> bytes:
        """The first half of a claim code run (§14.9 Q1-Q5)."""
        if self.claims is None:
            raise MalformedError("the device has no claim code")
        answer = self.claims.start(body, self.chain)
        self.log("claim started", f"{self.claims.failures} wrong code(s) counted so far")
        return answer

    def claim_finish(self, body: bytes) -> bytes:
        """The second half (F1-F9): count the guess, check it, sign the claim link and keep it before
        answering."""
        if self.claims is None:
            raise MalformedError("the device has no claim code")
        done = self.claims.responder.finish(
            body,
            self.chain,
            idevid_key=self.identity.key,
            idevid_certificate=self.identity.certificates[0],
            now=self._clock(),
            issued_at=int(dt.datetime.now(dt.UTC).timestamp()),
            count=self.claims.count,
        )
        self._save(DeviceState(done.chain.links, None, {}))  # the claim link is kept before it is sent
        self.chain = done.chain
        try:
            self.claims.claimed()
        except OSError as err:  # only the count of a device that takes no run again: it is claimed
            _LOGGER.warning("%s: could not reset the wrong-code count: %s", self.name, err.strerror)
        self.log(
            "claimed",
            f"owners {', '.join(format_fingerprint(o) for o in done.chain.head.owner_fingerprints)}",
        )
        return done.answer

    def factory_reset(self) -> None:
        """Forget the owner and configuration; keep the chain."""
        self._save(DeviceState(self.chain.links, None, {}))
        self.log("factory reset", "owner and configuration cleared, chain kept")

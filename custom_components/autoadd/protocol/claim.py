"""The claim code run (§14.9): CPace keyed by the claim code, then the device's claim link.

    registrar                                         device (unassigned, holds the code)
      start  {1, 2: id, 11: Nr, 15: fp(home)}   --->   Q1-Q5: not while the wrong-code delay runs;
             <---  {1, 13: Nd, 20: Ya}                 Ya = CPace initiator share
      finish {1, 13: Nd, 20: Yb, 4: owners, 21: Tb} -> F1-F9: one wrong code counted on disk, then Tb
             <---  {1, 16: [claim link], 21: Ta}       proves the code and binds the owners (the first
                                                       is the home); the link is kept, then sent

CPACE-X25519-SHA512 (the `cpace` library): PRS = the code's hint || secret; CI = "AutoAdd claim" ||
device id || fp(home); sid = Nr || Nd; ADa = "" (device, initiator), ADb = the deterministic CBOR
encoding of the owners array (registrar, responder). Both confirm: the registrar's tag (Tb) comes first,
so the device signs nothing for a registrar without the code; the device's (Ta) comes with the claim
link, so a registrar never takes a link signed without the code (a device under a root it made itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cpace import CPace, CPaceError, CPaceRole
from cryptography import x509
import voluptuous as vol

from .certificates import certificate_hash
from .chain import VerifiedChain, check_owners, extend
from .claim_code import ClaimCode
from .claim_link import issue_claim_link
from .const import (
    HASH_SIZE,
    MAX_LINK_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_OWNER_KEY_SIZE,
    NONCE_SIZE,
    PROTOCOL_VERSION,
    Label,
)
from .encoding import dumps, loads
from .errors import (
    AlreadyClaimedError,
    ClaimUnprovenError,
    HandshakeStateError,
    MalformedError,
    NotOwnerError,
    UnknownSessionError,
    WrongClaimCodeError,
    WrongDeviceError,
)
from .handshake import new_nonce
from .keys import PrivateKey, PublicKey, fingerprint, public_key_to_bytes
from .schema import array, byte_string, cbor_map, exactly, validate

#: A claim session lives this long on the device (seconds), and only one is open at a time.
CLAIM_SESSION_SECONDS = 60.0
#: Wrong codes the device takes without a delay; after that the delay doubles, up to an hour (Q4).
FREE_CLAIM_ATTEMPTS = 3
MAX_CLAIM_DELAY = 3600
_CI_LABEL = b"AutoAdd claim"
_SHARE_SIZE = 32
_TAG_SIZE = 64
#: The claim answer: the link's limit, and the map around it with the device's 64-byte tag.
MAX_CLAIM_ANSWER = MAX_LINK_SIZE + 128

_START_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_ID): byte_string(HASH_SIZE),
        vol.Required(Label.REGISTRAR_NONCE): byte_string(NONCE_SIZE),
        vol.Required(Label.REGISTRAR_FINGERPRINT): byte_string(HASH_SIZE),
    }
)
_STARTED_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_NONCE): byte_string(NONCE_SIZE),
        vol.Required(Label.SHARE): byte_string(_SHARE_SIZE),
    }
)
_ANSWER_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.LINKS): array(byte_string(max_size=MAX_LINK_SIZE), 1),
        vol.Required(Label.CONFIRMATION): byte_string(_TAG_SIZE),
    }
)
_FINISH_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_NONCE): byte_string(NONCE_SIZE),
        vol.Required(Label.SHARE): byte_string(_SHARE_SIZE),
        vol.Required(Label.OWNERS): array(byte_string(max_size=MAX_OWNER_KEY_SIZE), 64),
        vol.Required(Label.CONFIRMATION): byte_string(_TAG_SIZE),
    }
)


def claim_delay(failures: int) -> int:
    """Q4: seconds the device takes no claim start after its last counted wrong code (F5)."""
    if failures < FREE_CLAIM_ATTEMPTS:
        return 0
    return int(min(2 ** min(failures - FREE_CLAIM_ATTEMPTS, 12), MAX_CLAIM_DELAY))


def _ci(device_id: bytes, home: bytes) -> bytes:
    return _CI_LABEL + device_id + home


def _read(body: bytes, schema: Any, what: str) -> dict[int, Any]:
    return validate(schema, loads(body, what=what, max_size=MAX_MESSAGE_SIZE), what=what)


# --- The registrar's side -------------------------------------------------------------------------------


class ClaimRun:
    """One claim code run from the registrar: start, finish, then the claim link the device signed."""

    def __init__(
        self,
        code: ClaimCode,
        *,
        device_id: bytes,
        home: PublicKey,
        owners: Sequence[PublicKey],
        nonce: bytes | None = None,
    ) -> None:
        """`home` is the home key the run is bound to; `owners` the keys the claim link must name."""
        self._code = code
        self._device_id = device_id
        self._home = fingerprint(home)
        self._owners = [public_key_to_bytes(owner) for owner in owners]
        self._nonce = nonce if nonce is not None else new_nonce()
        self._pake: CPace | None = None
        self.start = dumps(
            {
                Label.VERSION: PROTOCOL_VERSION,
                Label.DEVICE_ID: device_id,
                Label.REGISTRAR_NONCE: self._nonce,
                Label.REGISTRAR_FINGERPRINT: self._home,
            }
        )

    def finish(self, started: bytes) -> bytes:
        """Read the device's answer to the start; return the finish request."""
        if self._pake is not None:
            raise HandshakeStateError("this claim run has already been finished")
        fields = _read(started, _STARTED_SCHEMA, "the claim start answer")
        sid = self._nonce + fields[Label.DEVICE_NONCE]
        try:
            pake = CPace.start(
                role=CPaceRole.RESPONDER,
                prs=self._code.password,
                sid=sid,
                ci=_ci(self._device_id, self._home),
                ad=dumps(self._owners),
            )
            pake.derive(fields[Label.SHARE])
        except CPaceError as err:
            raise MalformedError("the device's claim share is not a usable point") from err
        self._pake = pake
        return dumps(
            {
                Label.VERSION: PROTOCOL_VERSION,
                Label.DEVICE_NONCE: fields[Label.DEVICE_NONCE],
                Label.SHARE: pake.public_share,
                Label.OWNERS: self._owners,
                Label.CONFIRMATION: pake.tag(),
            }
        )

    def read_link(self, answer: bytes, chain: VerifiedChain) -> VerifiedChain:
        """G5-G8: the device's answer. Its confirmation must prove that it knows the code (a device that
        signs a claim link without it is not the one the code is printed on), then its claim link must
        extend `chain` as link 1, naming exactly this run's owners."""
        if self._pake is None:
            raise HandshakeStateError("the claim run has not been finished")
        fields = validate(
            _ANSWER_SCHEMA,
            loads(answer, what="the claim answer", max_size=MAX_CLAIM_ANSWER),
            what="the claim answer",
        )
        if not self._pake.verify(fields[Label.CONFIRMATION]):
            raise ClaimUnprovenError("the device did not prove that it knows this claim code")
        claimed = extend(chain, fields[Label.LINKS])
        if [public_key_to_bytes(owner) for owner in claimed.head.owners] != self._owners:
            raise NotOwnerError("the claim link names other owners than this home sent")
        return claimed


# --- The device's side ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimStart:
    """A start request that passed Q1-Q3; the device checks its delay (Q4) before it answers (Q5)."""

    registrar_nonce: bytes
    home: bytes


@dataclass(frozen=True, slots=True)
class ClaimDone:
    """A good finish: the chain with the claim link (to persist first) and the device's tag."""

    chain: VerifiedChain
    confirmation: bytes

    @property
    def answer(self) -> bytes:
        """F9: the claim answer {1: 1, 16: [the claim link], 21: the device's CPace tag}."""
        return dumps(
            {
                Label.VERSION: PROTOCOL_VERSION,
                Label.LINKS: [self.chain.links[1]],
                Label.CONFIRMATION: self.confirmation,
            }
        )


@dataclass(slots=True)
class _Session:
    device_nonce: bytes
    home: bytes
    pake: CPace
    expires: float


class ClaimResponder:
    """The device's side of claim code runs: one open session at a time, each used at most once."""

    def __init__(
        self, code: ClaimCode, device_id: bytes, *, session_ttl: float = CLAIM_SESSION_SECONDS
    ) -> None:
        """Bind the responder to the device's claim code and id."""
        self._code = code
        self._device_id = device_id
        self._ttl = session_ttl
        self._session: _Session | None = None

    def read_start(self, body: bytes, chain: VerifiedChain) -> ClaimStart:
        """Q1-Q3: a well-formed start for this device, which is still unassigned."""
        fields = _read(body, _START_SCHEMA, "claim start")
        if fields[Label.DEVICE_ID] != self._device_id:
            raise WrongDeviceError("the claim start is for another device")
        if chain.head.owners:
            raise AlreadyClaimedError("the device already has owners; its code no longer claims it")
        return ClaimStart(fields[Label.REGISTRAR_NONCE], fields[Label.REGISTRAR_FINGERPRINT])

    def answer_start(self, start: ClaimStart, *, now: float, nonce: bytes | None = None) -> bytes:
        """Q5: open the session (closing any other) and answer with the device's share."""
        device_nonce = nonce if nonce is not None else new_nonce()
        pake = CPace.start(
            role=CPaceRole.INITIATOR,
            prs=self._code.password,
            sid=start.registrar_nonce + device_nonce,
            ci=_ci(self._device_id, start.home),
        )
        self._session = _Session(device_nonce, start.home, pake, now + self._ttl)
        return dumps(
            {
                Label.VERSION: PROTOCOL_VERSION,
                Label.DEVICE_NONCE: device_nonce,
                Label.SHARE: pake.public_share,
            }
        )

    def finish(
        self,
        body: bytes,
        chain: VerifiedChain,
        *,
        idevid_key: PrivateKey,
        idevid_certificate: x509.Certificate,
        now: float,
        issued_at: int,
        count: Callable[[], None] | None = None,
    ) -> ClaimDone:
        """F1-F9: check the registrar's confirmation and owners, and sign the claim link. `count` is
        called (F5: the device persists one more wrong code) before the code is checked; the caller
        persists the returned chain before it answers with its last link (F9)."""
        fields = _read(body, _FINISH_SCHEMA, "claim finish")
        session = self._session
        if session is None or session.expires <= now or session.device_nonce != fields[Label.DEVICE_NONCE]:
            raise UnknownSessionError("no open claim session has this device nonce")
        self._session = None  # one guess per run: used up whatever follows
        if chain.head.owners:
            raise AlreadyClaimedError("the device already has owners; its code no longer claims it")
        if count is not None:
            count()  # F5: this guess is on disk before its outcome is known, let alone answered
        try:
            session.pake.derive(fields[Label.SHARE], dumps(fields[Label.OWNERS]))
            confirmed = session.pake.verify(fields[Label.CONFIRMATION])
        except CPaceError:
            confirmed = False
        if not confirmed:
            raise WrongClaimCodeError("the claim code run failed")
        owners = check_owners(fields[Label.OWNERS], index=None)
        if fingerprint(owners[0]) != session.home:
            raise NotOwnerError("the first owner is not the home key the run was bound to")
        if certificate_hash(idevid_certificate) != chain.idevid_hash:
            raise MalformedError("the device's IDevID certificate is not the one its invoice names")
        link = issue_claim_link(
            idevid_key=idevid_key,
            idevid_certificate=idevid_certificate,
            head=chain.head,
            owners=fields[Label.OWNERS],
            issued_at=issued_at,
        )
        return ClaimDone(extend(chain, [link]), session.pake.tag())

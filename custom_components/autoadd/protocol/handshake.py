"""The onboarding handshake: hello, proof, acceptance note, receipt. Each side as a small state machine.

    registrar                                   device
    hello      {Nr, registrar key}   ------>    (fresh Nd, remembered with Nr for a short while)
               <------  proof bundle {proof(Nr, Nd, head, registrar fp), IDevID chain, invoice chain}
    note       {Nr, Nd, head', links, config}   ------>   (extends its chain, checks the signer owns head')
               <------  receipt {Nr, Nd, hash(note), head'}

Everything is bound to both nonces, so no message can be replayed into another session; the proof is
an IDevID signature, so a copied invoice is worthless without the device key; the receipt is an IDevID
signature over the note's exact bytes, so the registrar knows the device took exactly that note.
No I/O here: the caller moves the bytes and supplies the time and, where it wants to, the nonces.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import datetime as dt
import hashlib
import secrets
from typing import Any

from cryptography import x509
import voluptuous as vol

from . import cose
from .certificates import certificate_to_der
from .chain import VerifiedChain, chain_links, extend
from .const import (
    HASH_SIZE,
    MAX_BUNDLE_SIZE,
    MAX_CHAIN_LINKS,
    MAX_LINK_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_OWNER_KEY_SIZE,
    NONCE_SIZE,
    PROTOCOL_VERSION,
    ContentType,
    Label,
)
from .encoding import dumps, loads
from .errors import (
    BadSignatureError,
    ChainHeadMismatchError,
    HandshakeStateError,
    MalformedError,
    NonceMismatchError,
    NotOwnerError,
    UnknownSessionError,
    WrongDeviceError,
)
from .idevid import DeviceIdentity
from .keys import (
    PrivateKey,
    PublicKey,
    fingerprint,
    public_key_from_bytes,
    public_key_of,
    public_key_to_bytes,
)
from .known import Known, roots_key, verify_chain_again, verify_idevid_again
from .schema import MapSchema, array, byte_string, cbor_map, check_config, exactly, uint, validate

_NONCE = byte_string(NONCE_SIZE)
_HASH = byte_string(HASH_SIZE)

_HELLO_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.REGISTRAR_NONCE): _NONCE,
        vol.Required(Label.REGISTRAR_KEY): byte_string(max_size=MAX_OWNER_KEY_SIZE),
        vol.Required(Label.ISSUED_AT): uint,
    }
)
_PROOF_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_ID): _HASH,
        vol.Required(Label.REGISTRAR_NONCE): _NONCE,
        vol.Required(Label.DEVICE_NONCE): _NONCE,
        vol.Required(Label.CHAIN_HEAD): _HASH,
        vol.Required(Label.CHAIN_LENGTH): uint,
        vol.Required(Label.REGISTRAR_FINGERPRINT): _HASH,
    }
)
_NOTE_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_ID): _HASH,
        vol.Required(Label.REGISTRAR_NONCE): _NONCE,
        vol.Required(Label.DEVICE_NONCE): _NONCE,
        vol.Required(Label.CHAIN_HEAD): _HASH,
        vol.Required(Label.LINKS): array(byte_string(max_size=MAX_LINK_SIZE), MAX_CHAIN_LINKS),
        vol.Optional(Label.CONFIG): dict,
        vol.Required(Label.ISSUED_AT): uint,
    }
)
_RECEIPT_SCHEMA = cbor_map(
    {
        vol.Required(Label.VERSION): exactly(PROTOCOL_VERSION),
        vol.Required(Label.DEVICE_ID): _HASH,
        vol.Required(Label.REGISTRAR_NONCE): _NONCE,
        vol.Required(Label.DEVICE_NONCE): _NONCE,
        vol.Required(Label.NOTE_HASH): _HASH,
        vol.Required(Label.CHAIN_HEAD): _HASH,
    }
)
_BUNDLE_PROOF = 1
_BUNDLE_IDEVID = 2
_BUNDLE_CHAIN = 3


def new_nonce() -> bytes:
    """A fresh 32-byte nonce from the operating system's CSPRNG."""
    return secrets.token_bytes(NONCE_SIZE)


def _open(
    data: bytes, content_type: ContentType, what: str, max_size: int = MAX_MESSAGE_SIZE
) -> cose.SignedObject:
    return cose.parse(data, content_type, max_size=max_size, what=what)


def _fields(obj: cose.SignedObject, schema: MapSchema, what: str) -> dict[int, Any]:
    return validate(schema, loads(obj.payload, what=what, max_size=MAX_BUNDLE_SIZE), what=what)


# --- Messages, as the receiving side sees them once verified ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """A verified hello: the registrar's nonce and the key it proved it holds."""

    registrar_nonce: bytes
    registrar_key: PublicKey
    issued_at: int

    @property
    def registrar_fingerprint(self) -> bytes:
        """The registrar key's fingerprint."""
        return fingerprint(self.registrar_key)


@dataclass(frozen=True, slots=True)
class ProvenDevice:
    """What the registrar knows after a good proof: the device's identity, its chain and its nonce."""

    identity: DeviceIdentity
    chain: VerifiedChain
    device_nonce: bytes
    #: What this proof established, for verifying the device's next answer cheaply.
    known: Known

    @property
    def device_id(self) -> bytes:
        """The device identifier."""
        return self.identity.device_id


@dataclass(frozen=True, slots=True)
class AcceptedNote:
    """What the device takes from a good note: its new chain, who signed, the configuration, its receipt."""

    chain: VerifiedChain
    owner: PublicKey
    config: Mapping[Any, Any]
    note_digest: bytes
    receipt: bytes


def make_hello(home_key: PrivateKey, nonce: bytes, issued_at: int) -> bytes:
    """The registrar's hello, signed by its home key (which proves it holds the key it names)."""
    public = home_key.public_key()
    payload = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.REGISTRAR_NONCE: nonce,
        Label.REGISTRAR_KEY: public_key_to_bytes(public),
        Label.ISSUED_AT: issued_at,
    }
    return cose.sign(payload, ContentType.HELLO, home_key, kid=fingerprint(public))


def read_hello(data: bytes) -> Hello:
    """Verify a hello: well formed, signed by the key it names."""
    obj = _open(data, ContentType.HELLO, "hello")
    fields = _fields(obj, _HELLO_SCHEMA, "hello")
    key = public_key_from_bytes(fields[Label.REGISTRAR_KEY])
    if obj.kid is None:
        raise MalformedError("the hello has no kid")
    if obj.kid != fingerprint(key):
        raise BadSignatureError("the hello's kid is not the fingerprint of the key it names")
    cose.verify(obj, key, what="the hello")
    return Hello(fields[Label.REGISTRAR_NONCE], key, fields[Label.ISSUED_AT])


# --- Registrar side ---------------------------------------------------------------------------------------


class RegistrarHandshake:
    """One onboarding attempt from the registrar's side: hello, read proof, make note, read receipt."""

    def __init__(self, home_key: PrivateKey, *, issued_at: int, nonce: bytes | None = None) -> None:
        """Start a session; `nonce` is for test vectors only, never reuse one."""
        self._home_key = home_key
        self.registrar_nonce = nonce if nonce is not None else new_nonce()
        self.hello = make_hello(home_key, self.registrar_nonce, issued_at)
        self.device: ProvenDevice | None = None
        self.note: bytes | None = None
        self._note_head: bytes | None = None
        self.done = False

    def read_proof(
        self,
        bundle: bytes,
        *,
        roots: Sequence[x509.Certificate],
        now: dt.datetime,
        known: Known | None = None,
    ) -> ProvenDevice:
        """Verify the device's answer: IDevID chain, invoice chain, and the proof bound to this session.

        `known` is what an earlier proof of this device established (`ProvenDevice.known`): the parts of
        the answer that are byte-for-byte what it verified are not verified again (known.py)."""
        if self.device is not None:
            raise HandshakeStateError("the proof for this session was already read")
        value = loads(bundle, what="proof bundle", max_size=MAX_BUNDLE_SIZE)
        if not isinstance(value, dict) or set(value) != {_BUNDLE_PROOF, _BUNDLE_IDEVID, _BUNDLE_CHAIN}:
            raise MalformedError(
                "a proof bundle is a map of proof (1), IDevID chain (2) and invoice chain (3)"
            )
        proof_bytes, idevid_chain, links = value[_BUNDLE_PROOF], value[_BUNDLE_IDEVID], value[_BUNDLE_CHAIN]
        if not isinstance(proof_bytes, bytes):
            raise MalformedError("the proof is not a byte string")
        if not isinstance(idevid_chain, list) or not all(isinstance(cert, bytes) for cert in idevid_chain):
            raise MalformedError("the IDevID chain is not an array of DER certificates")
        proof = _open(proof_bytes, ContentType.PROOF, "proof")
        identity = verify_idevid_again(idevid_chain, roots, now, known)
        chain = verify_chain_again(chain_links(links), roots=roots, now=now, device=identity, known=known)
        if proof.kid != identity.device_id:
            raise BadSignatureError("the proof's kid is not the device identifier")
        cose.verify(proof, identity.public_key, what="the proof")
        fields = _fields(proof, _PROOF_SCHEMA, "proof")
        if fields[Label.DEVICE_ID] != identity.device_id:
            raise WrongDeviceError("the proof names another device")
        if fields[Label.REGISTRAR_NONCE] != self.registrar_nonce:
            raise NonceMismatchError("the proof answers another hello (registrar nonce)")
        if fields[Label.REGISTRAR_FINGERPRINT] != fingerprint(public_key_of(self._home_key)):
            raise NonceMismatchError("the proof answers another registrar's hello")
        if fields[Label.CHAIN_HEAD] != chain.head.digest or fields[Label.CHAIN_LENGTH] != len(chain.links):
            raise ChainHeadMismatchError("the proof is bound to another chain head than the chain sent")
        self.device = ProvenDevice(
            identity,
            chain,
            fields[Label.DEVICE_NONCE],
            Known(tuple(idevid_chain), identity, chain, roots_key(roots)),
        )
        return self.device

    def make_note(
        self,
        *,
        signer: PrivateKey,
        issued_at: int,
        links: Sequence[bytes] = (),
        config: Mapping[str, Any] | None = None,
    ) -> bytes:
        """The acceptance note: `signer` must own the chain once `links` are appended."""
        if self.device is None or self.note is not None:
            raise HandshakeStateError("a note follows one good proof, once")
        new_chain = extend(self.device.chain, links)
        if not new_chain.head.is_owner(public_key_of(signer)):
            raise NotOwnerError("this home key is not a current owner of the device's chain")
        payload: dict[int, Any] = {
            Label.VERSION: PROTOCOL_VERSION,
            Label.DEVICE_ID: self.device.device_id,
            Label.REGISTRAR_NONCE: self.registrar_nonce,
            Label.DEVICE_NONCE: self.device.device_nonce,
            Label.CHAIN_HEAD: new_chain.head.digest,
            Label.LINKS: list(links),
            Label.ISSUED_AT: issued_at,
        }
        if config:
            value = dict(config) if isinstance(config, Mapping) else config
            check_config(value)
            payload[Label.CONFIG] = value
        self.note = cose.sign(payload, ContentType.NOTE, signer, kid=fingerprint(public_key_of(signer)))
        self._note_head = new_chain.head.digest
        return self.note

    def read_receipt(self, data: bytes) -> None:
        """Verify the device's receipt for exactly the note sent in this session."""
        if self.device is None or self.note is None or self.done:
            raise HandshakeStateError("a receipt follows the note, once")
        obj = _open(data, ContentType.RECEIPT, "receipt")
        if obj.kid != self.device.device_id:
            raise BadSignatureError("the receipt's kid is not the device identifier")
        cose.verify(obj, self.device.identity.public_key, what="the receipt")
        fields = _fields(obj, _RECEIPT_SCHEMA, "receipt")
        if (
            fields[Label.REGISTRAR_NONCE] != self.registrar_nonce
            or fields[Label.DEVICE_NONCE] != self.device.device_nonce
        ):
            raise NonceMismatchError("the receipt belongs to another session")
        if fields[Label.DEVICE_ID] != self.device.device_id:
            raise WrongDeviceError("the receipt names another device")
        if fields[Label.NOTE_HASH] != hashlib.sha256(self.note).digest():
            raise NonceMismatchError("the receipt is for another note")
        if fields[Label.CHAIN_HEAD] != self._note_head:
            raise ChainHeadMismatchError("the device reports another chain head than the note's")
        self.done = True


# --- Device side ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pending:
    registrar_nonce: bytes
    registrar_fingerprint: bytes
    head: bytes
    expires: float


class DeviceResponder:
    """The device's side: answers hellos and takes notes, remembering each open session for a short while.

    Sessions live `session_ttl` seconds on the caller's monotonic clock, at most `max_sessions` at once
    (the oldest is dropped first), and each is used by at most one accepted note.
    """

    def __init__(
        self,
        idevid_key: PrivateKey,
        idevid_chain: Sequence[x509.Certificate],
        *,
        session_ttl: float = 60.0,
        max_sessions: int = 8,
    ) -> None:
        """Bind the responder to the device's IDevID key and certificate chain (device certificate first)."""
        self._key = idevid_key
        self._chain_der = [certificate_to_der(cert) for cert in idevid_chain]
        self.device_id = fingerprint(idevid_key.public_key())
        self._ttl = session_ttl
        self._max = max_sessions
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()

    def _expire(self, now: float) -> None:
        for nonce in [n for n, p in self._pending.items() if p.expires <= now]:
            del self._pending[nonce]

    def answer_hello(
        self, hello: bytes, chain: VerifiedChain, *, now: float, nonce: bytes | None = None
    ) -> bytes:
        """Verify a hello and answer with a proof bundle; `nonce` is for test vectors only."""
        request = read_hello(hello)
        self._expire(now)
        device_nonce = nonce if nonce is not None else new_nonce()
        payload = {
            Label.VERSION: PROTOCOL_VERSION,
            Label.DEVICE_ID: self.device_id,
            Label.REGISTRAR_NONCE: request.registrar_nonce,
            Label.DEVICE_NONCE: device_nonce,
            Label.CHAIN_HEAD: chain.head.digest,
            Label.CHAIN_LENGTH: len(chain.links),
            Label.REGISTRAR_FINGERPRINT: request.registrar_fingerprint,
        }
        proof = cose.sign(payload, ContentType.PROOF, self._key, kid=self.device_id)
        while len(self._pending) >= self._max:
            self._pending.popitem(last=False)
        self._pending[device_nonce] = _Pending(
            request.registrar_nonce, request.registrar_fingerprint, chain.head.digest, now + self._ttl
        )
        return dumps(
            {_BUNDLE_PROOF: proof, _BUNDLE_IDEVID: self._chain_der, _BUNDLE_CHAIN: list(chain.links)}
        )

    def accept_note(self, note: bytes, chain: VerifiedChain, *, now: float) -> AcceptedNote:
        """Verify a note against an open session and the device's chain; the session is used up on success."""
        obj = _open(note, ContentType.NOTE, "note", max_size=MAX_BUNDLE_SIZE)
        fields = _fields(obj, _NOTE_SCHEMA, "note")
        self._expire(now)
        pending = self._pending.get(fields[Label.DEVICE_NONCE])
        if pending is None:
            raise UnknownSessionError(
                "no open session has this device nonce (expired, used, or never opened)"
            )
        if fields[Label.REGISTRAR_NONCE] != pending.registrar_nonce:
            raise NonceMismatchError("the note's registrar nonce is not this session's")
        if fields[Label.DEVICE_ID] != self.device_id:
            raise WrongDeviceError("the note is for another device")
        if pending.head != chain.head.digest:
            raise ChainHeadMismatchError("the device's chain changed since the hello")
        check_config(fields.get(Label.CONFIG, {}))
        new_chain = extend(chain, fields[Label.LINKS])
        if fields[Label.CHAIN_HEAD] != new_chain.head.digest:
            raise ChainHeadMismatchError("the note is bound to another chain head")
        if obj.kid is None:
            raise MalformedError("the note has no kid")
        signer = next((o for o in new_chain.head.owners if fingerprint(o) == obj.kid), None)
        if signer is None:
            raise NotOwnerError("the note is not signed by a current owner")
        cose.verify(obj, signer, what="the note")
        del self._pending[fields[Label.DEVICE_NONCE]]
        digest = hashlib.sha256(note).digest()
        receipt = cose.sign(
            {
                Label.VERSION: PROTOCOL_VERSION,
                Label.DEVICE_ID: self.device_id,
                Label.REGISTRAR_NONCE: pending.registrar_nonce,
                Label.DEVICE_NONCE: fields[Label.DEVICE_NONCE],
                Label.NOTE_HASH: digest,
                Label.CHAIN_HEAD: new_chain.head.digest,
            },
            ContentType.RECEIPT,
            self._key,
            kid=self.device_id,
        )
        return AcceptedNote(new_chain, signer, fields.get(Label.CONFIG, {}), digest, receipt)

"""One device, its invoice naming one home, and the handshake steps the wire-rule tests start from.

The tests in test_config_model.py and test_rule_order.py break one rule of the spec at a time; this is the
correct onboarding they break it in, so each test states only what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
from typing import Any

import cbor2

from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.chain import VerifiedChain
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.handshake import AcceptedNote, DeviceResponder, RegistrarHandshake
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint
from tests.factory import NOW, NOW_TS, Device, Manufacturer, fixed_key
from tests.protocol.helpers import encode, payload_of, sign_raw


@dataclass
class Stage:
    """A device whose invoice names `home`, and the responder that answers for it."""

    maker: Manufacturer
    device: Device
    home: PrivateKey
    responder: DeviceResponder = field(init=False)

    def __post_init__(self) -> None:
        self.responder = DeviceResponder(self.device.key, [self.device.cert])

    @classmethod
    def create(cls, key_type: KeyType = KeyType.ED25519) -> Stage:
        maker = Manufacturer.create("Acme", key_type)
        device = maker.make_device("SN0001", key_type)
        home = fixed_key("home", key_type)
        device.links.append(maker.invoice(device, [home]))
        return cls(maker, device, home)

    @property
    def roots(self) -> list[Any]:
        return [self.maker.root]

    @property
    def home_kid(self) -> bytes:
        return fingerprint(self.home.public_key())

    def chain(self) -> VerifiedChain:
        return self.device.chain()

    def open(self) -> tuple[RegistrarHandshake, bytes]:
        """A registrar session and the device's proof bundle for its hello."""
        session = RegistrarHandshake(self.home, issued_at=NOW_TS)
        return session, self.responder.answer_hello(session.hello, self.chain(), now=0.0)

    def prove(self) -> RegistrarHandshake:
        """A registrar session that has read a good proof (the device holds its session open)."""
        session, bundle = self.open()
        session.read_proof(bundle, roots=self.roots, now=NOW)
        return session

    def accept(self, note: bytes) -> AcceptedNote:
        return self.responder.accept_note(note, self.chain(), now=1.0)

    def note_payload(self, session: RegistrarHandshake) -> dict[int, Any]:
        """The payload of a correct note without links for `session`."""
        assert session.device is not None
        return {
            Label.VERSION: PROTOCOL_VERSION,
            Label.DEVICE_ID: self.device.device_id,
            Label.REGISTRAR_NONCE: session.registrar_nonce,
            Label.DEVICE_NONCE: session.device.device_nonce,
            Label.CHAIN_HEAD: self.chain().head.digest,
            Label.LINKS: [],
            Label.ISSUED_AT: NOW_TS,
        }

    def receipt_payload(self, session: RegistrarHandshake) -> dict[int, Any]:
        """The payload of a correct receipt for `session`'s note."""
        assert session.device is not None
        assert session.note is not None
        return {
            Label.VERSION: PROTOCOL_VERSION,
            Label.DEVICE_ID: self.device.device_id,
            Label.REGISTRAR_NONCE: session.registrar_nonce,
            Label.DEVICE_NONCE: session.device.device_nonce,
            Label.NOTE_HASH: hashlib.sha256(session.note).digest(),
            Label.CHAIN_HEAD: payload_of(session.note)[Label.CHAIN_HEAD],
        }

    def sign_invoice(self, payload: bytes) -> bytes:
        """Invoice payload bytes signed as is by the manufacturer's invoice signer."""
        x5chain = (certificate_to_der(self.maker.signer),)
        return sign_raw(payload, ContentType.INVOICE, self.maker.signer_key, x5chain=x5chain)

    def sign_as_device(self, payload: bytes, content_type: ContentType) -> bytes:
        """Payload bytes signed as is with the IDevID key (a proof or a receipt)."""
        return sign_raw(payload, content_type, self.device.key, kid=self.device.device_id)

    def sign_as_home(self, payload: bytes, content_type: ContentType) -> bytes:
        """Payload bytes signed as is with the home key, its fingerprint as kid (hello, link, note)."""
        return sign_raw(payload, content_type, self.home, kid=self.home_kid)

    def good_note_still_accepted(self, session: RegistrarHandshake) -> None:
        """The session a refused note was sent in is still open: the right note goes through."""
        note = session.note or session.make_note(signer=self.home, issued_at=NOW_TS)
        session.read_receipt(self.accept(note).receipt)
        assert session.done


def bundle_with_proof(bundle: bytes, proof: bytes) -> bytes:
    """A proof bundle with its proof (key 1) replaced."""
    value = cbor2.loads(bundle)
    assert isinstance(value, dict)
    value[1] = proof
    return encode(value)

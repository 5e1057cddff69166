"""The cast of the test vectors: one manufacturer, its device, three homes and the chain between them.

Every key comes from a fixed label and every time and nonce is fixed, so with Ed25519 the whole scene,
signatures included, is the same on every run. docs/vectors/README.md lists these inputs for people who
rebuild the vectors without reading Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from custom_components.autoadd.protocol.chain import VerifiedChain, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.handshake import AcceptedNote, RegistrarHandshake
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from tests.factory import NOW, NOW_TS, Device, Manufacturer, add_link, fixed_key

REGISTRAR_NONCE = bytes(range(32))
DEVICE_NONCE = bytes(range(32, 64))
#: The second handshake (a note that carries links, the Device CA device).
REGISTRAR_NONCE_2 = bytes(range(64, 96))
DEVICE_NONCE_2 = bytes(range(96, 128))
#: A nonce no session holds, for the negative notes.
OTHER_NONCE = bytes([0xEE] * 32)
ORDER_REF = "ORDER-42"
MODEL = "Lamp 1"
CONFIG = {"name": "Porch lamp"}


@dataclass
class Scene:
    """Everything the vector groups are made from."""

    key_type: KeyType
    maker: Manufacturer
    device: Device
    home_a: PrivateKey
    home_a2: PrivateKey
    home_b: PrivateKey
    stranger: PrivateKey
    links: list[bytes]
    chain: VerifiedChain
    session: RegistrarHandshake
    bundle: bytes
    note: bytes
    accepted: AcceptedNote

    @property
    def roots(self) -> list[x509.Certificate]:
        """The trusted roots of every vector: the one manufacturer root."""
        return [self.maker.root]

    def prefix(self, length: int) -> VerifiedChain:
        """The device's chain when it held only its first `length` links."""
        return verify_chain(self.links[:length], roots=self.roots, now=NOW)


def make_scene(key_type: KeyType) -> Scene:
    """Build the scene: invoice to A, A rotates to A', A' hands over to B, B onboards the device."""
    maker = Manufacturer.create(f"Vector {key_type.value}", key_type)
    device = maker.make_device("VEC-0001", key_type)
    home_a = fixed_key(f"vector home A {key_type.value}", key_type)
    home_a2 = fixed_key(f"vector home A rotated {key_type.value}", key_type)
    home_b = fixed_key(f"vector home B {key_type.value}", key_type)
    stranger = fixed_key(f"vector stranger {key_type.value}", key_type)
    links = [maker.invoice(device, [home_a], order_ref=ORDER_REF)]
    add_link(links, home_a, [home_a2], LinkReason.ROTATE, [maker.root])
    add_link(links, home_a2, [home_b], LinkReason.HANDOVER, [maker.root])
    device.links = links
    chain = device.chain()

    session = RegistrarHandshake(home_b, issued_at=NOW_TS, nonce=REGISTRAR_NONCE)
    responder = device.responder()
    bundle = responder.answer_hello(session.hello, chain, now=0.0, nonce=DEVICE_NONCE)
    session.read_proof(bundle, roots=[maker.root], now=NOW)
    note = session.make_note(signer=home_b, issued_at=NOW_TS, config=CONFIG)
    accepted = responder.accept_note(note, chain, now=1.0)
    session.read_receipt(accepted.receipt)
    return Scene(
        key_type,
        maker,
        device,
        home_a,
        home_a2,
        home_b,
        stranger,
        links,
        chain,
        session,
        bundle,
        note,
        accepted,
    )


def certificate_inputs(cert: x509.Certificate, issuer: str) -> dict[str, object]:
    """What a certificate was made from, as the README lists it."""
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": issuer,
        "serial": cert.serial_number,
        "not_before": int(cert.not_valid_before_utc.timestamp()),
        "not_after": cert.not_valid_after_utc.strftime("%Y%m%d%H%M%SZ"),
        "ca": constraints.ca,
        "path_length": constraints.path_length,
    }

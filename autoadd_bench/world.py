"""A manufacturer, its devices and their chains, made in memory with the protocol's own functions.

The same shapes a vendor ships (autoadd-vendor with a device CA): a root, an invoice signer and a device
CA under it, and per device an IDevID certificate issued by the CA and an invoice naming the home.
Longer chains append links signed by the current owner, as rotations do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt

from cryptography import x509

from custom_components.autoadd.protocol.certificates import certificate_hash, certificate_to_der
from custom_components.autoadd.protocol.chain import (
    VerifiedChain,
    issue_invoice,
    issue_link,
    read_invoice,
    read_link,
    verify_chain,
)
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.handshake import DeviceResponder
from custom_components.autoadd.protocol.idevid import device_id_for
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, generate_private_key
from custom_components.autoadd.protocol.manufacturer import (
    make_device_ca_certificate,
    make_idevid_certificate,
    make_root_certificate,
    make_signer_certificate,
)

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ISSUED = NOW - dt.timedelta(days=1)


@dataclass
class Maker:
    """A manufacturer: root, invoice signer and device CA, all of one key type."""

    kind: KeyType
    root: x509.Certificate
    signer_key: PrivateKey
    signer: x509.Certificate
    ca_key: PrivateKey
    ca: x509.Certificate
    made: int = 0

    @classmethod
    def create(cls, kind: KeyType, name: str = "Bench") -> Maker:
        """A fresh manufacturer."""
        root_key, signer_key, ca_key = (generate_private_key(kind) for _ in range(3))
        then = NOW - dt.timedelta(days=30)
        root = make_root_certificate(root_key, name, now=then, serial=1)
        signer = make_signer_certificate(root_key, root, signer_key.public_key(), now=then, serial=2)
        ca = make_device_ca_certificate(root_key, root, ca_key.public_key(), now=then, serial=3)
        return cls(kind, root, signer_key, signer, ca_key, ca)

    def device(self, owner: PrivateKey, links: int = 1) -> BenchDevice:
        """A device invoiced to `owner`, its chain grown to `links` links by the owner's rotations."""
        self.made += 1
        key = generate_private_key(self.kind)
        cert = make_idevid_certificate(
            self.ca_key,
            self.ca,
            key.public_key(),
            serial_number=f"BENCH{self.made:06d}",
            model="Bench lamp",
            now=NOW - dt.timedelta(days=2),
            serial=1000 + self.made,
        )
        device_id = device_id_for(key.public_key())
        invoice = issue_invoice(
            signer=self.signer_key,
            signer_chain=[self.signer],
            device_id=device_id,
            idevid_hash=certificate_hash(cert),
            owners=[owner.public_key()],
            issued_at=int(ISSUED.timestamp()),
            model="Bench lamp",
        )
        return BenchDevice(key, (cert, self.ca), grow([invoice], owner, links))


def grow(chain: list[bytes], owner: PrivateKey, links: int) -> list[bytes]:
    """`chain` with links appended by `owner` (naming itself again) until it has `links` links."""
    out = list(chain)
    head = read_invoice(out[0], roots=None, now=NOW).head
    for link in out[1:]:
        head, _ = read_link(link, head)
    while len(out) < links:
        link = issue_link(
            signer=owner,
            head=head,
            owners=[owner.public_key()],
            reason=LinkReason.ROTATE,
            issued_at=int(ISSUED.timestamp()) + len(out),
        )
        head, _ = read_link(link, head)
        out.append(link)
    return out


@dataclass
class BenchDevice:
    """A device's IDevID key and chain of certificates, and the invoice chain it holds."""

    key: PrivateKey
    certificates: tuple[x509.Certificate, ...]
    links: list[bytes]
    responder: DeviceResponder = field(init=False)
    chain: VerifiedChain = field(init=False)

    def __post_init__(self) -> None:
        self.responder = DeviceResponder(self.key, list(self.certificates))
        self.chain = verify_chain(self.links, roots=None, now=NOW)

    @property
    def device_id(self) -> str:
        """The device id, as the registrar names it."""
        return device_id_for(self.key.public_key()).hex()

    @property
    def idevid(self) -> list[bytes]:
        """The IDevID chain as sent."""
        return [certificate_to_der(cert) for cert in self.certificates]

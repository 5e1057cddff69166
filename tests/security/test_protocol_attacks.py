"""Attacks on the protocol core: what a hostile peer on the home network can put in a message.

Pure tests of the public entry points (read_hello through a device's answer_hello, read_proof, accept_note,
read_receipt, read_invoice, extend), no Home Assistant. Each attack must be refused with its documented
error, the error must print, and nothing may change: the same handshake then completes with the genuine
messages.

- A 5 000-digit integer in any field: CPython cannot format it, so an error message built from it raised
  ValueError instead of the protocol error.
- A verifier clock near year 9999: `now + 1 day` overflowed while checking an invoice's issue time.
- Bodies one byte over their limit (docs/protocol.md §4.3): `too_large`, before anything is parsed.
- Certificates that load but whose names or validity times do not decode: ValueError later, in the path
  check or when a record reads the model.
"""

from __future__ import annotations

from collections.abc import Callable
import datetime as dt
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
import pytest

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.chain import extend, read_invoice
from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_MESSAGE_SIZE,
    Label,
    LinkReason,
)
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.errors import (
    AutoAddError,
    MalformedError,
    TooLargeError,
    UnsupportedAlgorithmError,
    UnsupportedVersionError,
    UntrustedManufacturerError,
    WrongContentTypeError,
)
from custom_components.autoadd.protocol.handshake import ProvenDevice, RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey
from tests.factory import NOW, NOW_TS, Device, Manufacturer, add_link, fixed_key
from tests.protocol.helpers import payload_of, protected_of, with_protected

#: `str(HUGE)` raises ValueError: Exceeds the limit (4300 digits) for integer string conversion.
HUGE = 10**5000


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """These tests are pure: no Home Assistant instance (overrides the integration conftest's fixture)."""


@pytest.fixture(autouse=True)
def auto_mock_zeroconf() -> None:
    """No zeroconf either."""


class Onboarding:
    """One handshake of a registrar whose home key is `home`, answered by a device whose chain names it."""

    def __init__(self, maker: Manufacturer | None = None, device: Device | None = None) -> None:
        self.maker = maker or Manufacturer.create()
        self.home = fixed_key("attacks home")
        self.session = RegistrarHandshake(self.home, issued_at=NOW_TS)
        self.receipt: bytes | None = None
        self.answer(device or self.maker.make_device())

    def answer(self, device: Device) -> None:
        """`device`, with an invoice and a rotation naming `home`, answers this handshake's hello."""
        self.device = device
        device.links.append(self.maker.invoice(device, [self.home]))
        add_link(device.links, self.home, [self.home], LinkReason.ROTATE, [self.maker.root])
        self.responder = device.responder()
        self.bundle = self.responder.answer_hello(self.session.hello, device.chain(), now=0.0)

    @property
    def roots(self) -> list[x509.Certificate]:
        return [self.maker.root]

    @property
    def proof(self) -> bytes:
        proof: bytes = cbor2.loads(self.bundle)[1]
        return proof

    def read_proof(self, bundle: bytes, now: dt.datetime = NOW) -> ProvenDevice:
        return self.session.read_proof(bundle, roots=self.roots, now=now)

    def accept(self, note: bytes) -> object:
        return self.responder.accept_note(note, self.device.chain(), now=1.0)

    def deliver_note(self) -> bytes:
        """The genuine note (made once), taken by the device; its receipt is kept."""
        if self.session.device is None:
            self.read_proof(self.bundle)
        note = self.session.note or self.session.make_note(signer=self.home, issued_at=NOW_TS)
        self.receipt = self.responder.accept_note(note, self.device.chain(), now=1.0).receipt
        return note

    def complete(self) -> None:
        """Nothing changed: the genuine proof, note and receipt still go through, in this same handshake."""
        if self.receipt is None:
            self.deliver_note()
        assert self.receipt is not None
        self.session.read_receipt(self.receipt)
        assert self.session.done


def refused(error: type[AutoAddError], call: Callable[[], object]) -> AutoAddError:
    """`call` raises exactly `error`, whose text prints, stays short and quotes nothing huge."""
    with pytest.raises(AutoAddError) as caught:
        call()
    assert type(caught.value) is error, caught.value.detail
    assert caught.value.code == error.code
    text = str(caught.value)
    assert len(text) < 300
    assert "0000000000" not in text
    return caught.value


def resigned(message: bytes, key: PrivateKey, change: Callable[[dict[Any, Any]], None]) -> bytes:
    """The message with its payload changed and signed again by `key`, with the same headers."""
    payload = payload_of(message)
    change(payload)
    header = protected_of(message)
    return cose.sign(
        payload,
        header[cose.HEADER_CONTENT_TYPE],
        key,
        kid=header.get(cose.HEADER_KID),
        x5chain=tuple(header.get(cose.HEADER_X5CHAIN, ())),
    )


type Change = Callable[[dict[Any, Any]], None]


def put(label: Any, value: Any) -> Change:
    """A change that sets one map entry."""
    return lambda fields: fields.__setitem__(label, value)


def _bundle_with(onb: Onboarding, *, proof: bytes | None = None, chain: list[bytes] | None = None) -> bytes:
    value = cbor2.loads(onb.bundle)
    if proof is not None:
        value[1] = proof
    if chain is not None:
        value[3] = chain
    return dumps(value)


# --- Finding 1: huge integers ---------------------------------------------------------------------------


def _hello(onb: Onboarding, hello: bytes) -> Callable[[], object]:
    return lambda: onb.responder.answer_hello(hello, onb.device.chain(), now=0.0)


def _proof(onb: Onboarding, change: Change) -> Callable[[], object]:
    return lambda: onb.read_proof(_bundle_with(onb, proof=resigned(onb.proof, onb.device.key, change)))


def _note(onb: Onboarding, change: Change) -> Callable[[], object]:
    onb.read_proof(onb.bundle)
    note = onb.session.make_note(signer=onb.home, issued_at=NOW_TS)
    return lambda: onb.accept(resigned(note, onb.home, change))


def _receipt(onb: Onboarding, change: Change) -> Callable[[], object]:
    onb.deliver_note()
    assert onb.receipt is not None
    bad = resigned(onb.receipt, onb.device.key, change)
    return lambda: onb.session.read_receipt(bad)


def _invoice(onb: Onboarding, change: Change) -> Callable[[], object]:
    invoice = resigned(onb.device.links[0], onb.maker.signer_key, change)
    return lambda: onb.read_proof(_bundle_with(onb, chain=[invoice, *onb.device.links[1:]]))


def _link(onb: Onboarding, change: Change) -> Callable[[], object]:
    chain = read_invoice(onb.device.links[0], roots=None, now=NOW)
    link = resigned(onb.device.links[1], onb.home, change)
    return lambda: extend(chain, [link])


type Attack = Callable[[Onboarding], Callable[[], object]]

#: Where a peer puts the integer: the attack on a fresh onboarding, and the error it must get.
HUGE_INTEGER_ATTACKS: dict[str, tuple[Attack, type[AutoAddError]]] = {
    "hello COSE alg": (
        lambda onb: _hello(onb, with_protected(onb.session.hello, put(cose.HEADER_ALG, HUGE))),
        UnsupportedAlgorithmError,
    ),
    "hello content type": (
        lambda onb: _hello(onb, with_protected(onb.session.hello, put(cose.HEADER_CONTENT_TYPE, HUGE))),
        WrongContentTypeError,
    ),
    "hello version": (
        lambda onb: _hello(onb, resigned(onb.session.hello, onb.home, put(Label.VERSION, HUGE))),
        UnsupportedVersionError,
    ),
    "hello unknown key": (
        lambda onb: _hello(onb, resigned(onb.session.hello, onb.home, put(HUGE, 0))),
        MalformedError,
    ),
    "proof bundle map key": (
        lambda onb: lambda: onb.read_proof(dumps({**cbor2.loads(onb.bundle), (HUGE,): 0})),
        MalformedError,
    ),
    "proof unknown key": (lambda onb: _proof(onb, put(HUGE, 0)), MalformedError),
    "proof chain length": (lambda onb: _proof(onb, put(Label.CHAIN_LENGTH, HUGE)), MalformedError),
    "note version": (lambda onb: _note(onb, put(Label.VERSION, HUGE)), UnsupportedVersionError),
    "note unknown value": (lambda onb: _note(onb, put(99, HUGE)), MalformedError),
    "note config map key": (lambda onb: _note(onb, put(Label.CONFIG, {"a": {(HUGE,): 1}})), MalformedError),
    "receipt unknown key": (lambda onb: _receipt(onb, put(HUGE, HUGE)), MalformedError),
    "receipt version": (lambda onb: _receipt(onb, put(Label.VERSION, -HUGE)), UnsupportedVersionError),
    "invoice unknown key": (lambda onb: _invoice(onb, put(HUGE, 1)), MalformedError),
    "invoice issued_at": (lambda onb: _invoice(onb, put(Label.ISSUED_AT, HUGE)), MalformedError),
    "link sequence number": (lambda onb: _link(onb, put(Label.SEQUENCE, HUGE)), MalformedError),
    "link unknown key": (lambda onb: _link(onb, put(HUGE, b"")), MalformedError),
}


@pytest.mark.parametrize("where", list(HUGE_INTEGER_ATTACKS))
def test_huge_integer_anywhere_is_refused_with_its_code(where: str) -> None:
    """Finding 1: a 5 000-digit integer gets the documented error (not ValueError), and changes nothing."""
    attack, error = HUGE_INTEGER_ATTACKS[where]
    onb = Onboarding()
    refused(error, attack(onb))
    onb.complete()


# --- Finding 2: times at the limits ---------------------------------------------------------------------

_LAST_SECOND = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("now", "issued_at", "error"),
    [
        (_LAST_SECOND, NOW_TS, None),  # the invoice and the never-expiring IDevID are fine in 9999
        (_LAST_SECOND, 2**64 - 1, UntrustedManufacturerError),  # checked at 2^37 (year 6325): signer expired
        (NOW, 2**64 - 1, UntrustedManufacturerError),  # far in the future
        (NOW, 0, UntrustedManufacturerError),  # 1970: before the signer certificate
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), NOW_TS, UntrustedManufacturerError),
    ],
    ids=["clock-9999", "clock-9999-max-issued-at", "max-issued-at", "issued-at-0", "clock-year-1"],
)
def test_clock_and_issue_times_at_the_limits(
    now: dt.datetime, issued_at: int, error: type[AutoAddError] | None
) -> None:
    """Finding 2: a clock near year 9999, issue times at the uint limits: an answer, not OverflowError."""
    onb = Onboarding()
    invoice = resigned(onb.device.links[0], onb.maker.signer_key, put(Label.ISSUED_AT, issued_at))
    if error is None:
        assert read_invoice(invoice, roots=onb.roots, now=now).head.issued_at == issued_at
        assert onb.read_proof(onb.bundle, now=now) is onb.session.device
    else:
        refused(error, lambda: read_invoice(invoice, roots=onb.roots, now=now))
        bundle = _bundle_with(onb, chain=[invoice, *onb.device.links[1:]])
        refused(error, lambda: onb.read_proof(bundle, now=now))
    onb.complete()


# --- Finding 3: size limits -----------------------------------------------------------------------------


def exactly(size: int, build: Callable[[int], bytes]) -> bytes:
    """`build(n)` (which grows with n, n padding bytes) for the n that makes it exactly `size` bytes."""
    padding = size - len(build(0))
    while len(data := build(padding)) > size:
        padding -= 1
    assert len(data) == size, (len(data), size)
    return data


def padded(message: bytes, key: PrivateKey, size: int) -> bytes:
    """A signed message of exactly `size` bytes: its payload with a padding entry, signed by `key`."""
    return exactly(size, lambda n: resigned(message, key, put(99, b"\0" * n)))


@pytest.mark.parametrize("over", [1, 0], ids=["one-byte-over", "at-the-limit"])
def test_bodies_over_their_limit_are_too_large(over: int) -> None:
    """Finding 3: a complete, well-formed body one byte over its §4.3 limit is `too_large` (proof bundle,
    note: 155 648; hello, receipt: 8 192); at the limit it is read (and refused for its padding entry)."""
    error = TooLargeError if over else MalformedError
    onb = Onboarding()
    fields = cbor2.loads(onb.bundle)
    bundle = exactly(MAX_BUNDLE_SIZE + over, lambda n: dumps({**fields, 9: b"\0" * n}))
    refused(error, lambda: onb.read_proof(bundle))
    refused(error, _hello(onb, padded(onb.session.hello, onb.home, MAX_MESSAGE_SIZE + over)))
    onb.read_proof(onb.bundle)
    note = onb.session.make_note(signer=onb.home, issued_at=NOW_TS)
    refused(error, lambda: onb.accept(padded(note, onb.home, MAX_BUNDLE_SIZE + over)))
    onb.deliver_note()
    assert onb.receipt is not None
    receipt = padded(onb.receipt, onb.device.key, MAX_MESSAGE_SIZE + over)
    refused(error, lambda: onb.session.read_receipt(receipt))
    onb.complete()


# --- Finding 4: certificates that load but do not decode ------------------------------------------------


def _year_zero_idevid(maker: Manufacturer) -> Device:
    """An IDevID whose notAfter says year 0000: it loads, but no datetime holds its validity."""
    device = maker.make_device("SN-Y0")
    der = certificate_to_der(device.cert)
    assert der.count(b"99991231235959Z") == 1
    cert = x509.load_der_x509_certificate(der.replace(b"99991231235959Z", b"00001231235959Z"))
    return Device(maker, device.key, cert)


def _undecodable_model_idevid(maker: Manufacturer) -> Device:
    """An IDevID whose model (title) is not UTF-8, properly signed by the root: it verified, and then
    `identity.model` (read when the device is recorded) raised ValueError."""
    device = maker.make_device("SN-U8")
    der, tbs = certificate_to_der(device.cert), device.cert.tbs_certificate_bytes
    bad_tbs = tbs.replace(b"Lamp 1", b"\xff\xfe\xfd\xfc\xfb\xfa")
    assert isinstance(maker.root_key, ed25519.Ed25519PrivateKey)
    bad = der.replace(tbs, bad_tbs).replace(device.cert.signature, maker.root_key.sign(bad_tbs))
    return Device(maker, device.key, x509.load_der_x509_certificate(bad))


@pytest.mark.parametrize(
    "make", [_year_zero_idevid, _undecodable_model_idevid], ids=["year-0", "non-utf8-model"]
)
def test_certificate_that_loads_but_does_not_decode(make: Callable[[Manufacturer], Device]) -> None:
    """Finding 4: an IDevID whose validity or name cryptography cannot decode is `malformed` (X0) in the
    proof, instead of ValueError in the path check or later, when the device's model is read."""
    maker = Manufacturer.create()
    onb = Onboarding(maker, make(maker))
    refused(MalformedError, lambda: onb.read_proof(onb.bundle))
    assert onb.session.device is None
    onb.answer(maker.make_device("SN-OK"))  # the same handshake, answered by a proper device
    assert onb.read_proof(onb.bundle).identity.model == "Lamp 1"
    onb.complete()

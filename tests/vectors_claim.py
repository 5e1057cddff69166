"""The claim code vectors (§5.2, §7.2a, §14.9): unassigned stock, claimed by home A with its claim code.

Device VEC-0003 is sold with an invoice naming no owner and the claim code whose secret is `CODE_SECRET`
(its hint is the first 3 bytes of the device id). Home A, whose recovery key is confirmed, runs the claim:
the claim link names [home_a, recovery]. The nonces and both CPace scalars are fixed, so every byte of the
group is the same on every run, except, in p256.json, what ECDSA signs (the IDevID certificate, the
invoice, the claim link and the answer and chains holding it).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
import hashlib
import hmac
from types import SimpleNamespace
from typing import Any
from unittest import mock

import cbor2
import cpace
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.chain import read_invoice, verify_chain
from custom_components.autoadd.protocol.claim import ClaimResponder, ClaimRun, claim_delay
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, ContentType, Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    algorithm_for,
    fingerprint,
    public_key_to_bytes,
)
from tests.factory import NOW, NOW_TS, Device, Manufacturer
from tests.vectors_forge import resize_signature, sign_raw
from tests.vectors_scene import OTHER_NONCE

SERIAL = "VEC-0003"
ORDER_REF = "ORDER-44"
#: The claim code's secret (8 bytes); its hint is the device id's first 3 bytes.
CODE_SECRET = bytes.fromhex("c0ffee0123456789")
#: A wrong guess: the same hint, the secret's last bit flipped.
WRONG_SECRET = bytes.fromhex("c0ffee0123456788")
REGISTRAR_NONCE = bytes(range(128, 160))
DEVICE_NONCE = bytes(range(160, 192))
#: The CPace scalars (X25519 clamps them): the device's (initiator, ya) and the registrar's (responder, yb).
DEVICE_SCALAR = bytes(range(192, 224))
REGISTRAR_SCALAR = bytes(range(224, 256))
#: The example claim code string of §5.2: hint 00 01 02, secret 03 04 ... 0a.
EXAMPLE = ClaimCode(bytes(range(3)), bytes(range(3, 11)))
CI_LABEL = b"AutoAdd claim"
DSI = b"CPace255"
#: Wrong-code counts whose delay (Q4) the group lists.
DELAY_COUNTS = (0, 1, 2, 3, 4, 5, 10, 14, 15, 64)


@contextmanager
def fixed_scalar(scalar: bytes) -> Iterator[None]:
    """`cpace.CPace.start` draws its scalar with `secrets.token_bytes`: make it this one."""
    with mock.patch.object(cpace, "secrets", SimpleNamespace(token_bytes=lambda size: scalar[:size])):
        yield


def x25519(scalar: bytes, point: bytes) -> bytes:
    """RFC 7748 X25519 (the scalar clamped), as OpenSSL computes it."""
    return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(point))


def prepend_len(data: bytes) -> bytes:
    """draft-irtf-cfrg-cpace prepend_len: the length as LEB128 (7 bits a byte, low first), then the data."""
    length, out = len(data), bytearray()
    while True:
        out.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            return bytes(out) + data


def lv_cat(*parts: bytes) -> bytes:
    """draft-irtf-cfrg-cpace lv_cat: each part with its length prepended, concatenated."""
    return b"".join(prepend_len(part) for part in parts)


def cpace_values(code: ClaimCode, device_id: bytes, home: bytes, owners: Sequence[bytes]) -> dict[str, str]:
    """Every intermediate value of the run (§14.9), from the formulas the protocol text gives: PRS, CI, sid,
    generator string, g (Elligator2 is the library's), both shares, K, ISK, mac_key, Tb and Ta."""
    prs, ci, sid = code.password, CI_LABEL + device_id + home, REGISTRAR_NONCE + DEVICE_NONCE
    zpad = max(0, 128 - 1 - len(prepend_len(prs)) - len(prepend_len(DSI)))
    generator_string = lv_cat(DSI, prs, bytes(zpad), ci, sid)
    assert generator_string == cpace._generator_string(prs, ci, sid)
    generator = cpace._elligator2(cpace._decode_u(hashlib.sha512(generator_string).digest()[:32]))
    ya, yb = x25519(DEVICE_SCALAR, generator), x25519(REGISTRAR_SCALAR, generator)
    k = x25519(DEVICE_SCALAR, yb)
    assert k == x25519(REGISTRAR_SCALAR, ya)
    ada, adb = b"", dumps(list(owners))
    isk = hashlib.sha512(lv_cat(b"CPace255_ISK", sid, k) + lv_cat(ya, ada) + lv_cat(yb, adb)).digest()
    mac_key = hashlib.sha512(b"CPaceMac" + sid + isk).digest()
    tb = hmac.new(mac_key, lv_cat(yb, adb), hashlib.sha512).digest()
    ta = hmac.new(mac_key, lv_cat(ya, ada), hashlib.sha512).digest()
    values = {
        "prs": prs,
        "ci": ci,
        "sid": sid,
        "generator_string": generator_string,
        "generator": generator,
        "ya_scalar": DEVICE_SCALAR,
        "ya": ya,
        "ada": ada,
        "yb_scalar": REGISTRAR_SCALAR,
        "yb": yb,
        "adb": adb,
        "k": k,
        "isk": isk,
        "mac_key": mac_key,
        "tb": tb,
        "ta": ta,
    }
    return {name: value.hex() for name, value in values.items()}


def example_code() -> dict[str, str]:
    """The example string of §5.2, with its parts."""
    return {
        "hint": EXAMPLE.hint.hex(),
        "secret": EXAMPLE.secret.hex(),
        "checksum": _checksum(EXAMPLE.password).hex(),
        "string": format_claim_code(EXAMPLE),
    }


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(b"AutoAdd claim code" + body).digest()[:4]


def _field(message: bytes, label: int) -> Any:
    return cbor2.loads(message)[label]


def _changed(message: bytes, **change: Any) -> bytes:
    """A claim message (a plain CBOR map) with fields replaced, or removed where the value is None."""
    fields = cbor2.loads(message)
    fields.update({getattr(Label, name.upper()): value for name, value in change.items()})
    return dumps({label: value for label, value in fields.items() if value is not None})


def claim_link(
    device: Device,
    head: bytes,
    owners: Sequence[bytes],
    *,
    key: PrivateKey | None = None,
    kid: bytes | None = None,
    x5chain: Sequence[bytes] | None = None,
    **change: Any,
) -> bytes:
    """A claim link on the link whose digest is `head`, signed as given; by default exactly what the device
    signs (§7.2a). `kid=b""` leaves the kid out, `x5chain=()` the x5chain; `change` replaces fields."""
    payload: dict[int, Any] = {
        Label.VERSION: PROTOCOL_VERSION,
        Label.DEVICE_ID: device.device_id,
        Label.PREVIOUS: head,
        Label.SEQUENCE: 1,
        Label.OWNERS: list(owners),
        Label.REASON: "claim",
        Label.ISSUED_AT: NOW_TS,
    }
    payload.update({getattr(Label, name.upper()): value for name, value in change.items()})
    signer = key or device.key
    protected: dict[int, Any] = {1: algorithm_for(signer), 3: ContentType.LINK.value}
    if kid != b"":
        protected[4] = device.device_id if kid is None else kid
    certificates = [certificate_to_der(device.cert)] if x5chain is None else list(x5chain)
    if certificates:
        protected[33] = certificates
    return sign_raw(protected, dumps(payload), signer)


class _Claim:
    """The vector run and what the negative cases are made from."""

    def __init__(
        self, maker: Manufacturer, key_type: KeyType, home: PrivateKey, recovery: PrivateKey
    ) -> None:
        self.device = maker.make_device(SERIAL, key_type)
        self.invoice = maker.invoice(self.device, [], order_ref=ORDER_REF)
        self.device.links = [self.invoice]
        self.unassigned = self.device.chain()
        assert not self.unassigned.head.owners
        self.home = home
        self.code = ClaimCode(self.device.device_id[:3], CODE_SECRET)
        self.owners: list[PublicKey] = [home.public_key(), recovery.public_key()]
        self.owner_bytes = [public_key_to_bytes(owner) for owner in self.owners]
        responder = ClaimResponder(self.code, self.device.device_id)
        registrar = self.run()
        self.start = registrar.start
        with fixed_scalar(DEVICE_SCALAR):
            start = responder.read_start(self.start, self.unassigned)
            self.started = responder.answer_start(start, now=0.0, nonce=DEVICE_NONCE)
        self.finish = self.finish_of(registrar)
        self.done = responder.finish(
            self.finish,
            self.unassigned,
            idevid_key=self.device.key,
            idevid_certificate=self.device.cert,
            now=1.0,
            issued_at=NOW_TS,
        )
        self.claimed = self.done.chain
        self.answer = self.done.answer
        assert registrar.read_link(self.answer, self.unassigned).links == self.claimed.links
        assert verify_chain(list(self.claimed.links), roots=None, now=NOW).head == self.claimed.head
        if key_type is KeyType.ED25519:  # the forging helper signs what the device signs
            assert self.link(self.owner_bytes) == self.claimed.links[1]

    def run(self, owners: Sequence[PublicKey] | None = None, secret: bytes = CODE_SECRET) -> ClaimRun:
        """Home A's run, with the vector's registrar nonce."""
        return ClaimRun(
            ClaimCode(self.code.hint, secret),
            device_id=self.device.device_id,
            home=self.home.public_key(),
            owners=self.owners if owners is None else owners,
            nonce=REGISTRAR_NONCE,
        )

    def finish_of(self, run: ClaimRun) -> bytes:
        """The run's finish request for the vector's started answer, with the vector's registrar scalar."""
        with fixed_scalar(REGISTRAR_SCALAR):
            return run.finish(self.started)

    def link(self, owners: Sequence[bytes], **options: Any) -> bytes:
        """A claim link on the unassigned invoice."""
        return claim_link(self.device, self.unassigned.head.digest, owners, **options)

    def answer_with(self, links: list[bytes], confirmation: bytes | None = None) -> bytes:
        """A claim answer holding `links`, with the device's tag of the vector run unless given."""
        tag = self.done.confirmation if confirmation is None else confirmation
        return dumps({Label.VERSION: PROTOCOL_VERSION, Label.LINKS: links, Label.CONFIRMATION: tag})


def claim_group(
    maker: Manufacturer,
    key_type: KeyType,
    *,
    home: PrivateKey,
    recovery: PrivateKey,
    stranger: PrivateKey,
    other_device: Device,
    owned_invoice: bytes,
) -> tuple[dict[str, Any], Device]:
    """The `claim` group, and the unassigned device (its key and IDevID go into `keys`, `certificates`)."""
    claim = _Claim(maker, key_type, home, recovery)
    device, code, claimed = claim.device, claim.code, claim.claimed
    values = cpace_values(code, device.device_id, fingerprint(home.public_key()), claim.owner_bytes)
    assert bytes.fromhex(values["ya"]) == _field(claim.started, Label.SHARE)
    assert bytes.fromhex(values["yb"]) == _field(claim.finish, Label.SHARE)
    assert bytes.fromhex(values["tb"]) == _field(claim.finish, Label.CONFIRMATION)
    assert bytes.fromhex(values["ta"]) == claim.done.confirmation
    group: dict[str, Any] = {
        "device": "device_idevid_unassigned",
        "idevid": "idevid_unassigned",
        "device_id": device.device_id.hex(),
        "code": {
            "hint": code.hint.hex(),
            "secret": code.secret.hex(),
            "checksum": _checksum(code.password).hex(),
            "string": format_claim_code(code),
        },
        "example_code": example_code(),
        "code_strings_valid": _valid_strings(format_claim_code(code)),
        "code_strings_invalid": _invalid_strings(code),
        "invoice": claim.invoice.hex(),
        "home_key": "home_a",
        "owners": ["home_a", "recovery"],
        "registrar_nonce": REGISTRAR_NONCE.hex(),
        "device_nonce": DEVICE_NONCE.hex(),
        "issued_at": NOW_TS,
        "cpace": values,
        "start": claim.start.hex(),
        "started": claim.started.hex(),
        "finish": claim.finish.hex(),
        "answer": claim.answer.hex(),
        "chain": {
            "links": [link.hex() for link in claimed.links],
            "digests": [digest.hex() for digest in claimed.digests],
            "reasons": [reason.value for reason in claimed.reasons],
            "owners_at_head": [fp.hex() for fp in claimed.head.owner_fingerprints],
        },
        "delays": [[failures, claim_delay(failures)] for failures in DELAY_COUNTS],
        "invalid_chains": _invalid_chains(claim, stranger, other_device, owned_invoice),
        "invalid_steps": _device_cases(claim, stranger, other_device) + _registrar_cases(claim),
    }
    return group, device


def _valid_strings(text: str) -> list[dict[str, str]]:
    return [
        {"name": "lower case", "input": text.lower()},
        {"name": "no dashes", "input": text.replace("-", "")},
        {"name": "spaces instead of dashes, around too", "input": "  " + text.replace("-", " ") + "\n"},
    ]


def _code_text(body: bytes, checksum: bytes, prefix: str = "AACC1") -> str:
    encoded = base64.b32encode(body + checksum).decode("ascii").rstrip("=")
    return "-".join([prefix, *(encoded[i : i + 5] for i in range(0, len(encoded), 5))])


def _invalid_strings(code: ClaimCode) -> list[dict[str, str]]:
    """Claim code strings refused (§5.2), each with its reason."""
    good = format_claim_code(code)
    data = good[len("AACC1-") :].replace("-", "")
    at = next(i for i in range(len(data) - 1) if data[i] != data[i + 1])  # a swap that changes the text
    cases = [
        ("one character changed (a typo)", "AACC1" + data[:3] + ("B" if data[3] == "A" else "A") + data[4:]),
        (
            "the right body with its checksum inverted",
            _code_text(code.password, bytes(b ^ 0xFF for b in _checksum(code.password))),
        ),
        (
            "two neighbouring characters swapped",
            "AACC1" + data[:at] + data[at + 1] + data[at] + data[at + 2 :],
        ),
    ]
    reasons = [(name, text, "checksum") for name, text in cases] + [
        ("a digit 0 (base32 has none)", "AACC1" + "0" + data[1:], "characters"),
        ("a non-ASCII long s (U+017F)", good[:-1] + "\u017f", "characters"),
        ("prefix AACC2", "AACC2" + good[5:], "prefix"),
        ("a recovery key string's prefix", "AARK1" + good[5:], "prefix"),
        ("the last group missing (20 characters)", "AACC1" + data[:-4], "length"),
        ("one character more (25)", good + "A", "length"),
    ]
    return [{"name": name, "input": text, "reason": reason} for name, text, reason in reasons]


def _invalid_chains(
    claim: _Claim, stranger: PrivateKey, other_device: Device, owned_invoice: bytes
) -> list[dict[str, Any]]:
    """Chains [invoice, claim link, ...] refused (CL1-CL3, V1-V2, L5-L10), with roots [root] at `now`."""
    invoice, owners, home = claim.invoice, claim.owner_bytes, claim.home
    idevid = certificate_to_der(claim.device.cert)
    good = claim.claimed.links[1]
    owned = read_invoice(owned_invoice, roots=None, now=NOW).head
    claim_on_owned = sign_raw(
        {1: algorithm_for(home), 3: ContentType.LINK.value, 4: fingerprint(home.public_key())},
        dumps(
            {
                Label.VERSION: PROTOCOL_VERSION,
                Label.DEVICE_ID: owned.device_id,
                Label.PREVIOUS: owned.digest,
                Label.SEQUENCE: 1,
                Label.OWNERS: [public_key_to_bytes(home.public_key())],
                Label.REASON: "claim",
                Label.ISSUED_AT: NOW_TS,
            }
        ),
        home,
    )
    second = claim_link(claim.device, claim.claimed.head.digest, owners, sequence=2)
    other_idevid = certificate_to_der(other_device.cert)
    cases: list[tuple[str, list[bytes], str]] = [
        ("claim link without x5chain (CL1)", [invoice, claim.link(owners, x5chain=())], "signer_not_owner"),
        (
            "claim link carrying another device's IDevID certificate, VEC-0001's (CL1)",
            [invoice, claim.link(owners, x5chain=[other_idevid])],
            "signer_not_owner",
        ),
        (
            "claim link whose x5chain holds the IDevID certificate twice (CL1)",
            [invoice, claim.link(owners, x5chain=[idevid, idevid])],
            "signer_not_owner",
        ),
        ("claim link without kid (CL3)", [invoice, claim.link(owners, kid=b"")], "signer_not_owner"),
        (
            "claim link whose kid is home A's fingerprint (CL3)",
            [invoice, claim.link(owners, kid=fingerprint(home.public_key()))],
            "signer_not_owner",
        ),
        (
            "claim link signed by the stranger under the device's kid and certificate (V2)",
            [invoice, claim.link(owners, key=stranger)],
            "bad_signature",
        ),
        ("claim link with a 65-byte signature (V1a)", [invoice, resize_signature(good, 65)], "malformed"),
        (
            "claim link naming VEC-0001's device id (L6)",
            [invoice, claim.link(owners, device_id=other_device.device_id)],
            "wrong_device",
        ),
        ("claim link with sequence 2 (L7)", [invoice, claim.link(owners, sequence=2)], "wrong_sequence"),
        (
            "claim link whose previous is not the invoice's digest (L8)",
            [invoice, claim.link(owners, previous=hashlib.sha256(b"another invoice").digest())],
            "wrong_previous_hash",
        ),
        (
            "link 1 of unassigned stock with reason rotate (L10)",
            [invoice, claim.link(owners, reason="rotate")],
            "malformed",
        ),
        ("claim link naming no owner (L9)", [invoice, claim.link([])], "invalid_owners"),
        (
            "claim link naming home A twice (L9)",
            [invoice, claim.link([owners[0], owners[0]])],
            "invalid_owners",
        ),
        (
            "a second claim link by the device on the claimed head (L3: the device is no owner)",
            [invoice, good, second],
            "signer_not_owner",
        ),
        (
            "reason claim on a head that names owners: chain.links[0], then a link home A signed (L10)",
            [owned_invoice, claim_on_owned],
            "malformed",
        ),
    ]
    return [
        {
            "name": name,
            "kind": "chain",
            "input": [link.hex() for link in links],
            "error": error,
            "roots": ["root"],
            "now": NOW_TS,
        }
        for name, links, error in cases
    ]


def _device_cases(claim: _Claim, stranger: PrivateKey, other_device: Device) -> list[dict[str, Any]]:
    """Claim starts and finishes the device refuses (Q1-Q3, F1-F8), each in the state it names."""
    start, finish = claim.start, claim.finish
    tag = _field(finish, Label.CONFIRMATION)
    fresh: dict[str, Any] = {"chain_length": 1, "session": None}
    opened: dict[str, Any] = {
        "chain_length": 1,
        "session": {"opened_by": "claim.start", "chain_length_at_start": 1},
    }
    later = {"chain_length": 2, "session": opened["session"]}
    stranger_spki = public_key_to_bytes(stranger.public_key())
    cases: list[tuple[str, bytes, str, dict[str, Any], float]] = [
        (
            "start for another device (VEC-0001)",
            _changed(start, device_id=other_device.device_id),
            "wrong_device",
            fresh,
            1.0,
        ),
        (
            "the vector start once the device is claimed",
            start,
            "already_claimed",
            {"chain_length": 2, "session": None},
            1.0,
        ),
        ("start of version 2", _changed(start, version=2), "unsupported_version", fresh, 1.0),
        (
            "start without registrar_fingerprint (label 15)",
            _changed(start, registrar_fingerprint=None),
            "malformed",
            fresh,
            1.0,
        ),
        (
            "start with a 31-byte registrar nonce",
            _changed(start, registrar_nonce=REGISTRAR_NONCE[:31]),
            "malformed",
            fresh,
            1.0,
        ),
        (
            "finish made with a wrong code (the secret's last bit)",
            claim.finish_of(claim.run(secret=WRONG_SECRET)),
            "wrong_claim_code",
            opened,
            1.0,
        ),
        (
            "finish whose owners a relay replaced by [stranger]",
            _changed(finish, owners=[stranger_spki]),
            "wrong_claim_code",
            opened,
            1.0,
        ),
        (
            "finish with a low-order share (u = 0)",
            _changed(finish, share=bytes(32)),
            "wrong_claim_code",
            opened,
            1.0,
        ),
        (
            "finish whose confirmation has a flipped bit",
            _changed(finish, confirmation=bytes([tag[0] ^ 1]) + tag[1:]),
            "wrong_claim_code",
            opened,
            1.0,
        ),
        (
            "finish with a 63-byte confirmation",
            _changed(finish, confirmation=tag[:63]),
            "malformed",
            opened,
            1.0,
        ),
        (
            "finish for a device nonce no session holds",
            _changed(finish, device_nonce=OTHER_NONCE),
            "unknown_session",
            opened,
            1.0,
        ),
        (
            "the good finish 61 s after the start (the session lived 60 s)",
            finish,
            "unknown_session",
            opened,
            61.0,
        ),
        (
            "finish with the right code naming only the stranger, not the start's home (F8)",
            claim.finish_of(claim.run([stranger.public_key()])),
            "not_owner",
            opened,
            1.0,
        ),
        (
            "finish with the right code naming the stranger first, then the start's home (F8)",
            claim.finish_of(claim.run([stranger.public_key(), claim.owners[0]])),
            "not_owner",
            opened,
            1.0,
        ),
        (
            "finish with the right code naming home A twice (F7)",
            claim.finish_of(claim.run([claim.owners[0], claim.owners[0]])),
            "invalid_owners",
            opened,
            1.0,
        ),
        (
            "the good finish after the claim link reached the device another way (F4)",
            finish,
            "already_claimed",
            later,
            1.0,
        ),
    ]
    return [
        {
            "name": name,
            "step": "claim_start" if _is_start(data) else "claim_finish",
            "input": data.hex(),
            "error": error,
            "device": {**state, "now": now},
        }
        for name, data, error, state, now in cases
    ]


def _flipped(tag: bytes) -> bytes:
    return bytes([tag[0] ^ 1]) + tag[1:]


def _is_start(message: bytes) -> bool:
    return Label.REGISTRAR_NONCE in cbor2.loads(message)


def _registrar_cases(claim: _Claim) -> list[dict[str, Any]]:
    """Answers home A's registrar refuses: to the start (`claim_started`), and to the finish
    (`claim_answer`) after it sent `claim.finish`; the proven chain is [`claim.invoice`]."""
    started = claim.started
    cases: list[tuple[str, str, bytes, str]] = [
        (
            "started with a low-order share (u = 0)",
            "claim_started",
            _changed(started, share=bytes(32)),
            "malformed",
        ),
        (
            "started with a 16-byte device nonce",
            "claim_started",
            _changed(started, device_nonce=DEVICE_NONCE[:16]),
            "malformed",
        ),
        (
            "the claim link alone, not in a claim answer map",
            "claim_answer",
            claim.claimed.links[1],
            "malformed",
        ),
        ("the claim link as a bare byte string", "claim_answer", dumps(claim.claimed.links[1]), "malformed"),
        (
            "the device's tag with one bit flipped (it does not know the code)",
            "claim_answer",
            claim.answer_with(
                [claim.claimed.links[1]],
                bytes([claim.done.confirmation[0] ^ 1]) + claim.done.confirmation[1:],
            ),
            "claim_unproven",
        ),
        (
            "the registrar's own tag echoed back",
            "claim_answer",
            claim.answer_with([claim.claimed.links[1]], _field(claim.finish, Label.CONFIRMATION)),
            "claim_unproven",
        ),
        (
            "a claim link naming only home A, not the owners sent",
            "claim_answer",
            claim.answer_with([claim.link(claim.owner_bytes[:1])]),
            "not_owner",
        ),
        (
            "a claim link without x5chain",
            "claim_answer",
            claim.answer_with([claim.link(claim.owner_bytes, x5chain=())]),
            "signer_not_owner",
        ),
        (
            "two links in the answer",
            "claim_answer",
            claim.answer_with([claim.claimed.links[1]] * 2),
            "malformed",
        ),
        ("an answer over 16 512 bytes", "claim_answer", claim.answer_with([bytes(16500)]), "too_large"),
    ]
    state = {"home_key": "home_a", "owners": ["home_a", "recovery"], "registrar_nonce": REGISTRAR_NONCE.hex()}
    return [
        {"name": name, "step": step, "input": data.hex(), "error": error, "registrar": state}
        for name, step, data, error in cases
    ]

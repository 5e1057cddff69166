"""§7.5 (hello, H1-H5) and §7.6 (the proof the device answers with, P1-P14), sent to `/autoadd/v1/hello`.

None of these needs an owner key: any party may obtain a proof bundle (§7.5), and every refused hello is
built from a fresh key of the runner's own.
"""

from __future__ import annotations

from collections.abc import Sequence
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.const import MAX_MESSAGE_SIZE, ContentType, Label
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.handshake import RegistrarHandshake, make_hello
from custom_components.autoadd.protocol.keys import KeyType, fingerprint
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO

from .http import Answer, DeviceHttp
from .messages import (
    Probe,
    hello_payload,
    high_s_twin,
    indefinite_twin,
    now_ts,
    random_bytes,
    read_probe,
    signed,
    stranger,
    with_flipped_signature,
    with_header,
    with_short_signature,
)
from .results import Result, describe_answer, expect_error, failed, passed, skipped


def _p384_spki() -> bytes:
    """A well-formed public key of a type outside the allow-list (§2.3: `unsupported_algorithm`)."""
    return (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def bundle_of(rule: str, title: str, answer: Answer, nonce: bytes, key_fp: bytes) -> Result | Probe:
    """A good hello's answer: 200, `application/cbor`, a bundle whose proof answers this very hello."""
    if answer.status != 200 or answer.content_type != MEDIA_TYPE:
        return failed(rule, title, f"expected 200 {MEDIA_TYPE}, got {describe_answer(answer)}")
    try:
        probe = read_probe(answer.body)
    except AutoAddError as err:
        return failed(rule, title, f"the proof bundle is not one: {err.code}")
    if probe.registrar_nonce != nonce or probe.registrar_fingerprint != key_fp:
        return failed(rule, title, "the proof does not carry this hello's nonce and key fingerprint")
    if probe.chain_head != probe.chain.head.digest or probe.chain_length != len(probe.chain.links):
        return failed(rule, title, "the proof's chain head or length is not the bundle's chain")
    return probe


def good_hello_title(key_type: KeyType) -> str:
    """The line of a good hello's check."""
    alg = "ES256" if key_type is KeyType.P256 else "EdDSA"
    return f"a good hello ({alg}) is answered 200 with a proof bundle for it"


async def good_hello(http: DeviceHttp, key_type: KeyType = KeyType.ED25519) -> Result | Probe:
    """A genuine hello from a stranger's key: the device must answer with a bundle for it."""
    key = stranger(key_type)
    nonce = random_bytes()
    answer = await http.post(PATH_HELLO, make_hello(key, nonce, now_ts()))
    return bundle_of("H1-H5", good_hello_title(key_type), answer, nonce, fingerprint(key.public_key()))


async def hello_checks(http: DeviceHttp, probe: Probe) -> list[Result]:
    """Every refused hello of §7.5 without an owner key; `probe` is a good hello's answer."""
    results: list[Result] = []
    key = stranger()
    good = make_hello(key, random_bytes(), now_ts())

    async def refused(rule: str, title: str, body: bytes, code: str) -> None:
        results.append(expect_error(rule, title, await http.post(PATH_HELLO, body), code))

    await refused("H1", "a proof sent as a hello", probe.proof, "wrong_content_type")
    await refused("H1", "an invoice sent as a hello", probe.chain.links[0], "wrong_content_type")
    await refused(
        "H1",
        "a hello without a content type",
        with_header(good, cose.HEADER_CONTENT_TYPE, None),
        "wrong_content_type",
    )
    await refused("H1", f"a hello over {MAX_MESSAGE_SIZE} bytes", bytes(MAX_MESSAGE_SIZE + 1), "too_large")
    await refused(
        "H1", "a hello in non-deterministic CBOR (indefinite length)", indefinite_twin(good), "malformed"
    )
    await refused("H1", "a hello with trailing bytes", good + b"\x00", "malformed")
    await refused(
        "H1",
        "a hello with an unsupported alg (-257)",
        with_header(good, cose.HEADER_ALG, -257),
        "unsupported_algorithm",
    )
    await refused("H1", "a hello with an unknown protected header", with_header(good, 5, b"x"), "malformed")

    payload = hello_payload(key, random_bytes())
    del payload[Label.ISSUED_AT]
    await refused(
        "H2", "a hello payload without issued_at", signed(payload, ContentType.HELLO, key), "malformed"
    )
    payload = hello_payload(key, random_bytes()) | {Label.DEVICE_NONCE: random_bytes()}
    await refused(
        "H2", "a hello payload with an extra label", signed(payload, ContentType.HELLO, key), "malformed"
    )
    payload = hello_payload(key, random_bytes()) | {Label.VERSION: 2}
    await refused(
        "H2", "a hello of version 2", signed(payload, ContentType.HELLO, key), "unsupported_version"
    )
    payload = hello_payload(key, random_bytes()) | {Label.REGISTRAR_NONCE: b"short"}
    await refused("H2", "a hello with a 5-byte nonce", signed(payload, ContentType.HELLO, key), "malformed")

    payload = hello_payload(key, random_bytes()) | {Label.REGISTRAR_KEY: b"\x30\x03\x02\x01\x00"}
    await refused(
        "H3",
        "a hello naming a key that does not parse",
        signed(payload, ContentType.HELLO, key),
        "invalid_key",
    )
    payload = hello_payload(key, random_bytes()) | {Label.REGISTRAR_KEY: _p384_spki()}
    await refused(
        "H3", "a hello naming a P-384 key", signed(payload, ContentType.HELLO, key), "unsupported_algorithm"
    )

    await refused(
        "H4",
        "a hello whose kid is not its key's fingerprint",
        with_header(good, cose.HEADER_KID, random_bytes()),
        "bad_signature",
    )

    await refused(
        "H4",
        "a hello without kid",
        signed(hello_payload(key, random_bytes()), ContentType.HELLO, key, kid=False),
        "malformed",
    )
    await refused("H5", "a hello with a flipped signature bit", with_flipped_signature(good), "bad_signature")
    await refused("H5", "a hello whose signature is 63 bytes (V1a)", with_short_signature(good), "malformed")
    await refused(
        "H5",
        "an EdDSA-signed hello that says ES256",
        with_header(good, cose.HEADER_ALG, -7),
        "unsupported_algorithm",
    )
    p256 = stranger(KeyType.P256)
    await refused(
        "H5",
        "an ES256 hello with a high-S signature (V1a)",
        high_s_twin(make_hello(p256, random_bytes(), now_ts())),
        "malformed",
    )
    return results


async def proof_checks(http: DeviceHttp, roots: Sequence[x509.Certificate] | None) -> list[Result]:
    """P1-P14: the registrar core verifies a fresh proof against the maker's root (with --root)."""
    title = "the proof bundle verifies with the registrar core against --root"
    if not roots:
        return [skipped("P1-P14", title, "needs --root")]
    session = RegistrarHandshake(stranger(), issued_at=now_ts())
    answer = await http.post(PATH_HELLO, session.hello)
    if answer.status != 200:
        return [failed("P1-P14", title, f"expected 200, got {describe_answer(answer)}")]
    try:
        session.read_proof(answer.body, roots=roots, now=dt.datetime.now(dt.UTC))
    except AutoAddError as err:
        return [failed("P1-P14", title, f"the registrar core refuses it: {err.code}")]
    return [passed("P1-P14", title)]

"""docs/protocol.md §13, the device's half for the messages it reads: algorithm confusion, cross-message
signature reuse, oversized input, non-deterministic encoding and malleable signatures, each sent to the
reference device's HTTP endpoints as anyone on the network can.

Every attack must end in the documented HTTP status and error code, and leave the device as it was: the
same chain, owner imprint and configuration, in memory and on disk. Sessions and the chain the device
keeps are test_threats_device_sessions.py; the registrar's half is test_threats_registrar.py and
test_threats_bundles.py. The helpers here are shared by those modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import pytest

from autoadd_device.device import DeviceState
from autoadd_device.files import STATE
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.chain import encode_chain, issue_link
from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_CHAIN_LINKS,
    MAX_CHAIN_SIZE,
    MAX_MESSAGE_SIZE,
    ContentType,
    Label,
    LinkReason,
)
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint, public_key_to_bytes
from custom_components.autoadd.protocol.transport import (
    MEDIA_TYPE,
    PATH_HELLO,
    PATH_LINKS,
    PATH_NOTE,
    PeerError,
    read_error_body,
)
from tests.factory import NOW, NOW_TS, fixed_key
from tests.protocol.helpers import (
    cose_parts,
    encode,
    link_payload,
    non_canonical_map,
    payload_of,
    sign_link,
    sign_raw,
    with_part,
    with_payload,
    with_protected,
)
from tests.reference_device import RunningDevice

ATTACKER = fixed_key("threat attacker")
BUYER = fixed_key("threat buyer")
P256_HOME = fixed_key("threat p256 home", KeyType.P256)
#: The order n of P-256's base point: (r, s) and (r, n - s) both verify (docs/protocol.md V1a).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

#: A P-384 public key: well-formed DER of a key type outside the allow-list.
P384_SPKI = (
    ec.derive_private_key(384, ec.SECP384R1())
    .public_key()
    .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)

type Snapshot = tuple[DeviceState, bytes | None]


# --- Talking to the device as anyone on the network can -------------------------------------------------


async def post(device: RunningDevice, path: str, body: bytes) -> tuple[int, str | None]:
    """POST a body as is; the HTTP status and the error body's code (None on success)."""
    async with device.session.post(
        f"http://127.0.0.1:{device.port}{path}", data=body, headers={"Content-Type": MEDIA_TYPE}
    ) as response:
        data = await response.read()
        if response.status < 400:
            return response.status, None
        error = read_error_body(data, response.status)
        return response.status, error.peer_code if isinstance(error, PeerError) else error.code


def snapshot(device: RunningDevice) -> Snapshot:
    """What the device holds: chain, imprint and configuration, and the state file's bytes."""
    assert device.device is not None
    path = device.folder / STATE
    return device.device.state, path.read_bytes() if path.exists() else None


async def opened(device: RunningDevice, key: PrivateKey) -> RegistrarHandshake:
    """A hello from `key` answered and its proof read: a session is open on the device."""
    session = RegistrarHandshake(key, issued_at=NOW_TS)
    session.read_proof(await device.client.hello(session.hello), roots=[device.maker.root], now=NOW)
    return session


def high_s_twin(message: bytes) -> bytes:
    """The same COSE_Sign1 with its ES256 signature (r, s) replaced by (r, n - s): still valid ECDSA."""
    signature = cose_parts(message)[3]
    s = int.from_bytes(signature[32:])
    return with_part(message, 3, signature[:32] + (P256_ORDER - s).to_bytes(32))


def compressed_p256_spki(key: PrivateKey) -> bytes:
    """A P-256 key's SubjectPublicKeyInfo with a compressed point: valid DER, not the canonical form."""
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    algorithm = public_key_to_bytes(public)[2:23]  # SEQUENCE { id-ecPublicKey, prime256v1 }
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    content = algorithm + bytes([0x03, len(point) + 1, 0x00]) + point
    return bytes([0x30, len(content)]) + content


def rotated(device: RunningDevice, signer: PrivateKey, owners: list[PrivateKey]) -> bytes:
    """A rotation link on the device's current head, signed by one of its owners."""
    assert device.device is not None
    return issue_link(
        signer=signer,
        head=device.device.chain.head,
        owners=[owner.public_key() for owner in owners],
        reason=LinkReason.ROTATE,
        issued_at=NOW_TS,
    )


# --- Algorithm confusion, cross-message reuse -----------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "label", "value", "expected"),
    [
        ("protected", cose.HEADER_ALG, -257, "unsupported_algorithm"),
        ("protected", cose.HEADER_ALG, -7, "unsupported_algorithm"),
        ("payload", Label.REGISTRAR_KEY, P384_SPKI, "unsupported_algorithm"),
        ("payload", Label.REGISTRAR_KEY, compressed_p256_spki(P256_HOME), "invalid_key"),
    ],
    ids=["RS256", "ES256 named for an Ed25519 key", "a P-384 key", "a P-256 key with a compressed point"],
)
async def test_algorithm_confusion_in_a_hello(
    devices: Callable[..., Any], home: PrivateKey, part: str, label: int, value: Any, expected: str
) -> None:
    """S7, V1, §2.3: only EdDSA and ES256, each only with its own key type, keys only in canonical DER."""
    device: RunningDevice = await devices([home])
    hello = RegistrarHandshake(home, issued_at=NOW_TS).hello
    forged = (with_protected if part == "protected" else with_payload)(
        hello, lambda m: m.update({label: value})
    )
    before = snapshot(device)

    assert await post(device, PATH_HELLO, forged) == (400, expected)
    assert snapshot(device) == before


@pytest.mark.parametrize(
    ("attack", "path", "expected"),
    [
        ("an owner's link posted as a note", PATH_NOTE, "wrong_content_type"),
        ("an owner's hello posted as a note", PATH_NOTE, "wrong_content_type"),
        ("an owner's hello pushed as a link", PATH_LINKS, "wrong_content_type"),
        ("a content type in the unprotected header", PATH_NOTE, "malformed"),
    ],
)
async def test_signature_reused_across_message_kinds(
    devices: Callable[..., Any], home: PrivateKey, attack: str, path: str, expected: str
) -> None:
    """S5-S8: a signature by an owner's key on one kind of message never reads as another kind."""
    device: RunningDevice = await devices([home])
    hello = RegistrarHandshake(home, issued_at=NOW_TS).hello
    body = {
        "an owner's link posted as a note": lambda: rotated(device, home, [BUYER]),
        "an owner's hello posted as a note": lambda: hello,
        "an owner's hello pushed as a link": lambda: encode_chain([hello]),
        "a content type in the unprotected header": lambda: with_part(
            hello, 1, {cose.HEADER_CONTENT_TYPE: ContentType.NOTE.value}
        ),
    }[attack]()
    before = snapshot(device)

    assert await post(device, path, body) == (400, expected)
    assert snapshot(device) == before


# --- Oversized input, non-deterministic encoding, malleable signatures ----------------------------------


def _nine_owners_link(device: RunningDevice, home: PrivateKey) -> bytes:
    assert device.device is not None
    owners = [fixed_key(f"threat owner {n}").public_key() for n in range(9)]
    return encode_chain([sign_link(link_payload(device.device.chain.head, owners), home)])


@pytest.mark.parametrize(
    ("attack", "path", "expected"),
    [
        ("a hello over 8 192 bytes", PATH_HELLO, (413, "too_large")),
        ("a note over 155 648 bytes", PATH_NOTE, (413, "too_large")),
        ("links over 132 096 bytes", PATH_LINKS, (413, "too_large")),
        ("65 links", PATH_LINKS, (413, "too_large")),
        ("a hello nested 17 deep", PATH_HELLO, (400, "malformed")),
        ("a link naming 9 owners", PATH_LINKS, (400, "invalid_owners")),
    ],
)
async def test_oversized_input_is_refused(
    devices: Callable[..., Any], home: PrivateKey, attack: str, path: str, expected: tuple[int, str]
) -> None:
    """E2, E4, §4.3: sizes are checked before parsing; nesting, owners and links are bounded."""
    device: RunningDevice = await devices([home])
    body = {
        "a hello over 8 192 bytes": lambda: b"\x00" * (MAX_MESSAGE_SIZE + 1),
        "a note over 155 648 bytes": lambda: b"\x00" * (MAX_BUNDLE_SIZE + 1),
        "links over 132 096 bytes": lambda: b"\x00" * (MAX_CHAIN_SIZE + 1024 + 1),
        "65 links": lambda: encode_chain([b"\x00"] * (MAX_CHAIN_LINKS + 1)),
        "a hello nested 17 deep": lambda: b"\x81" * 17 + b"\x00",
        "a link naming 9 owners": lambda: _nine_owners_link(device, home),
    }[attack]()
    before = snapshot(device)

    assert await post(device, path, body) == expected
    assert snapshot(device) == before


def _duplicate_key(payload: dict[int, Any]) -> bytes:
    """The payload's map with its last label written twice (cbor2 reads such a map without complaint)."""
    items = sorted(payload.items())
    last = items[-1]
    return bytes([0xA0 + len(items) + 1]) + b"".join(encode(k) + encode(v) for k, v in [*items, last])


@pytest.mark.parametrize(
    "attack",
    [
        "payload keys out of order, validly signed",
        "a payload label twice, validly signed",
        "the COSE tag in a longer form than needed",
        "a byte after the hello",
    ],
)
async def test_non_deterministic_encoding_is_refused(
    devices: Callable[..., Any], home: PrivateKey, attack: str
) -> None:
    """E5, E6: one object has one encoding, so no two readers can see one signed payload two ways."""
    device: RunningDevice = await devices([home])
    hello = RegistrarHandshake(home, issued_at=NOW_TS).hello
    payload, kid = payload_of(hello), fingerprint(home.public_key())
    body = {
        "payload keys out of order, validly signed": lambda: sign_raw(
            non_canonical_map(payload), ContentType.HELLO, home, kid=kid
        ),
        "a payload label twice, validly signed": lambda: sign_raw(
            _duplicate_key(payload), ContentType.HELLO, home, kid=kid
        ),
        "the COSE tag in a longer form than needed": lambda: b"\xd8\x12" + hello[1:],
        "a byte after the hello": lambda: hello + b"\x00",
    }[attack]()
    before = snapshot(device)

    assert await post(device, PATH_HELLO, body) == (400, "malformed")
    assert snapshot(device) == before


@pytest.mark.parametrize("message", ["hello", "link", "note"])
async def test_high_s_twin_of_an_es256_signature_is_refused(
    devices: Callable[..., Any], message: str
) -> None:
    """V1a: the (r, n - s) twin of a P-256 owner's signature is refused; the genuine message is taken."""
    device: RunningDevice = await devices([P256_HOME])
    if message == "hello":
        path, genuine = PATH_HELLO, RegistrarHandshake(P256_HOME, issued_at=NOW_TS).hello
    elif message == "link":
        path, genuine = PATH_LINKS, rotated(device, P256_HOME, [P256_HOME, BUYER])
    else:
        session = await opened(device, P256_HOME)
        path, genuine = PATH_NOTE, session.make_note(signer=P256_HOME, issued_at=NOW_TS)

    def wrap(signed: bytes) -> bytes:
        return encode_chain([signed]) if message == "link" else signed

    before = snapshot(device)

    assert await post(device, path, wrap(high_s_twin(genuine))) == (400, "malformed")
    assert snapshot(device) == before
    status, code = await post(device, path, wrap(genuine))
    assert code is None
    assert status in (200, 204)

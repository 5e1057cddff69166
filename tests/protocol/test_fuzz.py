"""Property-based fuzzing of every decoder and verifier in the protocol core.

Each entry point gets random bytes and mutated valid messages: byte-level mutations (bit flips, byte
writes, insertions, deletions, truncation, splicing from other valid messages) and structured ones (a
node inside the decoded message, nested byte strings that are themselves CBOR included, replaced by an
arbitrary CBOR value or by a node of another valid message, deleted, or given a sibling; then re-encoded
canonically so the input gets past the CBOR layer). Some tests go further and re-sign mutated payloads
with the right key, to reach the code that runs after the signature check.

The properties:

- an entry point either succeeds or raises one of the documented errors (`ERRORS_BY_CODE`), never any
  other exception;
- a signed object that still verifies after a mutation is byte-identical to a message its signer really
  made (the original; for readers that accept anyone's message, such as a hello, possibly another valid
  fixture spliced in whole): no mutation produces a *different* accepted message. Accepted chains are
  prefixes of real chains.

ES256 signatures are malleable, (r, s) and (r, n - s) both verify, which byte mutations never find:
`test_es256_malleated_signature_is_refused` makes that mutation on purpose for every P-256-signed message.

Valid fixtures are built once (crypto is slow). `AUTOADD_FUZZ_SCALE=20` multiplies every example count for
a longer hunt; the default keeps the file fast.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Iterator, Sequence
import copy
from dataclasses import dataclass
import datetime as dt
import hashlib
import os
import re
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa, x25519
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import HealthCheck, given, reject, settings, strategies as st
import pytest

from custom_components.autoadd.protocol import (
    certificates,
    chain as chains,
    cose,
    encoding,
    handshake,
    home_key,
    idevid,
    keys,
)
from custom_components.autoadd.protocol.certificates import certificate_to_der, certificate_to_pem
from custom_components.autoadd.protocol.const import MAX_BUNDLE_SIZE, ContentType, LinkReason
from custom_components.autoadd.protocol.errors import (
    ERRORS_BY_CODE,
    AutoAddError,
    InvalidKeyError,
    MalformedError,
    UnsupportedAlgorithmError,
    WrongContentTypeError,
)
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from tests.factory import NOW, NOW_TS, Device, Manufacturer, add_link, fixed_key

#: Mutated certificates with a zero or negative serial number load with this deprecation warning.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")

_SCALE = max(1, int(os.environ.get("AUTOADD_FUZZ_SCALE", "1")))


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Hypothesis settings for this file: no deadline, no example database written into the work tree."""
    return settings(
        max_examples=examples * _SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def outcome[T](call: Callable[[], T]) -> T | None:
    """Run `call`: its result, or None when it raised a documented error; anything else propagates."""
    try:
        return call()
    except AutoAddError as err:
        refused = err
    assert ERRORS_BY_CODE.get(refused.code) is type(refused), f"undocumented error {type(refused).__name__}"
    return None


# --- Fixtures: two complete onboardings, Ed25519 throughout and P-256 throughout --------------------------

NR = bytes(range(32, 64))  # the registrar nonce of every fixture session
ND = bytes(range(32))  # the device nonce of every fixture session


@dataclass(frozen=True, eq=False, repr=False)
class Scenario:
    """A device with a three-link chain, and one full onboarding against it."""

    name: str
    maker: Manufacturer
    device: Device
    owner: PrivateKey
    second: PrivateKey
    links: tuple[bytes, ...]
    extra: bytes  # a further link, carried by the note
    heads: tuple[chains.ChainHead, ...]  # heads[i]: the head once links[: i + 1] are read
    chain: chains.VerifiedChain
    hello: bytes
    bundle: bytes
    proof: bytes
    note: bytes
    receipt: bytes
    fresh_session: RegistrarHandshake  # the hello sent, nothing read yet
    noted_session: RegistrarHandshake  # the proof read and the note made

    def __repr__(self) -> str:
        return f"<scenario {self.name}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints a failing example
        printer.text(repr(self))

    @property
    def roots(self) -> list[x509.Certificate]:
        return [self.maker.root]

    @property
    def idevid(self) -> list[bytes]:
        return [certificate_to_der(self.device.cert)]

    @property
    def full_links(self) -> tuple[bytes, ...]:
        """Every link that legitimately extends the chain: an accepted chain is a prefix of this."""
        return (*self.links, self.extra)

    def responder_with_session(self) -> handshake.DeviceResponder:
        """A device that has answered the fixture hello with the fixture nonce, so the note is due."""
        responder = self.device.responder()
        responder.answer_hello(self.hello, self.chain, now=0.0, nonce=ND)
        return responder

    def messages(self) -> dict[ContentType, bytes]:
        return {
            ContentType.INVOICE: self.links[0],
            ContentType.LINK: self.links[1],
            ContentType.HELLO: self.hello,
            ContentType.PROOF: self.proof,
            ContentType.NOTE: self.note,
            ContentType.RECEIPT: self.receipt,
        }


def _scenario(name: str, key_type: KeyType) -> Scenario:
    maker = Manufacturer.create(name, key_type)
    device = maker.make_device(f"{name}-1", key_type)
    owner, second = fixed_key(f"{name} home", key_type), fixed_key(f"{name} home 2", key_type)
    device.links.append(maker.invoice(device, [owner], order_ref="PO-1"))
    add_link(device.links, owner, [second, owner], LinkReason.ROTATE, [maker.root])
    add_link(device.links, second, [owner], LinkReason.HANDOVER, [maker.root])
    chain = device.chain()
    heads = tuple(
        chains.verify_chain(device.links[: i + 1], roots=[maker.root], now=NOW).head
        for i in range(len(device.links))
    )
    extra = chains.issue_link(
        signer=owner,
        head=chain.head,
        owners=[owner.public_key(), second.public_key()],
        reason=LinkReason.ROTATE,
        issued_at=NOW_TS + 10,
    )
    session = RegistrarHandshake(owner, issued_at=NOW_TS, nonce=NR)
    responder = device.responder()
    bundle = responder.answer_hello(session.hello, chain, now=0.0, nonce=ND)
    noted = copy.copy(session)
    noted.read_proof(bundle, roots=[maker.root], now=NOW)
    note = noted.make_note(signer=owner, issued_at=NOW_TS, links=[extra], config={"name": "lamp", "room": 3})
    receipt = responder.accept_note(note, chain, now=1.0).receipt
    return Scenario(
        name=name,
        maker=maker,
        device=device,
        owner=owner,
        second=second,
        links=tuple(device.links),
        extra=extra,
        heads=heads,
        chain=chain,
        hello=session.hello,
        bundle=bundle,
        proof=cbor2.loads(bundle)[1],
        note=note,
        receipt=receipt,
        fresh_session=session,
        noted_session=noted,
    )


ED = _scenario("Acme", KeyType.ED25519)
P256 = _scenario("Bolt", KeyType.P256)
SCENARIOS = (ED, P256)
scenarios = st.sampled_from(SCENARIOS)
ALL_ROOTS = [ED.maker.root, P256.maker.root]


def _other_keys() -> dict[str, Any]:
    """Keys of refused types (fixed, but for RSA, which has no derivation from a seed)."""
    seed = hashlib.sha256(b"autoadd fuzz other keys").digest()
    return {
        "p384": ec.derive_private_key(int.from_bytes(seed), ec.SECP384R1()),
        "k256": ec.derive_private_key(int.from_bytes(seed), ec.SECP256K1()),
        "x25519": x25519.X25519PrivateKey.from_private_bytes(seed),
        "ed448": ed448.Ed448PrivateKey.from_private_bytes(seed + seed[:25]),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=1024),
    }


_OTHER = _other_keys()
_P256_KEY = fixed_key("p256", KeyType.P256)
_ED_KEY = fixed_key("ed")
assert isinstance(_P256_KEY, ec.EllipticCurvePrivateKey)
_P256_PUBLIC = _P256_KEY.public_key()


def _compressed_p256_spki() -> bytes:
    """The fixture P-256 key as a SubjectPublicKeyInfo with a compressed point: valid DER, not canonical."""
    algorithm = keys.public_key_to_bytes(_P256_PUBLIC)[2:23]
    point = _P256_PUBLIC.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    content = algorithm + bytes([0x03, len(point) + 1, 0x00]) + point
    return bytes([0x30, len(content)]) + content


#: Public keys on the wire: the allowed ones, a non-canonical (compressed) P-256 form, and refused types.
PUBLIC_DERS: list[bytes] = [
    keys.public_key_to_bytes(_ED_KEY.public_key()),
    keys.public_key_to_bytes(_P256_PUBLIC),
    _compressed_p256_spki(),
    *(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for key in _OTHER.values()
    ),
]
PUBLIC_PEMS: list[bytes] = [
    serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for der in PUBLIC_DERS
]
_PKCS8 = serialization.PrivateFormat.PKCS8
_NO_ENCRYPTION = serialization.NoEncryption()
PRIVATE_PEMS: list[bytes] = [
    keys.private_key_to_pem(_ED_KEY),
    keys.private_key_to_pem(_P256_KEY),
    _P256_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, _NO_ENCRYPTION
    ),
    _ED_KEY.private_bytes(
        serialization.Encoding.PEM, _PKCS8, serialization.BestAvailableEncryption(b"password")
    ),
    *(key.private_bytes(serialization.Encoding.PEM, _PKCS8, _NO_ENCRYPTION) for key in _OTHER.values()),
]

CERT_DERS: list[bytes] = [
    certificate_to_der(cert)
    for scen in SCENARIOS
    for cert in (scen.maker.root, scen.maker.signer, scen.device.cert)
]
CERT_PEMS: list[bytes] = [
    certificate_to_pem(ED.maker.root) + certificate_to_pem(P256.maker.root),
    certificate_to_pem(ED.device.cert),
]
HOME_KEY_STRINGS: list[tuple[str, bytes]] = [
    (home_key.format_home_key(key.public_key()), keys.public_key_to_bytes(key.public_key()))
    for key in (ED.owner, P256.owner)
]

#: Every valid signed message, by content type and scenario.
MESSAGES: list[tuple[Scenario, ContentType, bytes]] = [
    (scen, content_type, message) for scen in SCENARIOS for content_type, message in scen.messages().items()
]
VALID_BYTES: list[bytes] = sorted(
    {
        *(message for _, _, message in MESSAGES),
        *(link for scen in SCENARIOS for link in scen.full_links),
        *(scen.bundle for scen in SCENARIOS),
        *(chains.encode_chain(scen.links) for scen in SCENARIOS),
        *CERT_DERS,
        *PUBLIC_DERS,
    }
)


# --- Arbitrary CBOR values ------------------------------------------------------------------------------

_INTERESTING_INTS = [
    *(0, 1, -1, 18, 23, 24, 255, 256, 65535, 65536, -7, -8, 2**32 - 1, 2**32),
    *(2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**64), -(2**64) - 1, 2**37, 2**100, -(2**100)),
]
_TAGS = [
    *(0, 1, 2, 3, 4, 5, 16, 17, 18, 21, 22, 23, 24, 25, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38, 52, 54),
    *(96, 97, 98, 256, 258, 260, 261, 1004, 55799, 2**32, 2**64 - 1),
]
_KEYS = st.one_of(
    st.integers(-24, 24),
    st.sampled_from(_INTERESTING_INTS),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(),
    st.none(),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(_INTERESTING_INTS),
    st.floats(),
    st.binary(max_size=48),
    st.binary(min_size=32, max_size=32),
    st.text(max_size=24),
    st.sampled_from([cbor2.undefined, cbor2.CBORSimpleValue(32), cbor2.CBORSimpleValue(255)]),
    st.decimals(),
    st.fractions(),
    st.uuids(),
    st.ip_addresses(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.frozensets(_KEYS, max_size=3),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_KEYS, children, max_size=4),
        st.builds(cbor2.CBORTag, st.sampled_from(_TAGS) | st.integers(0, 2**64 - 1), children),
    )


cbor_values: st.SearchStrategy[Any] = st.recursive(_SCALARS, _containers, max_leaves=12)


# --- Mutations ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Embedded:
    """A byte string inside a message that is itself deterministic CBOR (a header, a payload, a link)."""

    value: Any


def unwrap(value: Any, depth: int = 0) -> Any:
    """Decode `value`'s nested CBOR byte strings into Embedded nodes, so mutations can reach inside."""
    if isinstance(value, bytes) and value and depth < 8:
        try:
            inner = cbor2.loads(value)
            nested = isinstance(inner, dict | list | cbor2.CBORTag) and encoding.dumps(inner) == value
        except Exception:
            nested = False
        return Embedded(unwrap(inner, depth + 1)) if nested else value
    if isinstance(value, list):
        return [unwrap(item, depth) for item in value]
    if isinstance(value, dict):
        return {key: unwrap(item, depth) for key, item in value.items()}
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, unwrap(value.value, depth))
    return value


def rewrap(value: Any) -> Any:
    """Undo `unwrap`: Embedded nodes back to their canonical encoding."""
    if isinstance(value, Embedded):
        return encoding.dumps(rewrap(value.value))
    if isinstance(value, list):
        return [rewrap(item) for item in value]
    if isinstance(value, dict):
        return {key: rewrap(item) for key, item in value.items()}
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, rewrap(value.value))
    return value


type Path = tuple[tuple[Any, ...], ...]


def paths(value: Any, path: Path = ()) -> Iterator[Path]:
    """Every node of an unwrapped tree, as the steps that lead to it."""
    yield path
    if isinstance(value, Embedded):
        yield from paths(value.value, (*path, ("embedded",)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*path, ("item", index)))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*path, ("key", key)))
    elif isinstance(value, cbor2.CBORTag):
        yield from paths(value.value, (*path, ("tag",)))


def node_at(value: Any, path: Path) -> Any:
    for step in path:
        value = value.value if step[0] in {"embedded", "tag"} else value[step[1]]
    return value


def edit(value: Any, path: Path, change: Callable[[Any], Any]) -> Any:
    """A copy of the tree with the node at `path` replaced by `change(node)`."""
    if not path:
        return change(value)
    step, rest = path[0], path[1:]
    if step[0] == "embedded":
        return Embedded(edit(value.value, rest, change))
    if step[0] == "tag":
        return cbor2.CBORTag(value.tag, edit(value.value, rest, change))
    container = list(value) if isinstance(value, list) else dict(value)
    container[step[1]] = edit(container[step[1]], rest, change)
    return container


_TREES: dict[bytes, Any] = {}


def tree_of(data: bytes) -> Any:
    if data not in _TREES:
        _TREES[data] = unwrap(cbor2.loads(data))
    return _TREES[data]


def _donor_nodes() -> list[Any]:
    found: dict[bytes, Any] = {}
    for data in VALID_BYTES:
        try:
            tree = tree_of(data)
        except Exception:
            continue
        for path in paths(tree):
            node = rewrap(node_at(tree, path))
            found.setdefault(encoding.dumps(node), node)
    return [found[key] for key in sorted(found)]


#: Nodes of every valid message, for replacing a node by something that makes sense somewhere else.
DONOR_NODES = _donor_nodes()
_HEADER_BYTES = [
    0x00,
    0x18,
    0x1B,
    0x20,
    0x40,
    0x5F,
    0x60,
    0x7F,
    0x80,
    0x9F,
    0xA0,
    0xBF,
    0xC0,
    0xD8,
    0xF7,
    0xFF,
]


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One byte-level mutation of `data`."""
    size = len(data)
    if size == 0:
        return draw(st.binary(min_size=1, max_size=8))
    op = draw(st.sampled_from(["flip", "write", "insert", "delete", "truncate", "append", "splice"]))
    if op == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, size - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if op == "write":
        out = bytearray(data)
        out[draw(st.integers(0, size - 1))] = draw(st.sampled_from(_HEADER_BYTES) | st.integers(0, 255))
        return bytes(out)
    if op == "insert":
        at = draw(st.integers(0, size))
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if op == "delete":
        at = draw(st.integers(0, size - 1))
        return data[:at] + data[at + draw(st.integers(1, 16)) :]
    if op == "truncate":
        return data[: draw(st.integers(0, size - 1))]
    if op == "append":
        return data + draw(st.binary(min_size=1, max_size=16))
    donor = draw(st.sampled_from(VALID_BYTES))
    start = draw(st.integers(0, len(donor)))
    piece = donor[start : start + draw(st.integers(0, 64))]
    at = draw(st.integers(0, size))
    return data[:at] + piece + data[at + draw(st.integers(0, 64)) :]


@st.composite
def tree_mutation(draw: st.DrawFn, tree: Any) -> Any:
    """One structural change to an unwrapped tree."""
    path = draw(st.sampled_from(list(paths(tree))))
    node = node_at(tree, path)
    ops = ["replace", "donor"]
    if isinstance(node, bytes | str):
        ops.append("leaf")
    if isinstance(node, list | dict):
        ops.append("insert")
    if path and path[-1][0] in {"item", "key"}:
        ops.append("delete")
    op = draw(st.sampled_from(ops))
    if op == "replace":
        new = draw(cbor_values)
        return edit(tree, path, lambda _: new)
    if op == "donor":
        new = DONOR_NODES[draw(st.integers(0, len(DONOR_NODES) - 1))]  # not sampled_from: unhashable nodes
        return edit(tree, path, lambda _: new)
    if op == "leaf":
        if isinstance(node, bytes):
            new = draw(byte_mutation(node))
        else:
            new = draw(st.text(max_size=3)).join(draw(st.lists(st.just(node), min_size=1, max_size=2)))
        return edit(tree, path, lambda _: new)
    if op == "insert":
        extra = draw(cbor_values)
        if isinstance(node, list):
            at = draw(st.integers(0, len(node)))
            return edit(tree, path, lambda old: [*old[:at], extra, *old[at:]])
        key = draw(_KEYS)
        return edit(tree, path, lambda old: {**old, key: extra})
    parent, (_, gone) = path[:-1], path[-1]

    def remove(container: Any) -> Any:
        if isinstance(container, list):
            return [item for index, item in enumerate(container) if index != gone]
        return {key: item for key, item in container.items() if key != gone}

    return edit(tree, parent, remove)


@st.composite
def structured_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Decode, change one node (possibly inside a nested header, payload or link), re-encode canonically."""
    tree = tree_of(data)
    for _ in range(draw(st.integers(1, 2))):
        tree = draw(tree_mutation(tree))
    return encoding.dumps(rewrap(tree))


def _is_cbor(data: bytes) -> bool:
    try:
        encoding.loads(data, what="fixture", max_size=len(data))
    except AutoAddError:
        return False
    return True


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """A mutation of a valid message, byte-level, or structured when the message is CBOR."""
    if not _is_cbor(data):
        return byte_mutation(data)
    return st.one_of(byte_mutation(data), structured_mutation(data))


@st.composite
def payload_mutation(draw: st.DrawFn, message: bytes) -> Any:
    """A signed message's payload with one structural change, as a value ready to be signed again."""
    payload = unwrap(cbor2.loads(cbor2.loads(message).value[2]))
    return rewrap(draw(tree_mutation(payload)))


def assert_genuine_or_rejected[T](
    call: Callable[[bytes], T], data: bytes, genuine: Collection[bytes]
) -> T | None:
    """The signed-object property: `data` is refused with a documented error, or it is byte-identical to a
    message its signer really made (the original, or for some readers the other scenario's)."""
    result = outcome(lambda: call(data))
    if result is not None:
        assert data in genuine, "a mutated signed object was accepted"
    return result


def protected_header(message: bytes) -> dict[int, Any]:
    header: dict[int, Any] = cbor2.loads(cbor2.loads(message).value[0])
    return header


def sign_as(message: bytes, payload: Any, key: PrivateKey) -> bytes:
    """Sign `payload` with the headers `message` was signed with (content type, kid, x5chain)."""
    header = protected_header(message)
    return cose.sign(
        payload,
        header[cose.HEADER_CONTENT_TYPE],
        key,
        kid=header.get(cose.HEADER_KID),
        x5chain=tuple(header.get(cose.HEADER_X5CHAIN, ())),
    )


def with_proof(bundle: bytes, proof: bytes) -> bytes:
    value = cbor2.loads(bundle)
    value[1] = proof
    return encoding.dumps(value)


# --- encoding -------------------------------------------------------------------------------------------


def _loads(data: bytes) -> Any:
    return encoding.loads(data, what="fuzz", max_size=MAX_BUNDLE_SIZE)


def _check_loads(data: bytes) -> None:
    value = outcome(lambda: _loads(data))
    if value is not None:
        assert encoding.dumps(value) == data


@fuzz(300)
@given(st.binary(max_size=128))
def test_loads_random_bytes(data: bytes) -> None:
    _check_loads(data)


@fuzz(300)
@given(cbor_values, st.booleans())
def test_loads_arbitrary_cbor(value: Any, canonical: bool) -> None:
    try:
        data = cbor2.dumps(value, canonical=canonical)
    except (cbor2.CBOREncodeError, ValueError, TypeError):  # not every generated value encodes
        reject()
    _check_loads(data)


@fuzz(150)
@given(st.data())
def test_loads_mutated(data: st.DataObject) -> None:
    _check_loads(data.draw(mutated(data.draw(st.sampled_from(VALID_BYTES)))))


# --- cose.parse -----------------------------------------------------------------------------------------


def _parse(data: bytes, content_type: ContentType) -> cose.SignedObject:
    return cose.parse(data, content_type, max_size=MAX_BUNDLE_SIZE, what="fuzz")


@pytest.mark.parametrize("content_type", list(ContentType))
def test_parse_valid_messages_only_as_their_own_type(content_type: ContentType) -> None:
    for _, own_type, message in MESSAGES:
        if own_type == content_type:
            _parse(message, content_type)
        else:
            with pytest.raises(WrongContentTypeError):
                _parse(message, content_type)


@fuzz(200)
@given(st.data(), st.sampled_from(list(ContentType)))
def test_parse_mutated(data: st.DataObject, content_type: ContentType) -> None:
    _, _, original = data.draw(st.sampled_from(MESSAGES))
    message = data.draw(mutated(original))
    parsed = outcome(lambda: _parse(message, content_type))
    if (
        parsed is not None
    ):  # parse does not check signatures, so a mutation may parse; it must do so faithfully
        assert parsed.raw == message
        assert parsed.content_type == content_type
        body = cbor2.loads(message).value
        assert (parsed.payload, parsed.kid) == (body[2], protected_header(message).get(cose.HEADER_KID))


@fuzz(150)
@given(st.binary(max_size=128), st.sampled_from(list(ContentType)))
def test_parse_random_bytes(data: bytes, content_type: ContentType) -> None:
    outcome(lambda: _parse(data, content_type))


# --- chain ----------------------------------------------------------------------------------------------


@fuzz(150)
@given(st.data(), scenarios, st.sampled_from(["none", "own", "all", "other"]), st.booleans())
def test_read_invoice_mutated(data: st.DataObject, scen: Scenario, roots: str, with_device: bool) -> None:
    trusted = {"none": None, "own": scen.roots, "all": ALL_ROOTS, "other": [ED.maker.root]}[roots]
    device = idevid.verify_idevid(scen.idevid, scen.roots, NOW) if with_device else None
    invoice = scen.links[0]
    message = data.draw(st.one_of(mutated(invoice), st.binary(max_size=64)))
    genuine = {s.links[0] for s in SCENARIOS}  # another manufacturer's invoice is fine without `device`
    assert_genuine_or_rejected(
        lambda m: chains.read_invoice(m, roots=trusted, now=NOW, device=device), message, genuine
    )


@fuzz(100)
@given(st.data(), scenarios, st.booleans())
def test_read_invoice_resigned_payload(data: st.DataObject, scen: Scenario, roots: bool) -> None:
    """What the manufacturer's signer could sign: any payload, read past the signature."""
    payload = data.draw(payload_mutation(scen.links[0]))
    message = sign_as(scen.links[0], payload, scen.maker.signer_key)
    device = idevid.verify_idevid(scen.idevid, scen.roots, NOW)
    outcome(lambda: chains.read_invoice(message, roots=scen.roots if roots else None, now=NOW, device=device))


@fuzz(100)
@given(st.data(), scenarios, st.booleans())
def test_read_invoice_self_signed_with_mutated_certificates(
    data: st.DataObject, scen: Scenario, extra_cert: bool
) -> None:
    """Anyone can sign an invoice with the key of a certificate they put in x5chain: the chain check then
    reads certificates of the sender's choosing (here: the real signer certificate, mutated)."""
    signer_der = data.draw(byte_mutation(certificate_to_der(scen.maker.signer)))
    x5chain = (signer_der, certificate_to_der(scen.maker.root)) if extra_cert else (signer_der,)
    header = protected_header(scen.links[0])
    payload = cbor2.loads(cbor2.loads(scen.links[0]).value[2])
    message = cose.sign(payload, header[cose.HEADER_CONTENT_TYPE], scen.maker.signer_key, x5chain=x5chain)
    outcome(lambda: chains.read_invoice(message, roots=scen.roots, now=NOW))


@fuzz(150)
@given(st.data(), scenarios, st.sampled_from([1, 2]))
def test_read_link_mutated(data: st.DataObject, scen: Scenario, index: int) -> None:
    original = scen.links[index]
    message = data.draw(st.one_of(mutated(original), st.binary(max_size=64)))
    assert_genuine_or_rejected(lambda m: chains.read_link(m, scen.heads[index - 1]), message, {original})


@fuzz(100)
@given(st.data(), scenarios, st.sampled_from([1, 2]))
def test_read_link_resigned_payload(data: st.DataObject, scen: Scenario, index: int) -> None:
    """What an owner could sign: any payload, read past the signature."""
    signer = scen.owner if index == 1 else scen.second
    message = sign_as(scen.links[index], data.draw(payload_mutation(scen.links[index])), signer)
    outcome(lambda: chains.read_link(message, scen.heads[index - 1]))


@st.composite
def link_list_mutation(draw: st.DrawFn, links: Sequence[bytes]) -> list[bytes]:
    """A list of links with one change: a mutated link, or links dropped, repeated, swapped or added."""
    out = list(links)
    op = draw(st.sampled_from(["mutate", "drop", "repeat", "swap", "foreign", "random", "truncate"]))
    at = draw(st.integers(0, len(out) - 1)) if out else 0
    if op == "mutate" and out:
        out[at] = draw(mutated(out[at]))
    elif op == "drop" and out:
        del out[at]
    elif op == "repeat" and out:
        out.insert(at, out[at])
    elif op == "swap" and len(out) > 1:
        other = draw(st.integers(0, len(out) - 1))
        out[at], out[other] = out[other], out[at]
    elif op == "foreign":
        out.insert(draw(st.integers(0, len(out))), draw(st.sampled_from(VALID_BYTES)))
    elif op == "random":
        out.insert(draw(st.integers(0, len(out))), draw(st.binary(max_size=64)))
    else:
        out = out[: draw(st.integers(0, len(out)))]
    return out


def assert_prefix(accepted: Sequence[bytes]) -> None:
    """An accepted chain is a real one, or a prefix of it: never a different chain."""
    assert any(tuple(accepted) == s.full_links[: len(accepted)] for s in SCENARIOS), (
        "a mutated chain was accepted"
    )


@fuzz(150)
@given(st.data(), scenarios, st.booleans())
def test_verify_chain_mutated(data: st.DataObject, scen: Scenario, with_roots: bool) -> None:
    links = data.draw(link_list_mutation(scen.full_links))
    result = outcome(lambda: chains.verify_chain(links, roots=scen.roots if with_roots else None, now=NOW))
    if result is not None:
        assert_prefix(result.links)


@fuzz(100)
@given(st.data(), scenarios)
def test_extend_mutated(data: st.DataObject, scen: Scenario) -> None:
    start = data.draw(st.integers(1, len(scen.links)))
    chain = chains.verify_chain(scen.links[:start], roots=scen.roots, now=NOW)
    links = data.draw(link_list_mutation(scen.full_links[start:]))
    result = outcome(lambda: chains.extend(chain, links))
    if result is not None:
        assert_prefix(result.links)


@fuzz(150)
@given(st.data(), scenarios)
def test_decode_chain_mutated(data: st.DataObject, scen: Scenario) -> None:
    message = data.draw(st.one_of(mutated(chains.encode_chain(scen.links)), st.binary(max_size=64)))
    links = outcome(lambda: chains.decode_chain(message))
    if links is not None:  # the file form is not signed: any well-formed array is fine, read faithfully
        assert chains.encode_chain(links) == message


# --- handshake ------------------------------------------------------------------------------------------


@fuzz(150)
@given(st.data(), scenarios)
def test_read_hello_mutated(data: st.DataObject, scen: Scenario) -> None:
    message = data.draw(st.one_of(mutated(scen.hello), st.binary(max_size=64)))
    assert_genuine_or_rejected(handshake.read_hello, message, {s.hello for s in SCENARIOS})  # anyone's hello


@fuzz(100)
@given(st.data(), scenarios)
def test_read_hello_resigned_payload(data: st.DataObject, scen: Scenario) -> None:
    message = sign_as(scen.hello, data.draw(payload_mutation(scen.hello)), scen.owner)
    outcome(lambda: handshake.read_hello(message))


def _read_proof(scen: Scenario, bundle: bytes, roots: list[x509.Certificate]) -> handshake.ProvenDevice:
    return copy.copy(scen.fresh_session).read_proof(bundle, roots=roots, now=NOW)


def _read_receipt(scen: Scenario, receipt: bytes) -> RegistrarHandshake:
    """Read a receipt in a copy of the noted session; the session (done) when it was accepted."""
    session = copy.copy(scen.noted_session)
    session.read_receipt(receipt)
    assert session.done
    return session


@fuzz(150)
@given(st.data(), scenarios, st.booleans())
def test_read_proof_mutated(data: st.DataObject, scen: Scenario, all_roots: bool) -> None:
    bundle = data.draw(st.one_of(mutated(scen.bundle), st.binary(max_size=64)))
    proven = outcome(lambda: _read_proof(scen, bundle, ALL_ROOTS if all_roots else scen.roots))
    if proven is not None:
        # The bundle is not signed, but what it carries is: the proof and the chain must be the real ones.
        value = cbor2.loads(bundle)
        assert (value[1], tuple(value[3])) == (scen.proof, scen.links), "a mutated proof bundle was accepted"
        assert proven.device_id == scen.device.device_id


@fuzz(100)
@given(st.data(), scenarios)
def test_read_proof_resigned_payload(data: st.DataObject, scen: Scenario) -> None:
    """What the device could sign: any proof payload, read past the signature."""
    proof = sign_as(scen.proof, data.draw(payload_mutation(scen.proof)), scen.device.key)
    outcome(lambda: _read_proof(scen, with_proof(scen.bundle, proof), scen.roots))


@fuzz(150)
@given(st.data(), scenarios)
def test_read_receipt_mutated(data: st.DataObject, scen: Scenario) -> None:
    receipt = data.draw(st.one_of(mutated(scen.receipt), st.binary(max_size=64)))
    assert_genuine_or_rejected(lambda m: _read_receipt(scen, m), receipt, {scen.receipt})


@fuzz(100)
@given(st.data(), scenarios)
def test_read_receipt_resigned_payload(data: st.DataObject, scen: Scenario) -> None:
    receipt = sign_as(scen.receipt, data.draw(payload_mutation(scen.receipt)), scen.device.key)
    outcome(lambda: _read_receipt(scen, receipt))


@fuzz(120)
@given(st.data(), scenarios)
def test_accept_note_mutated(data: st.DataObject, scen: Scenario) -> None:
    note = data.draw(st.one_of(mutated(scen.note), st.binary(max_size=64)))
    responder = scen.responder_with_session()
    accepted = assert_genuine_or_rejected(
        lambda m: responder.accept_note(m, scen.chain, now=1.0), note, {scen.note}
    )
    if accepted is not None:
        assert accepted.chain.links == scen.full_links


@fuzz(100)
@given(st.data(), scenarios)
def test_accept_note_resigned_payload(data: st.DataObject, scen: Scenario) -> None:
    """What an owner could sign: any note payload, read past the signature."""
    note = sign_as(scen.note, data.draw(payload_mutation(scen.note)), scen.owner)
    responder = scen.responder_with_session()
    outcome(lambda: responder.accept_note(note, scen.chain, now=1.0))


# --- ES256 signature malleability -------------------------------------------------------------------------

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def malleate(message: bytes) -> bytes:
    """The same COSE_Sign1 with its ES256 signature (r, s) replaced by (r, n - s), which ECDSA accepts too."""
    protected, unprotected, payload, signature = cbor2.loads(message).value
    s = int.from_bytes(signature[32:])
    twin = signature[:32] + (_P256_ORDER - s).to_bytes(32)
    return encoding.dumps(cbor2.CBORTag(cose.COSE_SIGN1_TAG, [protected, unprotected, payload, twin]))


_READERS: dict[str, Callable[[bytes], object]] = {
    "invoice": lambda m: chains.read_invoice(m, roots=P256.roots, now=NOW),
    "link": lambda m: chains.read_link(m, P256.heads[0]),
    "hello": handshake.read_hello,
    "proof": lambda m: _read_proof(P256, with_proof(P256.bundle, m), P256.roots),
    "receipt": lambda m: _read_receipt(P256, m),
    "note": lambda m: P256.responder_with_session().accept_note(m, P256.chain, now=1.0),
}
_ORIGINALS = {
    "invoice": P256.links[0],
    "link": P256.links[1],
    "hello": P256.hello,
    "proof": P256.proof,
    "receipt": P256.receipt,
    "note": P256.note,
}


@pytest.mark.parametrize("kind", list(_READERS))
def test_es256_fixture_messages_verify(kind: str) -> None:
    _READERS[kind](_ORIGINALS[kind])


@pytest.mark.parametrize("kind", list(_READERS))
def test_es256_malleated_signature_is_refused(kind: str) -> None:
    """The (r, n - s) twin of a signature is refused (low-S rule): no one can re-encode a signed message."""
    twin = malleate(_ORIGINALS[kind])
    assert twin != _ORIGINALS[kind]
    assert outcome(lambda: _READERS[kind](twin)) is None, "a malleated ES256 signature was accepted"


# --- home key strings -----------------------------------------------------------------------------------

_HOME_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz018-= \t\u017f\u0131\u00df"


def _parse_home_key(text: str) -> bytes | None:
    key = outcome(lambda: home_key.parse_home_key(text))
    if key is None:
        return None
    assert keys.key_type_of(key) in {KeyType.ED25519, KeyType.P256}
    assert home_key.parse_home_key(home_key.format_home_key(key)) == key
    return keys.public_key_to_bytes(key)


@fuzz(300)
@given(st.text(max_size=80) | st.text(_HOME_KEY_ALPHABET, max_size=80).map(lambda t: "AAHK1-" + t))
def test_parse_home_key_random_text(text: str) -> None:
    _parse_home_key(text)


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> str:
    chars = list(text)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "swap", "case", "truncate"]))
        at = draw(st.integers(0, max(len(chars) - 1, 0)))
        new = draw(st.sampled_from(_HOME_KEY_ALPHABET) | st.characters())
        if op == "replace" and chars:
            chars[at] = new
        elif op == "insert":
            chars.insert(at, new)
        elif op == "delete" and chars:
            del chars[at]
        elif op == "swap" and len(chars) > 1:
            chars[at - 1], chars[at] = chars[at], chars[at - 1]
        elif op == "case" and chars:
            chars[at] = chars[at].swapcase()
        else:
            chars = chars[:at]
    return "".join(chars)


@fuzz(300)
@given(st.data())
def test_parse_home_key_mutated(data: st.DataObject) -> None:
    original, key = data.draw(st.sampled_from(HOME_KEY_STRINGS))
    parsed = _parse_home_key(data.draw(text_mutation(original)))
    if parsed is not None:  # only a case, spacing or padding-bit change may still parse: to the same key
        assert parsed == key, "a mistyped home key string parsed to another key"


def _home_key_string(body: bytes) -> str:
    checksum = hashlib.sha256(b"AutoAdd home key" + body).digest()[:4]
    return "AAHK1-" + base64.b32encode(body + checksum).decode().rstrip("=")


@fuzz(200)
@given(st.sampled_from([0, 1, 2, 3, 4, 255]), st.binary(min_size=30, max_size=34))
def test_parse_home_key_checksummed_bodies(type_byte: int, key: bytes) -> None:
    """Strings with a good checksum over any type byte and key bytes: the checks after the checksum."""
    _parse_home_key(_home_key_string(bytes([type_byte]) + key))


# --- keys -----------------------------------------------------------------------------------------------


@st.composite
def pem_mutation(draw: st.DrawFn, pem: bytes) -> bytes:
    """A mutation of the PEM text, or of the DER inside one of its blocks, armoured again."""
    if draw(st.booleans()):
        return draw(byte_mutation(pem))
    blocks = re.findall(rb"-----BEGIN [^-]+-----\n.*?-----END [^-]+-----\n", pem, re.DOTALL)
    at = draw(st.integers(0, len(blocks) - 1))
    lines = blocks[at].strip().split(b"\n")
    der = draw(byte_mutation(base64.b64decode(b"".join(lines[1:-1]))))
    blocks[at] = lines[0] + b"\n" + base64.encodebytes(der) + lines[-1] + b"\n"
    return b"".join(blocks)


def _check_public_der(data: bytes) -> None:
    key = outcome(lambda: keys.public_key_from_bytes(data))
    if key is not None:
        assert keys.public_key_to_bytes(key) == data, "a non-canonical public key was accepted"


@fuzz(200)
@given(st.data())
def test_public_key_from_bytes(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(PUBLIC_DERS))
    _check_public_der(
        data.draw(st.one_of(st.just(original), byte_mutation(original), st.binary(max_size=96)))
    )


@fuzz(150)
@given(st.data())
def test_private_key_from_pem(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(PRIVATE_PEMS))
    pem = data.draw(st.one_of(st.just(original), pem_mutation(original), st.binary(max_size=96)))
    key = outcome(lambda: keys.private_key_from_pem(pem))
    if key is not None:
        assert keys.key_type_of(key) in {KeyType.ED25519, KeyType.P256}


@fuzz(150)
@given(st.data())
def test_public_key_from_pem(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(PUBLIC_PEMS))
    pem = data.draw(st.one_of(st.just(original), pem_mutation(original), st.binary(max_size=96)))
    key = outcome(lambda: keys.public_key_from_pem(pem))
    if key is not None:
        assert keys.key_type_of(key) in {KeyType.ED25519, KeyType.P256}


# --- certificates and IDevID ----------------------------------------------------------------------------


@fuzz(200)
@given(st.data())
def test_load_der_certificate(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(CERT_DERS))
    der = data.draw(st.one_of(byte_mutation(original), st.binary(max_size=128)))
    cert = outcome(lambda: certificates.load_der_certificate(der))
    if cert is not None:
        assert certificate_to_der(cert) == der


@fuzz(150)
@given(st.data())
def test_load_pem_certificates(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(CERT_PEMS))
    pem = data.draw(st.one_of(pem_mutation(original), st.binary(max_size=128)))
    certs = outcome(lambda: certificates.load_pem_certificates(pem))
    if certs is not None:
        assert certs


@st.composite
def idevid_chain_mutation(draw: st.DrawFn, scen: Scenario) -> list[bytes]:
    chain = scen.idevid
    op = draw(st.sampled_from(["mutate", "add", "drop", "foreign", "random"]))
    if op == "mutate":
        return [draw(byte_mutation(chain[0]))]
    if op == "add":
        return [*chain, *draw(st.lists(st.sampled_from(CERT_DERS), min_size=1, max_size=4))]
    if op == "drop":
        return []
    if op == "foreign":
        return [draw(st.sampled_from(CERT_DERS))]
    return [*draw(st.lists(st.binary(max_size=64), min_size=1, max_size=2))]


@fuzz(150)
@given(st.data(), scenarios, st.booleans())
def test_verify_idevid_mutated_chain(data: st.DataObject, scen: Scenario, all_roots: bool) -> None:
    chain = data.draw(idevid_chain_mutation(scen))
    identity = outcome(lambda: idevid.verify_idevid(chain, ALL_ROOTS if all_roots else scen.roots, NOW))
    if (
        identity is not None
    ):  # extra certificates above the leaf may be harmless; the leaf must be the real one
        assert certificate_to_der(identity.certificate) in CERT_DERS
        assert chain[0] == certificate_to_der(identity.certificate)


@fuzz(150)
@given(st.data(), scenarios)
def test_verify_idevid_mutated_root(data: st.DataObject, scen: Scenario) -> None:
    """A damaged trust anchor (a root pasted with an error): verification reads it, and must fail cleanly."""
    root_der = data.draw(byte_mutation(certificate_to_der(scen.maker.root)))
    root = outcome(lambda: certificates.load_der_certificate(root_der))
    if root is not None:
        identity = outcome(lambda: idevid.verify_idevid(scen.idevid, [root], NOW))
        if identity is not None:
            assert identity.device_id == scen.device.device_id


# --- Regressions: inputs hypothesis found ---------------------------------------------------------------


def _cose_with_header(header: dict[int, Any]) -> bytes:
    return encoding.dumps(cbor2.CBORTag(cose.COSE_SIGN1_TAG, [encoding.dumps(header), {}, b"", b""]))


@pytest.mark.parametrize("alg", [[], {}, [-8], -8.0])
def test_regression_alg_that_is_not_an_integer(alg: Any) -> None:
    """cose.parse: an alg that is an array or a map raised TypeError (unhashable) from the allow-list lookup.

    Found by test_parse_mutated and test_read_hello_mutated (a donor array put in place of alg).
    """
    message = _cose_with_header({cose.HEADER_ALG: alg, cose.HEADER_CONTENT_TYPE: ContentType.HELLO.value})
    with pytest.raises(UnsupportedAlgorithmError):
        _parse(message, ContentType.HELLO)
    with pytest.raises(UnsupportedAlgorithmError):
        handshake.read_hello(message)


def test_regression_bigfloat_with_huge_exponent() -> None:
    """encoding.loads: tag 5 (bigfloat) [100000000, 1] raised decimal.Overflow while cbor2 decoded it."""
    with pytest.raises(MalformedError):
        _loads(bytes.fromhex("c5821a05f5e10001"))


def _with_version_3(der: bytes) -> bytes:
    """The certificate with its version field saying 4 (value 3), which cryptography refuses to load."""
    version = bytes.fromhex("a003020102")
    assert der.count(version) == 1
    return der.replace(version, bytes.fromhex("a003020103"))


def test_regression_certificate_with_unknown_version() -> None:
    """load_der_certificate / load_pem_certificates: version 3 raised cryptography's InvalidVersion.

    Found by test_load_der_certificate and test_verify_chain_mutated (a bit flip in an x5chain certificate).
    """
    der = _with_version_3(certificate_to_der(ED.device.cert))
    with pytest.raises(MalformedError):
        certificates.load_der_certificate(der)
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    with pytest.raises(MalformedError):
        certificates.load_pem_certificates(pem)
    with pytest.raises(MalformedError):
        idevid.verify_idevid([der], ED.roots, NOW)


_LEAF_KEY = fixed_key("fuzz self-made leaf")


def _self_made_certificate(*extensions: x509.ExtensionType, root: bool = False) -> bytes:
    """A certificate carrying `extensions`: a leaf with its own key, or (`root`) the Acme root's twin."""
    key = ED.maker.root_key if root else _LEAF_KEY
    subject = ED.maker.root.subject if root else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ED.maker.root.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return certificate_to_der(builder.sign(key, None))


def _duplicate_extension_certificate(root: bool) -> bytes:
    """Two extensions with the same OID: built with two OIDs of one length, then one renamed in the DER."""
    first, second = x509.ObjectIdentifier("1.2.3.4"), x509.ObjectIdentifier("1.2.3.5")
    der = _self_made_certificate(
        x509.UnrecognizedExtension(first, b"\x05\x00"),
        x509.UnrecognizedExtension(second, b"\x05\x00"),
        root=root,
    )
    assert der.count(bytes.fromhex("06032a0305")) == 1
    return der.replace(bytes.fromhex("06032a0305"), bytes.fromhex("06032a0304"))


_BAD_EXTENSION_CERTIFICATES: dict[str, Callable[[bool], bytes]] = {
    # basicConstraints whose value is not a SEQUENCE: ValueError (found by test_verify_idevid_mutated_root,
    # test_verify_idevid_mutated_chain, test_read_proof_mutated, test_read_invoice_self_signed_...)
    "unparseable": lambda root: _self_made_certificate(
        x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x01\x01\xff"), root=root
    ),
    # the same OID twice: cryptography's DuplicateExtension (not a ValueError)
    "duplicate": _duplicate_extension_certificate,
    # an authorityKeyIdentifier naming an x400Address: UnsupportedGeneralNameType (not a ValueError)
    "x400_address": lambda root: _self_made_certificate(
        x509.UnrecognizedExtension(ExtensionOID.AUTHORITY_KEY_IDENTIFIER, bytes.fromhex("3004a102a300")),
        root=root,
    ),
}


@pytest.mark.parametrize("kind", list(_BAD_EXTENSION_CERTIFICATES))
def test_regression_certificate_extensions_that_do_not_parse(kind: str) -> None:
    """verify_certificate_chain read extensions (parsed lazily by cryptography) before any signature check,
    and let ValueError, DuplicateExtension and UnsupportedGeneralNameType out: through an IDevID chain in a
    proof bundle, through an invoice self-signed with such a certificate, and through a damaged root."""
    der = _BAD_EXTENSION_CERTIFICATES[kind](False)
    with pytest.raises(MalformedError):
        idevid.verify_idevid([der], ED.roots, NOW)
    root = certificates.load_der_certificate(_BAD_EXTENSION_CERTIFICATES[kind](True))
    with pytest.raises(MalformedError):
        idevid.verify_idevid(ED.idevid, [root], NOW)
    with pytest.raises(MalformedError):
        idevid.verify_idevid([*ED.idevid, certificate_to_der(root)], ED.roots, NOW)
    payload = cbor2.loads(cbor2.loads(ED.links[0]).value[2])
    invoice = cose.sign(payload, ContentType.INVOICE, _LEAF_KEY, x5chain=(der,))
    with pytest.raises(MalformedError) as caught:
        chains.read_invoice(invoice, roots=ED.roots, now=NOW)
    assert caught.value.index == 0


@pytest.mark.parametrize("oid", [b"K2Vx", b"K2Vv"])  # base64 of 1.3.101.113 (Ed448), 1.3.101.111 (X448)
def test_regression_private_key_naming_another_curve(oid: bytes) -> None:
    """private_key_from_pem: PKCS#8 naming Ed448 or X448 over Ed25519's 32 key bytes raised cryptography's
    InternalError (OpenSSL: key setup failed).

    Found by test_private_key_from_pem (a bit flip in the PEM, K2Vw -> K2Vx).
    """
    pem = keys.private_key_to_pem(_ED_KEY)
    assert pem.count(b"K2Vw") == 1
    with pytest.raises(InvalidKeyError):
        keys.private_key_from_pem(pem.replace(b"K2Vw", oid))


def test_regression_certificate_signature_with_unused_bits() -> None:
    """load_der_certificate: a signature BIT STRING saying 1 unused bit (the signature's last bit being 0)
    loaded and verified, so one IDevID certificate had a second encoding, with another certificate hash.

    Found by test_verify_idevid_mutated_chain (the byte after 03 41 flipped from 00 to 01).
    """
    der = certificate_to_der(ED.device.cert)
    at = len(der) - len(ED.device.cert.signature) - 1
    assert der[at] == 0
    assert ED.device.cert.signature[-1] & 1 == 0  # the fixture's signature ends in a zero bit
    twin = der[:at] + b"\x01" + der[at + 1 :]
    with pytest.raises(MalformedError):
        certificates.load_der_certificate(twin)
    with pytest.raises(MalformedError):
        idevid.verify_idevid([twin], ED.roots, NOW)

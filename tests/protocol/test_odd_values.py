"""Odd values at every position of every message: each reader refuses them with an error that prints.

test_fuzz.py mutates messages at random; this file is systematic about one family of inputs that broke the
core before: values CPython cannot format (a 5 000-digit integer makes `str`, `repr` and f-strings raise
ValueError), and the other values a CBOR decoder hands back that the contract never uses (bignums just
past 2^64, floats, NaN, negative zero, infinities, tagged dates, decimals and sets, long text and bytes).

Every node of every message kind (hello, proof bundle, note, receipt, invoice, link, chain array, and the
protected headers and payloads nested in them) is replaced by such a value, and every map and array gets
one added; signed payloads are also re-signed with the right key, so the checks after the signature see
them. The property: the reader succeeds or raises a documented AutoAddError, and `str(err)` works and
stays short, so no received value was copied into it. Error bodies (transport.read_error_body) must turn
any body into an error that prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import copy
from typing import Any

import cbor2
from hypothesis import given, strategies as st
import pytest

from custom_components.autoadd.protocol import chain as chains, encoding, handshake, transport
from custom_components.autoadd.protocol.errors import ERRORS_BY_CODE, AutoAddError
from custom_components.autoadd.protocol.idevid import DeviceIdentity, verify_idevid
from custom_components.autoadd.protocol.keys import PrivateKey
from tests.factory import NOW
from tests.protocol.test_fuzz import (
    ED,
    P256,
    SCENARIOS,
    Path,
    Scenario,
    edit,
    fuzz,
    paths,
    rewrap,
    sign_as,
    tree_of,
    unwrap,
    with_proof,
)

HUGE = 10**5000  # 16 610 bits: `str(HUGE)` raises ValueError (the 4 300-digit limit)

#: Values the contract never uses, each of which a careless error message or conversion trips over.
ODD_VALUES: list[Any] = [
    HUGE,
    -HUGE,
    2**64,
    -(2**64) - 1,
    2**64 - 1,
    float("nan"),
    -0.0,
    float("inf"),
    1.5,
    True,
    None,
    cbor2.undefined,
    cbor2.CBORTag(1, HUGE),  # epoch date out of any range
    cbor2.CBORTag(1, 2**63),
    cbor2.CBORTag(0, "0000-01-01T00:00:00Z"),
    cbor2.CBORTag(4, [HUGE, 1]),  # decimal fraction with an exponent no decimal holds
    cbor2.CBORTag(5, [-(2**40), HUGE]),  # bigfloat
    cbor2.CBORTag(30, [HUGE, 0]),  # rational with a zero denominator
    cbor2.CBORTag(258, [[HUGE]]),  # a set, whose arrays cbor2 turns into tuples
    cbor2.CBORTag(2**64 - 1, HUGE),
    cbor2.CBORTag(18, [HUGE, {}, HUGE, HUGE]),
    "é" * 2000,
    b"\xff" * 3000,
    [HUGE, -HUGE],
    {HUGE: HUGE},
]
MAX_MESSAGE_TEXT = 300

type Reader = Callable[[bytes], object]


def refused_or_accepted(read: Reader, data: bytes) -> None:
    """The property: success, or a documented error whose text prints and stays short."""
    refused: AutoAddError | None = None
    try:
        read(data)
    except AutoAddError as err:
        refused = err
    if refused is not None:
        assert ERRORS_BY_CODE.get(refused.code) is type(refused), f"undocumented {type(refused).__name__}"
        text = str(refused)
        assert len(text) <= MAX_MESSAGE_TEXT, f"an error message of {len(text)} characters"
        assert isinstance(refused.detail, str)


# --- Where to put an odd value --------------------------------------------------------------------------

type Change = tuple[Path, str]


def changes(tree: Any) -> Iterator[Change]:
    """Every node (to replace), and every map or array (to give an extra entry)."""
    for path in paths(tree):
        yield path, "replace"
        if isinstance(_node(tree, path), dict | list):
            yield path, "add key" if isinstance(_node(tree, path), dict) else "add item"
            if isinstance(_node(tree, path), dict):
                yield path, "add value"


def _node(tree: Any, path: Path) -> Any:
    for step in path:
        tree = tree.value if step[0] in {"embedded", "tag"} else tree[step[1]]
    return tree


def apply(tree: Any, change: Change, value: Any) -> Any:
    """The tree with `value` put at the change's position."""
    path, how = change
    if how == "replace":
        return edit(tree, path, lambda _: value)
    if how == "add item":
        return edit(tree, path, lambda old: [*old, value])
    if how == "add key":
        return edit(tree, path, lambda old: {**old, _as_key(value): 0})
    return edit(tree, path, lambda old: {**old, 99: value})


def _as_key(value: Any) -> Any:
    """The value as a map key, or the huge integer where it cannot be one (an array, a map)."""
    try:
        hash(value)
    except (TypeError, RuntimeError):  # cbor2's CBORTag says RuntimeError when it holds a list
        return HUGE
    return value


def mutated_message(message: bytes, change: Change, value: Any) -> bytes | None:
    """The message with one odd value in it, re-encoded canonically (None if cbor2 cannot encode it)."""
    try:
        return encoding.dumps(rewrap(apply(tree_of(message), change, value)))
    except (ValueError, TypeError, cbor2.CBOREncodeError):
        return None


def resigned_message(message: bytes, key: PrivateKey, change: Change, value: Any) -> bytes | None:
    """The message's payload with one odd value in it, signed again with the signer's key."""
    payload = unwrap(cbor2.loads(cbor2.loads(message).value[2]))
    try:
        return sign_as(message, rewrap(apply(payload, change, value)), key)
    except (ValueError, TypeError, cbor2.CBOREncodeError):
        return None


def payload_changes(message: bytes) -> list[Change]:
    return list(changes(unwrap(cbor2.loads(cbor2.loads(message).value[2]))))


# --- The readers, each with the message it reads and the key that signs it ------------------------------


def _read_proof(scen: Scenario, bundle: bytes) -> object:
    return copy.copy(scen.fresh_session).read_proof(bundle, roots=scen.roots, now=NOW)


def _read_receipt(scen: Scenario, receipt: bytes) -> object:
    copy.copy(scen.noted_session).read_receipt(receipt)
    return None


def _as_is(message: bytes) -> bytes:
    return message


_IDENTITIES = {scen.name: verify_idevid(scen.idevid, scen.roots, NOW) for scen in SCENARIOS}


def kinds(scen: Scenario) -> dict[str, tuple[bytes, Reader, PrivateKey | None, Callable[[bytes], bytes]]]:
    """kind -> (message, its reader, the key that signs its payload or None, how a re-signed one is sent)."""
    same = _as_is
    device: DeviceIdentity = _IDENTITIES[scen.name]
    return {
        "hello": (scen.hello, handshake.read_hello, scen.owner, same),
        "hello at the device": (
            scen.hello,
            lambda m: scen.device.responder().answer_hello(m, scen.chain, now=0.0),
            scen.owner,
            same,
        ),
        "proof bundle": (scen.bundle, lambda m: _read_proof(scen, m), None, same),
        "proof": (
            scen.proof,
            lambda m: _read_proof(scen, m),
            scen.device.key,
            lambda p: with_proof(scen.bundle, p),
        ),
        "note": (
            scen.note,
            lambda m: scen.responder_with_session().accept_note(m, scen.chain, now=1.0),
            scen.owner,
            same,
        ),
        "receipt": (scen.receipt, lambda m: _read_receipt(scen, m), scen.device.key, same),
        "invoice": (
            scen.links[0],
            lambda m: chains.read_invoice(m, roots=scen.roots, now=NOW, device=device),
            scen.maker.signer_key,
            same,
        ),
        "invoice on the device": (
            scen.links[0],
            lambda m: chains.read_invoice(m, roots=None, now=NOW),
            scen.maker.signer_key,
            same,
        ),
        "link": (scen.links[1], lambda m: chains.read_link(m, scen.heads[0]), scen.owner, same),
        "chain array": (
            chains.encode_chain(scen.links),
            lambda m: chains.verify_chain(chains.decode_chain(m), roots=scen.roots, now=NOW),
            None,
            same,
        ),
    }


KINDS = list(kinds(ED))
SIGNED_KINDS = [kind for kind in KINDS if kinds(ED)[kind][2] is not None]


# --- Every position, with the value no one can format ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_huge_integer_at_every_position(kind: str) -> None:
    """A 5 000-digit integer in place of every node, and added to every map and array: refused cleanly."""
    message, read, _, _ = kinds(ED)[kind]
    for change in changes(tree_of(message)):
        mutated = mutated_message(message, change, HUGE)
        assert mutated is not None
        refused_or_accepted(read, mutated)


@pytest.mark.parametrize("kind", SIGNED_KINDS)
def test_huge_integer_at_every_position_of_a_resigned_payload(kind: str) -> None:
    """The same inside the payload, signed again by the right key: the checks after the signature see it."""
    message, read, key, place = kinds(ED)[kind]
    assert key is not None
    for change in payload_changes(message):
        resigned = resigned_message(message, key, change, HUGE)
        assert resigned is not None
        refused_or_accepted(read, place(resigned))


# --- Any odd value, anywhere, in both key types -------------------------------------------------------------

_scenarios = st.sampled_from(SCENARIOS)
_odd = st.integers(0, len(ODD_VALUES) - 1).map(ODD_VALUES.__getitem__)  # not sampled_from: unhashable


@fuzz(300)
@given(st.data(), _scenarios, st.sampled_from(KINDS), _odd)
def test_odd_value_anywhere(data: st.DataObject, scen: Scenario, kind: str, value: Any) -> None:
    message, read, _, _ = kinds(scen)[kind]
    change = data.draw(st.sampled_from(list(changes(tree_of(message)))))
    mutated = mutated_message(message, change, value)
    if mutated is not None:
        refused_or_accepted(read, mutated)


@fuzz(300)
@given(st.data(), _scenarios, st.sampled_from(SIGNED_KINDS), _odd)
def test_odd_value_anywhere_in_a_resigned_payload(
    data: st.DataObject, scen: Scenario, kind: str, value: Any
) -> None:
    message, read, key, place = kinds(scen)[kind]
    assert key is not None
    change = data.draw(st.sampled_from(payload_changes(message)))
    resigned = resigned_message(message, key, change, value)
    if resigned is not None:
        refused_or_accepted(read, place(resigned))


# --- Error bodies -------------------------------------------------------------------------------------------

_SMALL_ODD = [v for v in ODD_VALUES if len(encoding.dumps(v)) < 900] + [10**2000, -(10**2000)]
_BODY_VALUES = st.one_of(
    st.integers(0, len(_SMALL_ODD) - 1).map(_SMALL_ODD.__getitem__),
    st.text(max_size=300),
    st.integers(),
)


@fuzz(200)
@given(
    st.dictionaries(st.sampled_from([1, 2, 3, -1, "code"]) | st.integers(), _BODY_VALUES, max_size=3)
    | _BODY_VALUES,
    st.sampled_from([400, 403, 409, 410, 413, 429, 500]),
)
def test_error_body_with_odd_values(value: Any, status: int) -> None:
    """Whatever an error body holds, reading it gives an AutoAddError that prints."""
    try:
        body = encoding.dumps(value)
    except (ValueError, TypeError, cbor2.CBOREncodeError):
        return
    err = transport.read_error_body(body, status)
    assert isinstance(err, AutoAddError)
    assert isinstance(str(err), str)


def test_every_position_is_reached() -> None:
    """The sweep reaches nested parts: protected headers, payloads, the links inside a bundle."""
    bundle_changes = list(changes(tree_of(P256.bundle)))
    assert len(bundle_changes) > 100
    depths = {len(path) for path, _ in bundle_changes}
    assert max(depths) >= 6  # bundle -> chain -> link -> tag -> embedded payload -> owners -> owner

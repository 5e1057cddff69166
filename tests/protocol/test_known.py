"""Reusing an earlier verification decides exactly what verifying in full decides (known.py).

A device's first answer is verified in full and remembered; its next answer (the same IDevID or
another one, the same chain, a longer one, or a mutated one, at another time and against other roots)
is verified both ways: the verdict, error kind, code, index and detail must be the same.
"""

from __future__ import annotations

from collections.abc import Callable
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.autoadd.protocol import chain as chains
from custom_components.autoadd.protocol.certificates import certificate_to_der
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.idevid import verify_idevid
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey
from custom_components.autoadd.protocol.known import Known, roots_key, verify_chain_again, verify_idevid_again
from tests.factory import NOW, Manufacturer
from tests.protocol.test_verify_equivalence import _DEVICES, _MAKERS, _chains, _mutations

_STRANGER = Manufacturer.create("Stranger")
_OTHER_DEVICE = {kind: _MAKERS[kind].make_device("SN-OTHER", kind) for kind in KeyType}
#: When the second answer is checked: now, before the IDevID is valid, before the root is, far later.
_TIMES = [NOW, NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=40), NOW + dt.timedelta(days=40000)]


def _outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        found = call()
    except AutoAddError as err:
        return ("refused", type(err), err.code, err.index, err.detail)
    if isinstance(found, chains.VerifiedChain):
        return ("accepted", found.links, found.digests, found.history, found.idevid_hash)
    return ("accepted", found.device_id, found.certificate_hash, found.issuer.root_fingerprint)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    case=_chains(),
    grow=st.integers(0, 5),
    mutated=st.booleans(),
    other_device=st.booleans(),
    when=st.sampled_from(_TIMES),
    roots_choice=st.integers(0, 2),
)
def test_a_known_answer_is_decided_as_in_full(
    data: st.DataObject,
    case: tuple[KeyType, list[bytes], list[list[PrivateKey]]],
    grow: int,
    mutated: bool,
    other_device: bool,
    when: dt.datetime,
    roots_choice: int,
) -> None:
    """The first `k` links were verified at NOW; the next answer is verified again both ways."""
    kind, links, owners = case
    maker = _MAKERS[kind]
    first_roots = [maker.root]
    split = max(1, len(links) - grow)
    idevid = [certificate_to_der(_DEVICES[kind].cert)]
    identity = verify_idevid(idevid, first_roots, NOW)
    first = chains.verify_chain(links[:split], roots=first_roots, now=NOW, device=identity)
    known = Known(tuple(idevid), identity, first, roots_key(first_roots))

    answer = data.draw(_mutations(links, owners)) if mutated else links
    answer_idevid = [certificate_to_der(_OTHER_DEVICE[kind].cert)] if other_device else idevid
    roots = [[maker.root], [_STRANGER.root, maker.root], [_STRANGER.root]][roots_choice]

    def again() -> Any:
        device = verify_idevid_again(answer_idevid, roots, when, known)
        return verify_chain_again(answer, roots=roots, now=when, device=device, known=known)

    def full() -> Any:
        device = verify_idevid(answer_idevid, roots, when)
        return chains.verify_chain(answer, roots=roots, now=when, device=device)

    assert _outcome(again) == _outcome(full)
    assert _outcome(lambda: verify_idevid_again(answer_idevid, roots, when, known)) == _outcome(
        lambda: verify_idevid(answer_idevid, roots, when)
    )

"""§7.8 (note, N1-N12) and §8.4 (the device's session table), sent to `/autoadd/v1/note`.

The refused notes need no owner key: the session comes from a stranger's hello, and a note that must get
as far as the signature check (N11) carries an owner's kid (read from the chain the device sent) over a
signature by a fresh key of that owner's type. Only the full handshake (N12, R1-R9) needs --owner-key, and
it runs only with --onboard because it changes the device: the owner imprint and the configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import datetime as dt

import cbor2
from cryptography import x509

from custom_components.autoadd.protocol.const import (
    MAX_BUNDLE_SIZE,
    MAX_CONFIG_SIZE,
    ContentType,
)
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.handshake import RegistrarHandshake, make_hello
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, fingerprint, key_type_of
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, PATH_HELLO, PATH_NOTE

from .checks_hello import good_hello
from .http import DeviceHttp
from .messages import (
    Probe,
    note_payload,
    now_ts,
    owner_twin_key,
    random_bytes,
    signed,
    stranger,
)
from .results import Result, describe_answer, expect_error, failed, passed, skipped

#: The device keeps at most this many sessions (§8.4); one more hello drops the oldest.
MAX_SESSIONS = 8
#: What the conformance handshake leaves as the device's configuration (--onboard only).
ONBOARD_CONFIG = {"autoadd_conformance": "onboarded"}


async def note_checks(http: DeviceHttp, probe: Probe) -> list[Result]:
    """Every refused note of §7.8 that needs no owner key, all against `probe`'s open session."""
    results: list[Result] = []
    intruder = stranger()

    async def refused(rule: str, title: str, body: bytes, code: str) -> None:
        results.append(expect_error(rule, title, await http.post(PATH_NOTE, body), code))

    def by_intruder(**changes: object) -> bytes:
        return signed(note_payload(probe, **changes), ContentType.NOTE, intruder)

    hello = make_hello(intruder, random_bytes(), now_ts())
    await refused("N1", "a hello sent as a note", hello, "wrong_content_type")
    as_link = signed(note_payload(probe), ContentType.LINK, intruder)
    await refused("N1", "a note signed as a link", as_link, "wrong_content_type")
    await refused("N1", f"a note over {MAX_BUNDLE_SIZE} bytes", bytes(MAX_BUNDLE_SIZE + 1), "too_large")
    await refused("N2", "a note without links (label 16)", by_intruder(links=None), "malformed")
    await refused("N2", "a note of version 2", by_intruder(version=2), "unsupported_version")
    await refused(
        "N2", "a note with a registrar key (label 12)", by_intruder(registrar_key=b"k"), "malformed"
    )
    await refused(
        "N4", "a note for a session never opened", by_intruder(device_nonce=random_bytes()), "unknown_session"
    )
    await refused(
        "N5",
        "a note with the wrong registrar nonce",
        by_intruder(registrar_nonce=random_bytes()),
        "nonce_mismatch",
    )
    await refused("N6", "a note for another device", by_intruder(device_id=random_bytes()), "wrong_device")
    await refused("N7a", "a note whose config has an integer key", by_intruder(config={1: "x"}), "malformed")
    for what, value in (
        ("a float", 1.5),
        ("a tag (1, a date)", cbor2.CBORTag(1, 0)),
        ("undefined", cbor2.undefined),
        ("a nested map with an integer key", {"inner": {1: 0}}),
    ):
        await refused(
            "N7a", f"a note whose config holds {what}", by_intruder(config={"v": value}), "malformed"
        )
    await refused(
        "N7a",
        f"a note whose config is over {MAX_CONFIG_SIZE} bytes",
        by_intruder(config={"big": "x" * MAX_CONFIG_SIZE}),
        "too_large",
    )
    await refused(
        "N8", "a note carrying a link that is not a COSE_Sign1", by_intruder(links=[b"junk"]), "malformed"
    )
    await refused(
        "N9",
        "a note bound to another chain head",
        by_intruder(chain_head=random_bytes()),
        "chain_head_mismatch",
    )
    await refused("N10", "a note signed by a key that owns nothing", by_intruder(), "not_owner")
    if not probe.chain.head.owners:  # unassigned stock (§14.9): no owner's kid to forge
        results.append(skipped("N11", "a note under an owner's kid", "the chain names no owner yet"))
    else:
        results += await _forged_owner_notes(http, probe)
    results.append(
        skipped("N7", "a note after the chain changed since its hello", "needs a chain change; not run")
    )
    results.append(skipped("N3", "a note for an expired session", "takes 60 s; not run"))
    return results


async def _forged_owner_notes(http: DeviceHttp, probe: Probe) -> list[Result]:
    """N11: notes under a current owner's kid, signed by another key or with another algorithm."""
    results: list[Result] = []
    owner = probe.chain.head.owners[0]
    owner_kid = fingerprint(owner)

    async def refused(rule: str, title: str, body: bytes, code: str) -> None:
        results.append(expect_error(rule, title, await http.post(PATH_NOTE, body), code))

    twin = owner_twin_key(owner)
    forged = signed(note_payload(probe), ContentType.NOTE, twin, kid=owner_kid)
    await refused("N11", "a note under an owner's kid with another key's signature", forged, "bad_signature")
    other_type = stranger(KeyType.P256 if key_type_of(owner) is KeyType.ED25519 else KeyType.ED25519)
    confused = signed(note_payload(probe), ContentType.NOTE, other_type, kid=owner_kid)
    await refused(
        "N11", "a note under an owner's kid signed with another algorithm", confused, "unsupported_algorithm"
    )
    return results


async def session_checks(http: DeviceHttp) -> list[Result]:
    """§8.4: a refused note leaves its session open; a ninth hello drops the oldest of eight sessions."""
    results: list[Result] = []
    intruder = stranger()
    probes: list[Probe] = []
    for _ in range(MAX_SESSIONS + 1):
        found = await good_hello(http)
        if not isinstance(found, Probe):
            return [failed("8.4", "sessions: nine hellos answered", found.why)]
        probes.append(found)
    first, last = probes[0], probes[-1]
    again = signed(note_payload(last), ContentType.NOTE, intruder)
    title = "a refused note leaves its session open (sent twice: not_owner both times)"
    first_answer = await http.post(PATH_NOTE, again)
    check = expect_error("8.4", title, first_answer, "not_owner")
    results.append(
        check if check.why else expect_error("8.4", title, await http.post(PATH_NOTE, again), "not_owner")
    )
    results.append(
        expect_error(
            "8.4",
            f"{MAX_SESSIONS + 1} hellos drop the oldest session",
            await http.post(PATH_NOTE, signed(note_payload(first), ContentType.NOTE, intruder)),
            "unknown_session",
        )
    )
    return results


@dataclass(frozen=True, slots=True)
class OnboardOptions:
    """What the positive handshake needs: an owner's key, the maker's root, and the maker's consent."""

    owner_key: PrivateKey | None
    roots: Sequence[x509.Certificate] | None
    onboard: bool


async def onboard_checks(http: DeviceHttp, options: OnboardOptions) -> list[Result]:
    """N12 and R1-R9: hello -> proof -> note -> receipt with an owner's key, then the note replayed."""
    title = "a full hello, proof, note, receipt with the owner key (receipt verified, R1-R9)"
    replay = "the accepted note, sent again, finds its session used (§8.4)"
    missing = [
        need
        for need, have in (
            ("--owner-key", options.owner_key),
            ("--root", options.roots),
            ("--onboard", options.onboard),
        )
        if not have
    ]
    if missing or options.owner_key is None or not options.roots:
        why = "needs " + ", ".join(missing) + " (it changes the device's owner imprint and configuration)"
        return [skipped("N12", title, why), skipped("8.4", replay, why)]
    note, why = await _handshake(http, options.owner_key, options.roots)
    if note is None:
        return [failed("N12", title, why)]
    return [
        passed("N12", title),
        expect_error("8.4", replay, await http.post(PATH_NOTE, note), "unknown_session"),
    ]


async def _handshake(
    http: DeviceHttp, owner: PrivateKey, roots: Sequence[x509.Certificate]
) -> tuple[bytes | None, str]:
    """The full handshake with the registrar core: the note the device took, or None and why not."""
    session = RegistrarHandshake(owner, issued_at=now_ts())
    answer = await http.post(PATH_HELLO, session.hello)
    if answer.status != 200:
        return None, f"the owner's hello: expected 200, got {describe_answer(answer)}"
    try:
        session.read_proof(answer.body, roots=roots, now=dt.datetime.now(dt.UTC))
        note = session.make_note(signer=owner, issued_at=now_ts(), config=ONBOARD_CONFIG)
    except AutoAddError as err:
        if session.device is not None:
            return None, "the --owner-key is not a current owner in the device's chain"
        return None, f"the registrar core refuses the proof: {err.code}"
    answer = await http.post(PATH_NOTE, note)
    if answer.status != 200 or answer.content_type != MEDIA_TYPE:
        return None, f"the note: expected 200 {MEDIA_TYPE}, got {describe_answer(answer)}"
    try:
        session.read_receipt(answer.body)
    except AutoAddError as err:
        return None, f"the registrar core refuses the receipt: {err.code}"
    return note, ""

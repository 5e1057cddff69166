"""§14.9, claim codes. A device whose chain names owners has no claim to take: `404 not_found` or `409
already_claimed`. Unassigned stock refuses, before it counts anything, a start for another device (Q2), a
malformed start (Q1) and a finish for no session (F2). With --claim-code, a wrong code is refused with
`wrong_claim_code` (F5: this counts one wrong code on the device); with --claim too, the right code
claims the device for --owner-key, and the claim link it answers must verify (§7.2a)."""

from __future__ import annotations

from dataclasses import dataclass

from custom_components.autoadd.protocol.claim import ClaimRun
from custom_components.autoadd.protocol.claim_code import ClaimCode
from custom_components.autoadd.protocol.const import PROTOCOL_VERSION, Label
from custom_components.autoadd.protocol.encoding import dumps
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, generate_private_key, public_key_of
from custom_components.autoadd.protocol.transport import NOT_FOUND, PATH_CLAIM_FINISH, PATH_CLAIM_START

from .http import DeviceHttp
from .messages import Probe
from .results import Result, describe_answer, error_code_of, expect_error, failed, passed, skipped

OWNED = "a device whose chain names owners takes no claim (404 not_found or 409 already_claimed)"


@dataclass(frozen=True, slots=True)
class ClaimOptions:
    """What the claim checks may do: a code to try (wrong first), and whether to claim for good."""

    code: ClaimCode | None = None
    owner_key: PrivateKey | None = None
    claim: bool = False


def _start(probe: Probe, code: ClaimCode, owner: PrivateKey, device_id: bytes | None = None) -> ClaimRun:
    key = public_key_of(owner)
    return ClaimRun(code, device_id=device_id or probe.device_id, home=key, owners=[key])


async def claim_checks(http: DeviceHttp, probe: Probe, options: ClaimOptions) -> list[Result]:
    """Q1, Q2, F2 on unassigned stock (and F5, F8 when asked); Q3 on a device with owners."""
    start = _start(probe, ClaimCode(probe.device_id[:3], bytes(8)), options.owner_key or _scratch())
    if probe.chain.head.owners:
        answer = await http.post(PATH_CLAIM_START, start.start)
        code = error_code_of(answer)
        if (answer.status, code) in ((404, NOT_FOUND), (409, "already_claimed")):
            return [passed("Q3", OWNED)]
        return [failed("Q3", OWNED, f"got {describe_answer(answer)}")]
    other = _start(probe, ClaimCode(bytes(3), bytes(8)), _scratch(), device_id=bytes(32)).start
    bare = dumps({Label.VERSION: PROTOCOL_VERSION})
    checks = [
        ("Q2", "a claim start for another device id", PATH_CLAIM_START, other, "wrong_device"),
        ("Q1", "a claim start that is no claim-start map", PATH_CLAIM_START, bare, "malformed"),
        ("F2", "a claim finish for no open session", PATH_CLAIM_FINISH, _orphan(), "unknown_session"),
    ]
    results = [
        expect_error(rule, title, await http.post(path, body), code)
        for rule, title, path, body, code in checks
    ]
    results += await _with_code(http, probe, options)
    return results


async def _with_code(http: DeviceHttp, probe: Probe, options: ClaimOptions) -> list[Result]:
    wrong_title = "a claim run with a wrong code (counts one wrong code on the device)"
    right_title = "a claim run with the right code claims the device for --owner-key (CHANGES it for good)"
    if options.code is None:
        return [skipped("F5", wrong_title, "needs --claim-code"), skipped("F8", right_title, "needs --claim")]
    owner = options.owner_key or _scratch()
    wrong = _start(probe, ClaimCode(options.code.hint, bytes(b ^ 0xFF for b in options.code.secret)), owner)
    started = await http.post(PATH_CLAIM_START, wrong.start)
    if started.status != 200:
        results = [failed("F5", wrong_title, f"the start got {describe_answer(started)}")]
    else:
        answer = await http.post(PATH_CLAIM_FINISH, wrong.finish(started.body))
        results = [expect_error("F5", wrong_title, answer, "wrong_claim_code")]
    if not options.claim or options.owner_key is None:
        return [*results, skipped("F8", right_title, "needs --claim and --owner-key")]
    run = _start(probe, options.code, options.owner_key)
    started = await http.post(PATH_CLAIM_START, run.start)
    if started.status != 200:
        return [*results, failed("F8", right_title, f"the start got {describe_answer(started)}")]
    answer = await http.post(PATH_CLAIM_FINISH, run.finish(started.body))
    if answer.status != 200:
        return [*results, failed("F8", right_title, f"the finish got {describe_answer(answer)}")]
    try:
        run.read_link(answer.body, probe.chain)
    except AutoAddError as err:
        return [*results, failed("F8", right_title, f"its answer is refused (G5-G8): {err.code}")]
    return [*results, passed("F8", right_title)]


def _orphan() -> bytes:
    return dumps(
        {
            Label.VERSION: PROTOCOL_VERSION,
            Label.DEVICE_NONCE: bytes(32),
            Label.SHARE: bytes(32),
            Label.OWNERS: [],
            Label.CONFIRMATION: bytes(64),
        }
    )


def _scratch() -> PrivateKey:
    """A key no home has: the runs that must fail never name a real owner."""
    return generate_private_key(KeyType.ED25519)

"""The run: hello checks, proof, notes, sessions, transport, then the positive handshake (opt-in).

The order matters in one place only: the session checks open nine sessions, which drops every older one,
so they run after the note checks that use a session of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from cryptography import x509

from custom_components.autoadd.protocol.keys import KeyType, PrivateKey

from .checks_claim import ClaimOptions, claim_checks
from .checks_hello import good_hello, good_hello_title, hello_checks, proof_checks
from .checks_note import OnboardOptions, note_checks, onboard_checks, session_checks
from .checks_root import root_check
from .checks_transport import error_body_check, transport_checks
from .http import DeviceHttp, device_origin
from .messages import Probe
from .results import Outcome, Result, failed, passed


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the runner was asked to do (the command line, or a test)."""

    device: str
    owner_key: PrivateKey | None = None
    roots: Sequence[x509.Certificate] | None = None
    onboard: bool = False
    claim: ClaimOptions = field(default_factory=ClaimOptions)


async def run(options: RunOptions, session: aiohttp.ClientSession | None = None) -> list[Result]:
    """Run every check against the device at `options.device`; one Result per check, in order."""
    origin = device_origin(options.device)
    if session is None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as own:
            return await _run(DeviceHttp(own, origin), options)
    return await _run(DeviceHttp(session, origin), options)


async def _run(http: DeviceHttp, options: RunOptions) -> list[Result]:
    results: list[Result] = []
    probe: Probe | None = None
    for key_type in (KeyType.ED25519, KeyType.P256):
        found = await good_hello(http, key_type)
        if isinstance(found, Result):
            results.append(found)
        else:
            results.append(passed("H1-H5", good_hello_title(key_type)))
            probe = probe or found
    if probe is None:
        results.append(failed("*", "the remaining checks", "they need a good hello's proof bundle"))
        return results
    results += await hello_checks(http, probe)
    results += await proof_checks(http, options.roots)
    results += await note_checks(http, probe)
    results += await session_checks(http)
    results += await transport_checks(http, probe)
    results.append(await root_check(http, probe))
    results += await claim_checks(http, probe, options.claim)
    results += await onboard_checks(http, OnboardOptions(options.owner_key, options.roots, options.onboard))
    results.append(error_body_check(http))
    return results


def all_passed(results: Sequence[Result]) -> bool:
    """The exit status' question: no check failed (skips are not failures)."""
    return all(result.outcome is not Outcome.FAILED for result in results)

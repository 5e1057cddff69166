"""The figures measured in this process: raw signature costs, chain verification, and the registrar core
onboarding in-memory devices (rig.py). Every figure is a ratio against a baseline measured here, now."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import os
import statistics
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.keys import KeyType, PrivateKey, generate_private_key
from custom_components.autoadd.registrar.core import Candidate
from custom_components.autoadd.registrar.record import Address

from .figures import Figure
from .rig import Counter, Rig
from .world import NOW, Maker

_MESSAGE = os.urandom(200)


def best_of(call: Callable[[], object], *, repeat: int, number: int) -> float:
    """Seconds per call: the best of `repeat` batches of `number` calls (the least disturbed run)."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            call()
        runs.append((time.perf_counter() - started) / number)
    return min(runs)


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data)


def raw_costs(kind: KeyType, *, quick: bool) -> tuple[float, float]:
    """One raw `cryptography` verify and one sign of a 200-byte message, in seconds."""
    key = generate_private_key(kind)
    public = key.public_key()
    signature = _sign(key, _MESSAGE)
    if isinstance(public, ec.EllipticCurvePublicKey):
        verify: Callable[[], object] = lambda: public.verify(signature, _MESSAGE, ec.ECDSA(hashes.SHA256()))  # noqa: E731
    else:
        verify = lambda: public.verify(signature, _MESSAGE)  # noqa: E731
    number = 50 if quick else 400
    return (
        best_of(verify, repeat=5, number=number),
        best_of(lambda: _sign(key, _MESSAGE), repeat=5, number=number),
    )


def chain_figures(kind: KeyType, raw_verify: float, *, quick: bool) -> list[Figure]:
    """Chain verify time ÷ (signatures it needs x one raw verify), at 1, 8 and 64 links."""
    maker = Maker.create(kind)
    owner = generate_private_key(kind)
    out = []
    for length in (1, 8, 64):
        links = maker.device(owner, links=length).links
        roots = [maker.root]
        counter = Counter()
        with counter.counting():
            verify_chain(links, roots=roots, now=NOW)
        needed = counter.registrar  # the invoice, its signer certificate, every further link
        number = max(1, (20 if quick else 200) // length)
        took = best_of(lambda: verify_chain(links, roots=roots, now=NOW), repeat=5, number=number)  # noqa: B023
        out.append(
            Figure(
                key=f"chain_verify_{kind.value}_{length}",
                label=f"chain verify ÷ (signatures x raw verify), {_name(kind)}, {length} link(s)",
                target=1.3,
                value=took / (needed * raw_verify),
                detail={"seconds": took, "signatures": needed, "raw_verify_seconds": raw_verify},
            )
        )
    return out


def _name(kind: KeyType) -> str:
    return "Ed25519" if kind is KeyType.ED25519 else "P-256"


async def _registrar_cpu(rig: Rig, run: Callable[[], object]) -> float:
    """Registrar CPU seconds spent by awaiting `run()`'s attempts (the devices' share left out)."""
    device_before, started = rig.devices.cpu, time.process_time()
    run()
    await rig.scheduler.settle()
    return (time.process_time() - started) - (rig.devices.cpu - device_before)


async def known_device_figures(raw_verify: float, raw_sign: float, *, quick: bool) -> list[Figure]:
    """A known device with a 64-link chain back: verifications made, and time ÷ one raw verify."""
    counter = Counter()
    rig = Rig(counter=counter)
    device = rig.maker.device(rig.home.key, links=64)
    with counter.counting():
        await rig.onboard(device)
        record = rig.registrar.state.devices[device.device_id]
        assert record.is_member, "the bench device was not onboarded"
        address = record.address
        assert address is not None
        times, counts = [], []
        for _ in range(5 if quick else 30):
            counter.registrar = 0
            # It lost its imprint (a factory reset): announced unclaimed, it gets a note again.
            times.append(
                await _registrar_cpu(
                    rig,
                    lambda: rig.registrar.announce(_candidate(device.device_id, address)),
                )
            )
            counts.append(counter.registrar)
    took = statistics.median(times)
    return [
        Figure(
            key="known_back_verifications",
            label="known device back with the same 64-link chain: signature verifications",
            target=2,
            unit="",
            value=max(counts),
            detail={"counts": counts},
        ),
        Figure(
            key="known_back_time",
            label="same: registrar time ÷ one raw verify",
            target=4,
            value=took / raw_verify,
            note="median registrar CPU of an unclaimed re-announcement (proof, note, receipt)",
            detail={"seconds": took, "raw_sign_seconds": raw_sign},
        ),
    ]


def _candidate(device_id: str, address: Address) -> Candidate:
    return Candidate(device_id, address.host, address.port, claimed=False, txt={})


async def onboarding_figures(raw_verify: float, raw_sign: float, *, quick: bool) -> list[Figure]:
    """Registrar CPU per new device ÷ its own signature operations; and with many stored ÷ none."""
    counter = Counter()
    rig = Rig(counter=counter)
    runs = 10 if quick else 50

    async def one() -> tuple[float, int, int]:
        device = rig.maker.device(rig.home.key)
        host = rig.add(device)
        counter.registrar = counter.signatures = 0
        with counter.counting():
            took = await _registrar_cpu(rig, lambda: rig.announce(device.device_id, host))
        assert rig.registrar.state.devices[device.device_id].is_member, "the bench device was not onboarded"
        return took, counter.registrar, counter.signatures

    empty = [await one() for _ in range(runs)]
    took = statistics.median(t for t, _, _ in empty)
    verifies = max(n for _, n, _ in empty)
    signatures = max(n for _, _, n in empty)
    own = verifies * raw_verify + signatures * raw_sign  # every check it made, everything it signed
    stored = 200 if quick else 1000
    while len(rig.registrar.state.devices) < stored:
        await rig.onboard(rig.maker.device(rig.home.key))
    full = statistics.median([(await one())[0] for _ in range(runs)])
    return [
        Figure(
            key="onboarding_cpu",
            label="registrar CPU per onboarding ÷ its own signature operations",
            target=1.5,
            value=took / own,
            note=f"{verifies} verifications and {signatures} signatures (hello, note) per new device",
            detail={"seconds": took, "verifications": verifies, "signatures": signatures, "own_seconds": own},
        ),
        Figure(
            key="onboarding_stored",
            label=f"one more onboarding with {stored:,} already stored ÷ with none",
            target=1.2,
            value=full / took,
            note="registrar CPU, durable saves as JSON of the whole store" + (" (quick)" if quick else ""),
            detail={"stored": stored, "seconds_stored": full, "seconds_none": took},
        ),
    ]


async def flood_figures(*, quick: bool) -> list[Figure]:
    """A known device's check while bogus announcements (ids nobody answers for) keep arriving."""
    rig = Rig()
    device = rig.maker.device(rig.home.key)
    await rig.onboard(device)
    record = rig.registrar.state.devices[device.device_id]
    assert record.address is not None
    # One attempt's length: the same check with nothing else going on.
    rig.registrar.checked.discard(device.device_id)
    started = time.perf_counter()
    rig.registrar.announce(Candidate(device.device_id, record.address.host, record.address.port, True, {}))
    await rig.scheduler.settle()
    alone = time.perf_counter() - started
    rig.devices.silent_delay = max(alone, 0.005)  # every bogus host costs an attempt at least as long
    bogus = 200 if quick else 1000
    for n in range(bogus):
        rig.registrar.announce(Candidate(os.urandom(32).hex(), f"192.0.2.{n % 250 + 1}", 80 + n, False, {}))
    rig.registrar.checked.discard(device.device_id)
    checked = asyncio.Event()
    rig.owner.updated = lambda device_id: checked.set() if device_id == device.device_id else None
    started = time.perf_counter()
    rig.registrar.announce(Candidate(device.device_id, record.address.host, record.address.port, True, {}))
    await checked.wait()  # the check's proof was recorded
    flooded = time.perf_counter() - started
    rig.registrar.stop()
    for task in list(rig.scheduler.tasks):
        task.cancel()
    await asyncio.gather(*rig.scheduler.tasks, return_exceptions=True)
    attempt = rig.devices.silent_delay
    return [
        Figure(
            key="known_under_flood",
            label=f"a known device's handshake while {bogus:,} bogus announcements arrive: added delay",
            target=1,
            unit="attempts",
            value=max(0.0, flooded - alone) / attempt,
            note="delay ÷ one unanswered attempt's length",
            detail={"bogus": bogus, "seconds": flooded, "alone_seconds": alone, "attempt_seconds": attempt},
        )
    ]

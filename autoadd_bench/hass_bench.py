"""The figures measured on a real Home Assistant (issue 12): a burst of devices announced at once, and the
entry's set-up with many stored devices, each with the longest event-loop stall the probe saw and memory.

Home Assistant runs on loopback (the demo's fallback network) with the bench probe (probe/) beside the
integration; hass_world.py makes everything it runs on. Times are taken from this process, the stalls and
memory by the probe inside Home Assistant. A step that fails leaves its figures and all later ones
unmeasured, saying why; Home Assistant and the devices are stopped in every case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
import secrets
import time
from typing import Any, NoReturn

import aiohttp

from autoadd_demo.__main__ import set_up_registrar
from autoadd_demo.hass import HomeAssistantClient, HomeAssistantError, HomeAssistantProcess

from .figures import Figure
from .hass_world import (
    BenchError,
    DeviceProcess,
    Network,
    clone_records,
    entry_state,
    free_port,
    make_devices,
    probe,
    reset_probe,
    set_disabled,
    trust,
    write_bench_config,
)

#: Devices in the burst, and stored records for the two set-ups: the issue's, and the quick run's.
FULL = (1000, 1000, 10000)
QUICK = (30, 200, 1000)
POLL = 0.25
#: After the last device is onboarded (or the entry is loaded), the probe keeps watching this long: the
#: registrar's delayed save (1 s) is part of what the burst costs.
TAIL = 2.0
BURST_TIMEOUT = 600.0
#: A burst whose count has not moved for this long is over: nothing is left to onboard anything.
BURST_STUCK = 60.0
SETUP_TIMEOUT = 300.0

LABELS = {
    "burst_seconds": (
        "1,000 devices announced at once (devices on the same machine): all onboarded",
        5.0,
        "s",
    ),
    "burst_stall_ms": ("longest event-loop stall during that burst (5 ms probe)", 20.0, "ms"),
    "memory_per_device_kib": ("memory per onboarded device", 20.0, "KiB"),
    "setup_1000_seconds": ("set-up with 1,000 stored devices", 0.3, "s"),
    "setup_1000_stall_ms": ("longest stall during that set-up", 20.0, "ms"),
    "setup_10000_seconds": ("set-up with 10,000 stored devices", 2.0, "s"),
    "setup_10000_stall_ms": ("longest stall during that set-up", 20.0, "ms"),
    "setup_10000_memory_mib": ("memory of the set-up with 10,000 stored devices", 200.0, "MiB"),
}


@dataclass
class Run:
    """One bench run against one Home Assistant."""

    quick: bool
    say: Callable[[str], None]
    workdir: Path
    figures: dict[str, Figure] = field(default_factory=dict)
    hass: HomeAssistantProcess | None = None
    devices: DeviceProcess | None = None
    network: Network | None = None

    def __post_init__(self) -> None:
        """Every figure unmeasured until it is."""
        for key, (label, target, unit) in LABELS.items():
            self.figures[key] = Figure(key, label, target, unit, note="not reached")

    @property
    def config(self) -> Path:
        """Home Assistant's configuration folder."""
        return self.workdir / "config"

    def put(self, key: str, value: float | None, note: str, **detail: Any) -> None:
        """A figure measured (or, with `value` None, why not)."""
        fig = self.figures[key]
        fig.value, fig.note, fig.detail = value, note, detail

    def fail(self, reason: str) -> None:
        """Every figure not measured yet: why not."""
        for fig in self.figures.values():
            if fig.value is None and fig.note == "not reached":
                fig.note = reason


def _quick_note(quick: bool, n: int, full: int, what: str) -> str:
    return f"quick run: {n:,} {what} (the issue's N is {full:,})" if quick else ""


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


async def hass_figures(*, quick: bool, say: Callable[[str], None], workdir: Path) -> list[Figure]:
    """Start Home Assistant in `workdir`, measure the burst and the two set-ups, stop everything."""
    run = Run(quick, say, workdir)
    try:
        await _measure(run)
    except Exception as err:  # never raise past the bench: the figures measured so far count
        run.fail(f"{type(err).__name__}: {err}")
        say(f"Home Assistant bench stopped: {type(err).__name__}: {err}")
    finally:
        if run.devices is not None:
            await run.devices.stop()
        if run.hass is not None:
            await run.hass.stop()
        if run.network is not None:
            run.network.remove()
    return list(run.figures.values())


async def _start(run: Run) -> None:
    assert run.hass is not None
    started = time.perf_counter()
    await run.hass.start()
    run.say(f"Home Assistant answers after {time.perf_counter() - started:.1f} s")


async def _restart(run: Run, client: HomeAssistantClient) -> None:
    """Start the stopped Home Assistant again and wait until it runs. `start` waits for the onboarding
    API, which is gone once onboarding is done: here it only starts the process."""
    assert run.hass is not None
    started = time.perf_counter()
    with contextlib.suppress(HomeAssistantError):
        await run.hass.start(wait_seconds=0)
    while True:
        with contextlib.suppress(aiohttp.ClientError, HomeAssistantError):
            if (await client.get("/api/config")).get("state") == "RUNNING":
                break
        if time.perf_counter() - started > 300:
            raise BenchError(f"Home Assistant did not run again within 300 s; see {run.hass.config}/hass.out")
        await asyncio.sleep(0.5)
    run.say(f"Home Assistant runs again after {time.perf_counter() - started:.1f} s")
    await asyncio.sleep(3)  # its start-up work ends


async def _running(client: HomeAssistantClient) -> None:
    """Wait until Home Assistant has finished starting, then a moment for its start-up work to end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 300
    while (await client.get("/api/config")).get("state") != "RUNNING":
        if loop.time() > deadline:
            raise BenchError("Home Assistant did not reach RUNNING within 300 s")
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)


async def _long_lived(client: HomeAssistantClient) -> HomeAssistantClient:
    """A client with a long-lived token: the onboarding's access token expires after 30 minutes."""
    async with client.websocket() as ws:
        await ws.send_json(
            {"id": 1, "type": "auth/long_lived_access_token", "client_name": "AutoAdd bench", "lifespan": 2}
        )
        answer = await ws.receive_json()
    if not answer.get("success"):
        raise BenchError(f"no long-lived token: {answer.get('error')}")
    return HomeAssistantClient(client.session, client.url, answer["result"])


async def _measure(run: Run) -> None:
    burst_n, small_n, large_n = QUICK if run.quick else FULL
    run.network = Network.prepare()
    port = free_port()
    write_bench_config(run.config, port=port, adapters=run.network.adapters)
    run.hass = HomeAssistantProcess(run.config, port, allow_loopback=True)
    run.say(f"starting Home Assistant on port {port} (its first start installs the frontend: minutes)")
    await _start(run)
    async with aiohttp.ClientSession() as session:
        owner = await HomeAssistantClient.onboard(session, run.hass.url, "bench", secrets.token_urlsafe(12))
        client = await _long_lived(owner)
        await _running(client)
        entry_id, home_key, _ = await set_up_registrar(client)
        started = time.perf_counter()
        make_devices(run.workdir / "vendor", run.workdir / "devices", home_key, burst_n)
        run.say(f"{burst_n} devices provisioned and invoiced in {time.perf_counter() - started:.1f} s")
        await trust(client, entry_id, run.workdir / "vendor")
        await _burst(run, client, entry_id, burst_n)
        assert run.devices is not None
        await run.devices.stop()
        for n, full, prefix in ((small_n, 1000, "setup_1000"), (large_n, 10000, "setup_10000")):
            await _setup(run, client, entry_id, n=n, full=full, prefix=prefix)


async def _burst(run: Run, client: HomeAssistantClient, entry_id: str, n: int) -> None:
    await set_disabled(client, entry_id, disabled=True)
    assert run.network is not None
    run.devices = DeviceProcess(run.workdir / "devices", n, run.workdir / "devices.log", run.network)
    run.say(f"starting {n} devices in one autoadd-device process, the entry disabled")
    devices_start = await run.devices.start(wait_seconds=max(120.0, 3.0 * n))
    run.say(f"{n} devices serve and are announced after {devices_start:.1f} s; enabling the entry")
    await reset_probe(client)
    before = await probe(client)
    devices_cpu = run.devices.cpu_seconds()
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    enable_call = await set_disabled(client, entry_id, disabled=False)
    members, said, moved, last = 0, loop.time(), loop.time(), -1
    while (members := (await probe(client, rss=False))["members"]) < n:
        if members != last:
            moved, last = loop.time(), members
        if time.perf_counter() - started > BURST_TIMEOUT or loop.time() - moved > BURST_STUCK:
            break
        if loop.time() - said > 5:
            run.say(f"  {members} of {n} onboarded after {time.perf_counter() - started:.0f} s")
            said = loop.time()
        await asyncio.sleep(POLL)
    loaded = time.perf_counter() - started
    # Set up means every stored device has its sensor again (they are added after the entry is loaded).
    while (at_done := await probe(client, rss=False))["sensors"] < n:
        if time.perf_counter() - started > SETUP_TIMEOUT:
            await _give_up(client, f"{at_done['sensors']} of {n} sensors after {SETUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    devices_cpu_done = run.devices.cpu_seconds()
    at_done["loaded_seconds"] = round(loaded, 3)
    await asyncio.sleep(TAIL)
    after = await probe(client)
    detail = {
        "n": n,
        "onboarded": members,
        "seconds": round(seconds, 3),
        "enable_call_seconds": round(enable_call, 3),
        "devices_start_seconds": round(devices_start, 1),
        "stall_ms_when_all_onboarded": at_done["max_stall_ms"],
        "stall_ms_with_tail": after["max_stall_ms"],
        "tail_seconds": TAIL,
        "rss_before_kib": before["rss_kib"],
        "rss_after_kib": after["rss_kib"],
        "max_gc_ms": after.get("max_gc_ms"),
        # Who was busy: Home Assistant's process (all threads) and the one device process, over the burst.
        "hass_cpu_seconds": round(at_done["cpu_seconds"] - before["cpu_seconds"], 3),
        "devices_cpu_seconds": round(devices_cpu_done - devices_cpu, 3),
        **({"stall_sources": after["stall_sources"]} if "stall_sources" in after else {}),
    }
    quick = _quick_note(run.quick, n, 1000, "devices")
    grown = (after["rss_kib"] - before["rss_kib"]) / max(members, 1)
    if members < n:  # an unfinished burst: its stall and memory are not the figures asked for
        why = f"none more for {BURST_STUCK:.0f} s" if seconds < BURST_TIMEOUT else "time out"
        short = f"only {members} of {n} onboarded in {seconds:.0f} s ({why})"
        seen = f"{short} (stall seen {after['max_stall_ms']} ms, {grown:.1f} KiB per onboarded device)"
        for key in ("burst_seconds", "burst_stall_ms", "memory_per_device_kib"):
            run.put(key, None, _join(quick, seen), **detail)
    else:
        run.put("burst_seconds", seconds, quick, **detail)
        run.put("burst_stall_ms", after["max_stall_ms"], _join(quick, f"includes {TAIL:g} s after"), **detail)
        run.put("memory_per_device_kib", grown, quick, **detail)
    run.say(f"burst: {members}/{n} onboarded in {seconds:.2f} s, longest stall {after['max_stall_ms']} ms")


async def _give_up(client: HomeAssistantClient, why: str) -> NoReturn:
    """Stop a phase that took too long; the probe's reset first writes the profile so far (with
    AUTOADD_BENCH_PROFILE), so that what held it up can be read."""
    with contextlib.suppress(aiohttp.ClientError, HomeAssistantError):
        await reset_probe(client)
    raise BenchError(why)


async def _timed_set_up(
    client: HomeAssistantClient, entry_id: str, n: int
) -> tuple[float, float, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Enable the disabled entry: seconds until it is loaded, the enabling call's, and what the probe
    said when it was loaded, after the tail, and before."""
    await reset_probe(client)
    before = await probe(client)
    started = time.perf_counter()
    enable_call = await set_disabled(client, entry_id, disabled=False)
    while (state := await entry_state(client)) != "loaded":
        if time.perf_counter() - started > SETUP_TIMEOUT or state in {"setup_error", "failed_unload"}:
            raise BenchError(f"the entry with {n} stored records is {state}")
        await asyncio.sleep(0.02)
    loaded = time.perf_counter() - started
    # Set up means every stored device has its sensor again (they are added after the entry is loaded).
    while (at_done := await probe(client, rss=False))["sensors"] < n:
        if time.perf_counter() - started > SETUP_TIMEOUT:
            await _give_up(client, f"{at_done['sensors']} of {n} sensors after {SETUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    at_done["loaded_seconds"] = round(loaded, 3)
    await asyncio.sleep(TAIL)
    return seconds, enable_call, at_done, await probe(client), before


async def _setup(
    run: Run, client: HomeAssistantClient, entry_id: str, *, n: int, full: int, prefix: str
) -> None:
    assert run.hass is not None
    await set_disabled(client, entry_id, disabled=True)
    await run.hass.stop()
    model = clone_records(run.config, n, free_port())
    run.say(f"{n} stored records (clones of one onboarded record) written; Home Assistant starts again")
    await _restart(run, client)
    first, enable_call, at_done, after, before = await _timed_set_up(client, entry_id, n)
    # The first set-up also puts the clones in Home Assistant's device and entity registries (nameless,
    # so each entity id is found by trying `_2`, `_3`...: a cost growing with n squared that no real
    # home has). A restart of a real home finds its devices registered: that second set-up is the figure.
    # Memory is the first set-up's growth: the second reuses what the first allocated.
    await set_disabled(client, entry_id, disabled=True)
    seconds, _, again_done, again_after, _ = await _timed_set_up(client, entry_id, n)
    detail = {
        "n": n,
        "members_seen": again_after["members"],
        "seconds": round(seconds, 3),
        "loaded_seconds": again_done["loaded_seconds"],
        "stall_ms_with_tail": again_after["max_stall_ms"],
        "tail_seconds": TAIL,
        "first_seconds": round(first, 3),
        "first_enable_call_seconds": round(enable_call, 3),
        "first_stall_ms_when_loaded": at_done["max_stall_ms"],
        "first_loaded_seconds": at_done["loaded_seconds"],
        "first_stall_ms_with_tail": after["max_stall_ms"],
        "rss_before_kib": before["rss_kib"],
        "rss_after_first_kib": after["rss_kib"],
        "cloned_from": model["device_id"],
        "max_gc_ms": again_after.get("max_gc_ms"),
        **({"stall_sources": again_after["stall_sources"]} if "stall_sources" in again_after else {}),
    }
    note = _join(
        _quick_note(run.quick, n, full, "stored records"),
        "clones of one onboarded record, already registered (first_*: the set-up that registered them)",
    )
    seen = again_after["members"]
    wrong = "" if seen == n else f"the loaded entry saw {seen} records, not {n}"
    run.put(f"{prefix}_seconds", None if wrong else seconds, _join(note, wrong), **detail)
    run.put(f"{prefix}_stall_ms", None if wrong else again_after["max_stall_ms"],
            _join(note, wrong, f"includes {TAIL:g} s after"), **detail)  # fmt: skip
    if f"{prefix}_memory_mib" in run.figures:
        grown = (after["rss_kib"] - before["rss_kib"]) / 1024
        run.put(f"{prefix}_memory_mib", None if wrong else grown, _join(note, wrong), **detail)
    run.say(
        f"set-up with {n} stored records: {seconds:.3f} s, longest stall {again_after['max_stall_ms']} ms"
        f" (the first, registering them: {first:.3f} s, {after['max_stall_ms']} ms)"
    )

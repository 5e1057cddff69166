"""The bench's probe inside Home Assistant (scripts/bench): event-loop stalls, onboarded devices, memory.

A task sleeps 5 ms at a time and keeps the largest lateness of its wake-ups since the last reset. The view
`/api/autoadd_bench_probe` (authenticated like any API call) answers GET with
{"max_stall_ms", "members", "sensors", "rss_kib"} and resets the maximum on POST. `members` counts the
AutoAdd entry's registrar records that are members of the home, `sensors` their Connectivity entities
(on by default, unlike the onboarding state) that have a state. Reading `rss_kib` runs `gc.collect()`
first, on the event loop: that pause is the probe's own, so it is left out of the next wake-up's lateness
(`GET ?rss=0` skips both). Everything else a request costs counts, as for any other request.

GET also gives "cpu_seconds", the CPU time Home Assistant's process has used (all its threads), and
"max_gc_ms": the longest garbage collection since the reset (the probe's own left out), by generation,
so that a stall the collector caused is told from one that code caused.

With AUTOADD_BENCH_PROFILE=<folder>, the event loop's thread is profiled (cProfile) from each POST to the
next: each POST writes the profile since the last one to <folder>/probe-<pid>-<n>.prof.

With AUTOADD_BENCH_TRACE=1 a thread also samples the event loop's stack every 2 ms while the loop is
late by more than 20 ms, and GET adds "stall_sources": the most sampled stacks (innermost frame last).
"""

from __future__ import annotations

import asyncio
from collections import Counter
import cProfile
import gc
import os
from pathlib import Path
import sys
import threading
import time
import traceback
from typing import Any

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.helpers.typing import ConfigType

DOMAIN = "autoadd_bench_probe"
PERIOD = 0.005
TRACE_ENV = "AUTOADD_BENCH_TRACE"
PROFILE_ENV = "AUTOADD_BENCH_PROFILE"
TRACE_AFTER = 0.020
TRACE_EVERY = 0.002


class StallProbe:
    """The 5 ms sleeper: the largest lateness since the last reset, minus pauses the probe excused."""

    def __init__(self) -> None:
        """Not running until `run` is awaited."""
        self.max_stall = 0.0
        self.woke = time.monotonic()
        self.excused = 0.0
        self.collecting = False
        self.sources: Counter[str] = Counter()
        #: The longest collection since the reset, per generation, in seconds.
        self.gc_pauses: dict[int, float] = {}
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """gc.callbacks: time each collection that is not the probe's own."""
        if phase == "start":
            self._gc_started = time.monotonic()
        elif not self.collecting:
            generation = int(info["generation"])
            took = time.monotonic() - self._gc_started
            self.gc_pauses[generation] = max(self.gc_pauses.get(generation, 0.0), took)

    async def run(self) -> None:
        """Sleep 5 ms, measure how late the wake-up is, forever."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(PERIOD)
            self.woke = now = time.monotonic()
            late = now - before - PERIOD - self.excused
            self.excused = 0.0
            self.max_stall = max(self.max_stall, late)

    def reset(self) -> None:
        """Start a new maximum (and a new trace)."""
        self.max_stall = 0.0
        self.sources.clear()
        self.gc_pauses.clear()

    def watch(self, loop_thread: int) -> None:
        """The trace thread: sample the loop thread's stack while the loop is late."""
        while True:
            time.sleep(TRACE_EVERY)
            if time.monotonic() - self.woke - PERIOD > TRACE_AFTER and not (self.collecting or self.excused):
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-8:]
                    self.sources[
                        " > ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack)
                    ] += 1


def members(hass: HomeAssistant) -> int:
    """Member records of the loaded AutoAdd entry's registrar (0 without one)."""
    for entry in hass.config_entries.async_entries("autoadd"):
        if entry.state is ConfigEntryState.LOADED:
            devices: dict[str, Any] = entry.runtime_data.registrar.state.devices
            return sum(1 for record in devices.values() if record.is_member)
    return 0


class SensorCount:
    """The AutoAdd Connectivity entities that have a state, followed by their state changes (one registry
    lookup per change, rather than a scan of every state at every GET)."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Follow state changes from now on."""
        self.hass = hass
        self.entity_ids: set[str] = set()
        hass.bus.async_listen(EVENT_STATE_CHANGED, self._changed)

    @callback
    def _changed(self, event: Event[EventStateChangedData]) -> None:
        entity_id = event.data["entity_id"]
        if event.data["new_state"] is None:
            self.entity_ids.discard(entity_id)
            return
        if event.data["old_state"] is not None or not entity_id.startswith("binary_sensor."):
            return
        entry = er.async_get(self.hass).async_get(entity_id)
        if entry is not None and entry.platform == "autoadd" and entry.unique_id.endswith("_connectivity"):
            self.entity_ids.add(entity_id)


def rss_kib() -> int:
    """This process's resident set (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class ProbeView(HomeAssistantView):
    """GET the figures, POST to reset the maximum stall."""

    url = "/api/autoadd_bench_probe"
    name = "api:autoadd_bench_probe"

    def __init__(self, hass: HomeAssistant, probe: StallProbe, sensors: SensorCount) -> None:
        """Serve `probe`'s figures."""
        self.hass = hass
        self.probe = probe
        self.sensors = sensors
        self.profile: cProfile.Profile | None = None
        self.profiles = 0

    async def get(self, request: web.Request) -> web.Response:
        """The largest stall since the reset, the member count and (unless ?rss=0) the memory."""
        answer: dict[str, Any] = {
            "max_stall_ms": round(self.probe.max_stall * 1000, 3),
            "members": members(self.hass),
            "sensors": len(self.sensors.entity_ids),
            "rss_kib": None,
            "max_gc_ms": {str(g): round(s * 1000, 3) for g, s in sorted(self.probe.gc_pauses.items())},
            "cpu_seconds": round(time.process_time(), 3),
        }
        if request.query.get("rss") != "0":
            started = time.monotonic()
            self.probe.collecting = True  # the trace thread leaves this pause alone too
            gc.collect()
            answer["rss_kib"] = rss_kib()
            self.probe.excused += time.monotonic() - started
            self.probe.collecting = False
        if self.probe.sources:
            answer["stall_sources"] = [
                {"ms": count * TRACE_EVERY * 1000, "stack": stack}
                for stack, count in self.probe.sources.most_common(12)
            ]
        return self.json(answer)

    async def post(self, request: web.Request) -> web.Response:
        """Reset the maximum stall (and, when profiling, write the profile so far and start another)."""
        self.probe.reset()
        folder = os.environ.get(PROFILE_ENV)
        if folder:
            if self.profile is not None:
                self.profile.disable()
                self.profile.dump_stats(Path(folder) / f"probe-{os.getpid()}-{self.profiles}.prof")
                self.profiles += 1
            self.profile = cProfile.Profile()
            self.profile.enable()
        return self.json({"reset": True})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Start the probe and serve its view."""
    probe = StallProbe()
    gc.callbacks.append(probe.on_gc)
    hass.async_create_background_task(probe.run(), "autoadd_bench_probe stall probe")
    if os.environ.get(TRACE_ENV) == "1":
        threading.Thread(
            target=probe.watch, args=(threading.get_ident(),), name="autoadd_bench_probe", daemon=True
        ).start()
    hass.http.register_view(ProbeView(hass, probe, SensorCount(hass)))
    return True

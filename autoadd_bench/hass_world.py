"""What the Home Assistant figures run on: a real Home Assistant on loopback with the bench probe, a
manufacturer with devices invoiced to its home, one `autoadd-device` process, and stored records cloned.

Everything lives in the bench's work folder: `config` (Home Assistant), `vendor`, `devices`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import ipaddress
import json
import os
from pathlib import Path
import secrets
import socket
import sys
import time
from typing import Any

from autoadd_demo.__main__ import prepare_network, quiet_vendor
from autoadd_demo.hass import REPO, HomeAssistantClient, write_config
from autoadd_demo.network import VirtualNetwork

PROBE = Path(__file__).resolve().parent / "probe"
PROBE_PATH = "/api/autoadd_bench_probe"
REGISTRAR_STORE = Path(".storage") / "autoadd.registrar"


class BenchError(Exception):
    """A step of the Home Assistant bench failed; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_bench_config(config: Path, *, port: int, adapters: list[str]) -> None:
    """The demo's configuration, plus the probe (a symlink next to `autoadd`, enabled in YAML)."""
    write_config(config, port=port, adapters=adapters)
    link = config / "custom_components" / "autoadd_bench_probe"
    if not link.exists():
        link.symlink_to(PROBE, target_is_directory=True)
    # Home Assistant puts the config folder on sys.path only while it imports `custom_components`. The
    # repository is on sys.path too (PYTHONPATH, the working directory), so a namespace package would
    # then be recomputed to the repository's folder alone, which has no probe: a regular package stays.
    (config / "custom_components" / "__init__.py").touch()
    with (config / "configuration.yaml").open("a") as yaml:
        yaml.write("autoadd_bench_probe:\n")


def vendor(*args: str) -> str:
    """An autoadd-vendor command (the demo's quiet_vendor), failing with BenchError."""
    try:
        return quiet_vendor(*args)
    except SystemExit as err:
        raise BenchError(f"autoadd-vendor {args[0]} failed") from err


def make_devices(vendor_dir: Path, devices: Path, home_key: str, count: int) -> None:
    """A manufacturer with a device CA, `count` devices, each invoiced to `home_key`."""
    vendor("init", "--vendor", str(vendor_dir), "--name", "Acme", "--device-ca")
    vendor("provision", "--vendor", str(vendor_dir), "--out", str(devices), "--model", "Lamp 1",
           "--count", str(count))  # fmt: skip
    for folder in sorted(devices.iterdir()):
        vendor("invoice", "--vendor", str(vendor_dir), str(folder), "--home", home_key)


async def trust(client: HomeAssistantClient, entry_id: str, vendor_dir: Path) -> None:
    """Trust the manufacturer's root through the options flow (the demo's `trust`, for this folder)."""
    pem = (vendor_dir / "root.pem").read_text()
    await client.options_flow(entry_id, [{"next_step_id": "add_manufacturer"}, {"name": "Acme", "pem": pem}])


async def set_disabled(client: HomeAssistantClient, entry_id: str, *, disabled: bool) -> float:
    """Disable or enable the entry as the UI does; the seconds until Home Assistant answered."""
    async with client.websocket() as ws:
        started = time.perf_counter()
        await ws.send_json(
            {
                "id": 1,
                "type": "config_entries/disable",
                "entry_id": entry_id,
                "disabled_by": "user" if disabled else None,
            }
        )
        answer = await ws.receive_json()
        elapsed = time.perf_counter() - started
    if not answer.get("success"):
        raise BenchError(f"config_entries/disable refused: {answer.get('error')}")
    return elapsed


async def entry_state(client: HomeAssistantClient) -> str:
    """The AutoAdd entry's state ("loaded", "not_loaded"...)."""
    entries = await client.get("/api/config/config_entries/entry?domain=autoadd")
    return str(entries[0]["state"]) if entries else "missing"


async def probe(client: HomeAssistantClient, *, rss: bool = True) -> dict[str, Any]:
    """The probe's figures (the memory only when `rss`: it costs a full garbage collection)."""
    answer: dict[str, Any] = await client.get(PROBE_PATH if rss else PROBE_PATH + "?rss=0")
    return answer


async def reset_probe(client: HomeAssistantClient) -> None:
    """Start a new maximum stall."""
    await client.post(PROBE_PATH, {})


@dataclass
class Network:
    """Where the devices are (the demo's prepare_network): a virtual network, or loopback without one."""

    virtual: VirtualNetwork | None
    address: str
    adapters: list[str]

    @classmethod
    def prepare(cls) -> Network:
        """A namespace joined by a veth pair when the kernel allows it, else loopback with multicast.

        Loopback alone onboards nothing on Home Assistant 2026.2: its zeroconf leaves loopback
        addresses out of the interfaces it listens on, so it never hears the devices."""
        return cls(*prepare_network())

    def remove(self) -> None:
        """Remove the virtual network, if there is one."""
        if self.virtual is not None:
            self.virtual.remove()


class DeviceProcess:
    """One `python -m autoadd_device DEVICES --count N --address A` (inside the virtual network when there
    is one: `network`); its log in `log`."""

    def __init__(self, devices: Path, count: int, log: Path, network: Network) -> None:
        """Not started yet."""
        self.devices, self.count, self.log, self.network = devices, count, log, network
        self.process: asyncio.subprocess.Process | None = None

    def cpu_seconds(self) -> float:
        """CPU time the device process has used so far (Linux: /proc), 0 if it is not running."""
        if self.process is None or self.process.returncode is not None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    async def start(self, wait_seconds: float) -> float:
        """Start, and wait until every device serves and is announced; the seconds that took."""
        started = time.perf_counter()
        with self.log.open("ab") as log:
            # Each device listens on a port of its own choosing (no --port): no range to keep free.
            command = [sys.executable, "-m", "autoadd_device", str(self.devices.resolve()),
                       "--count", str(self.count), "--address", self.network.address]  # fmt: skip
            if self.network.virtual is not None:
                command = self.network.virtual.wrap(command)
            self.process = await asyncio.create_subprocess_exec(
                *command,
                cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=log, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        assert self.process.stdout is not None
        expected = f"autoadd-device: {self.count} device(s) running"
        try:
            async with asyncio.timeout(wait_seconds):
                while line := (await self.process.stdout.readline()).decode(errors="replace"):
                    if line.strip() == expected:
                        return time.perf_counter() - started
        except TimeoutError:
            raise BenchError(f"{self.count} devices were not running within {wait_seconds:.0f} s") from None
        raise BenchError(f"autoadd-device exited with {await self.process.wait()}; see {self.log}")

    async def stop(self) -> None:
        """SIGTERM (the devices withdraw their announcements), SIGKILL after 30 s."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def clone_records(config: Path, count: int, port: int) -> dict[str, Any]:
    """Replace the stored records by `count` clones of one onboarded record: fresh random device ids and
    serial numbers (as real devices have: a device's name, and so its entity ids, include its serial),
    each at its own 127.x.y.z host on `port` (where nothing listens), all else the same. Home Assistant
    must be stopped (its storage would otherwise keep and write back what it read).

    Unlike onboarded devices, the clones are not in Home Assistant's device registry: the entry's first
    set-up registers them. The records they replace leave the device and entity registries here, as they
    would have had they left the home (Home Assistant refuses enabled entities past 10,000 per entry, and
    the earlier phases' devices would count)."""
    path = config / REGISTRAR_STORE
    envelope = json.loads(path.read_text())
    records = envelope["data"]["devices"]
    model: dict[str, Any] | None = next((r for r in records.values() if r["phase"] == "onboarded"), None)
    if model is None:
        raise BenchError(f"no onboarded record in {path} to clone")
    clones: dict[str, Any] = {}
    hosts = ipaddress.ip_network("127.0.0.0/8").hosts()
    next(hosts)  # not 127.0.0.1, where the bench's own processes listen
    for index in range(count):
        device_id = secrets.token_hex(32)
        where = {"host": str(next(hosts)), "port": port}
        serial = f"{model.get('serial_number') or 'SN'}-{index}"
        clones[device_id] = {
            **model,
            "device_id": device_id,
            "serial_number": serial,
            "address": where,
            "hint": dict(where),
        }
    envelope["data"]["devices"] = clones
    _write(path, envelope)
    _forget_devices(config, set(records))
    return model


def _write(path: Path, envelope: dict[str, Any]) -> None:
    staging = path.with_suffix(".bench")
    staging.write_text(json.dumps(envelope))
    staging.replace(path)


def _forget_devices(config: Path, device_ids: set[str]) -> None:
    """Take these AutoAdd devices, and their entities, out of Home Assistant's registries (stopped)."""
    devices_path, entities_path = (
        config / ".storage" / "core.device_registry",
        config / ".storage" / "core.entity_registry",
    )
    if not devices_path.exists():
        return
    devices = json.loads(devices_path.read_text())
    gone = {
        device["id"]
        for device in devices["data"]["devices"]
        if any(domain == "autoadd" and key in device_ids for domain, key in device["identifiers"])
    }
    devices["data"]["devices"] = [d for d in devices["data"]["devices"] if d["id"] not in gone]
    _write(devices_path, devices)
    if entities_path.exists():
        entities = json.loads(entities_path.read_text())
        entities["data"]["entities"] = [
            e for e in entities["data"]["entities"] if e.get("device_id") not in gone
        ]
        _write(entities_path, entities)

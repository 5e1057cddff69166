"""Two real Home Assistants and real devices on a virtual network: discovery by HA's own zeroconf,
onboarding, and a hand-over from one home to the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import contextlib
import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from autoadd_demo.hass import REPO, HomeAssistantClient
from autoadd_demo.network import VirtualNetwork
from autoadd_vendor.cli import main as vendor
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import generate_private_key

from .conftest import StartHass


def run_vendor(*args: str) -> None:
    assert vendor(list(args)) == 0


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll a real process's state until `check` holds; fail naming `what` after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


async def set_up(client: HomeAssistantClient, root_pem: str) -> tuple[str, str]:
    """AutoAdd through its config flow, then trust the manufacturer; returns (entry id, home key string)."""
    results = await client.config_flow(
        "autoadd", [{"home_name": "Home", "key_type": "ed25519", "make_recovery_key": False}, {}]
    )
    entry_id = results[-1]["result"]["entry_id"]
    await client.options_flow(entry_id, [{"next_step_id": "add_manufacturer"}, {"pem": root_pem}])
    return entry_id, results[1]["description_placeholders"]["home_key"]


@pytest.fixture
async def device_process(
    network: VirtualNetwork, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Start the devices under tmp_path/devices inside the namespace (extra command-line options allowed)."""
    processes: list[asyncio.subprocess.Process] = []

    async def start(*options: str) -> None:
        command = network.wrap(
            [
                sys.executable,
                "-m",
                "autoadd_device",
                str(tmp_path / "devices"),
                "--address",
                network.device_address,
                *options,
            ]
        )
        processes.append(
            await asyncio.create_subprocess_exec(
                *command,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=(tmp_path / "devices.log").open("ab"),
                stderr=asyncio.subprocess.STDOUT,
            )
        )

    yield start
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 20)


async def test_discovered_onboarded_and_handed_over(
    start_hass: StartHass, device_process: Callable[..., Awaitable[None]], tmp_path: Path
) -> None:
    """HA A adds two devices it discovers itself; A hands one to HA B, whose owner approves it."""
    home_a, home_b = await asyncio.gather(start_hass("home-a"), start_hass("home-b"))
    run_vendor("init", "--vendor", str(tmp_path / "acme"), "--name", "Acme", "--device-ca")
    root_pem = (tmp_path / "acme" / "root.pem").read_text()
    (entry_a, key_a), (entry_b, key_b) = await asyncio.gather(
        set_up(home_a, root_pem), set_up(home_b, root_pem)
    )
    run_vendor(
        "provision",
        "--vendor",
        str(tmp_path / "acme"),
        "--out",
        str(tmp_path / "devices"),
        "--model",
        "Lamp 1",
        "--count",
        "2",
    )
    for serial in ("SN0001", "SN0002"):
        run_vendor(
            "invoice", "--vendor", str(tmp_path / "acme"), str(tmp_path / "devices" / serial), "--home", key_a
        )
    await device_process()

    async def a_has_both() -> bool:
        return len((await home_a.diagnostics(entry_a))["devices"]) == 2

    await until(a_has_both, 90, "home A to onboard both devices")
    devices = (await home_a.diagnostics(entry_a))["devices"]
    moving = next(device for device in devices if device["model"] == "Lamp 1")["device_id"]

    # A hands one device to B through the options flow, as its owner would in the UI.
    results = await home_a.options_flow(
        entry_a,
        [{"next_step_id": "hand_over"}, {"device": moving, "new_owner": key_b}, {"confirm": True}],
    )
    assert results[-1]["reason"] == "handed_over"  # the device took it at once

    async def b_asks() -> bool:
        issues = await home_b.repair_issues()
        return any(issue["issue_id"] == f"approve_{moving}" for issue in issues)

    await until(b_asks, 60, "home B to ask its owner about the handed-over device")
    await home_b.repair_fix(f"approve_{moving}", "accept")

    async def b_has_it() -> bool:
        return [d["device_id"] for d in (await home_b.diagnostics(entry_b))["devices"]] == [moving]

    await until(b_has_it, 60, "home B to onboard the device")
    after_a = await home_a.diagnostics(entry_a)
    assert moving not in [device["device_id"] for device in after_a["devices"]]
    assert [event["event"] for event in after_a["history"][moving]][-1] == "handed_over"


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"ip {' '.join(args)}: {result.stderr.strip()}")


@pytest.fixture
def avahi(network: VirtualNetwork) -> Iterator[str]:
    """avahi-daemon in a namespace of its own, linked to the devices' namespace; returns that namespace.

    avahi binds the mDNS port exclusively, so it cannot share a namespace with the devices or with Home
    Assistant; a system D-Bus is started for it if none runs."""
    for tool in ("avahi-browse", "avahi-daemon", "dbus-daemon", "dbus-send"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: avahi-utils, avahi-daemon, dbus)")
    observer, here, there = f"{network.name}-avahi", f"{network.ns_if}a", f"{network.ns_if}b"
    subprocess.run(["ip", "netns", "del", observer], capture_output=True, check=False)
    _ip("netns", "add", observer)
    try:
        yield from _avahi_in(network, observer, here, there)
    finally:  # a skip half-way must not leave the namespace behind
        subprocess.run(["ip", "netns", "del", observer], check=False, capture_output=True)


#: The system D-Bus, which avahi-daemon needs, and the file naming its process.
BUS_SOCKET = Path("/run/dbus/system_bus_socket")
BUS_PID = Path("/run/dbus/pid")


def _bus_answers() -> bool:
    """Whether a system bus answers on its socket (the file alone may be a stopped bus's)."""
    ask = ["dbus-send", "--system", "--print-reply", "--reply-timeout=5000", "--dest=org.freedesktop.DBus"]
    asked = subprocess.run([*ask, "/", "org.freedesktop.DBus.GetId"], check=False, capture_output=True)
    return BUS_SOCKET.exists() and asked.returncode == 0


def _bus_running() -> bool:
    """Whether the process the bus's pid file names is alive (it may be slow to answer, not gone)."""
    try:
        os.kill(int(BUS_PID.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _start_bus() -> bool:
    """Start a system bus unless one runs; True if this started it. What a stopped one left behind (its
    socket, its pid file) goes first, or the new one would not start."""
    if _bus_answers():
        return False
    if _bus_running():
        pytest.skip("the system D-Bus runs but does not answer")
    BUS_SOCKET.unlink(missing_ok=True)
    BUS_PID.unlink(missing_ok=True)
    BUS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["dbus-daemon", "--system", "--fork"], check=False).returncode != 0:
        pytest.skip("no system D-Bus could be started for avahi")
    return True


def _avahi_in(network: VirtualNetwork, observer: str, here: str, there: str) -> Iterator[str]:
    _ip("link", "add", here, "netns", network.name, "type", "veth", "peer", "name", there, "netns", observer)
    _ip("-n", network.name, "addr", "add", f"10.214.{network.subnet}.1/24", "dev", here)
    _ip("-n", network.name, "link", "set", here, "up", "multicast", "on")
    _ip("-n", observer, "addr", "add", f"10.214.{network.subnet}.2/24", "dev", there)
    _ip("-n", observer, "link", "set", there, "up", "multicast", "on")
    _ip("-n", observer, "link", "set", "lo", "up")
    started_bus = _start_bus()
    in_observer = ["ip", "netns", "exec", observer]
    daemon = subprocess.run(
        [*in_observer, "avahi-daemon", "--no-drop-root", "--no-chroot", "--daemonize"],
        check=False,
        capture_output=True,
    )
    if daemon.returncode != 0:
        pytest.skip(f"avahi-daemon does not start here: {daemon.stderr.decode().strip()}")
    yield observer
    subprocess.run([*in_observer, "avahi-daemon", "--kill"], check=False, capture_output=True)
    if started_bus:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(BUS_PID.read_text()), 15)
        BUS_PID.unlink(missing_ok=True)
        BUS_SOCKET.unlink(missing_ok=True)


async def test_devices_are_visible_to_a_foreign_mdns_browser(
    network: VirtualNetwork, avahi: str, device_process: Callable[..., Awaitable[None]], tmp_path: Path
) -> None:
    """avahi, another mDNS implementation, sees the devices with the documented TXT keys."""
    run_vendor("init", "--vendor", str(tmp_path / "acme"), "--name", "Acme")
    run_vendor(
        "provision",
        "--vendor",
        str(tmp_path / "acme"),
        "--out",
        str(tmp_path / "devices"),
        "--model",
        "Lamp 1",
        "--count",
        "2",
    )
    home_key = format_home_key(generate_private_key().public_key())
    for serial in ("SN0001", "SN0002"):
        run_vendor(
            "invoice",
            "--vendor",
            str(tmp_path / "acme"),
            str(tmp_path / "devices" / serial),
            "--home",
            home_key,
        )
    # The devices also listen, and announce themselves, on the observer's link.
    await device_process("--address", f"10.214.{network.subnet}.1", "--interface", "all")
    found: dict[str, dict[str, str]] = {}

    async def both_seen() -> bool:
        browse = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            avahi,
            "avahi-browse",
            "--parsable",
            "--resolve",
            "--terminate",
            "_autoadd._tcp",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await browse.communicate()
        found.update(_parse_avahi(out.decode()))
        return len(found) == 2

    await until(both_seen, 60, "avahi-browse to resolve both devices")
    for txt in found.values():
        assert txt["v"] == "1"
        assert len(txt["id"]) == 64
        assert txt["mf"] == "Acme"
        assert txt["md"] == "Lamp 1"
        assert txt["st"] == "unclaimed"
        assert len(txt["hd"]) == 16
        assert txt["path"] == "/autoadd/v1"
        assert txt["sv"].isdigit()


def _parse_avahi(text: str) -> dict[str, dict[str, str]]:
    """Resolved records ('=' lines) of `avahi-browse --parsable`: name to TXT map."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = line.split(";")
        if fields[0] != "=" or len(fields) < 10:
            continue
        txt: dict[str, str] = {}
        for item in fields[9].split('" "'):
            key, _, value = item.strip('"').partition("=")
            txt[key] = value
        found[fields[3]] = txt
    return found

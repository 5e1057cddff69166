"""scripts/demo: a real Home Assistant adds real AutoAdd devices by itself, over real mDNS.

    scripts/demo               run the scenario, then keep Home Assistant running until Ctrl-C
    scripts/demo --headless    run the scenario and exit 0 when every outcome is as expected

The scenario: the home is set up with a recovery key. A manufacturer (made with autoadd-vendor) ships three
devices invoiced to the demo home, one device handed over to the demo home by a second home (approved by
the owner), one device whose invoice is forged (signed under a root that copies the trusted
manufacturer's name), one device sold with no owner, which the owner claims with the code printed on
it, and one device from a second manufacturer the home does not trust yet, whose root the owner
approves when asked. Then that Home Assistant is lost with no backup: a new one restores the
home from the recovery key, and every device comes back. Everything the demo starts is stopped, and
everything it creates is under the git-ignored demo/ folder, removed at the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp

from autoadd_device.device import DeviceState
from autoadd_device.files import STATE, write_atomic
from autoadd_vendor.cli import main as vendor
from custom_components.autoadd.protocol.chain import decode_chain, issue_link, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.home_key import parse_home_keys
from custom_components.autoadd.protocol.keys import private_key_from_pem

from .hass import REPO, HomeAssistantClient, HomeAssistantError, HomeAssistantProcess, write_config
from .network import VirtualNetwork

DEMO = REPO / "demo"
FIRST_PORT = 8400
CLAIMED = "claimed with its code, then onboarded"


def say(text: str) -> None:
    """One timeline line."""
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


def quiet_vendor(*args: str) -> str:
    """Run an autoadd-vendor command, returning what it printed (its errors stop the demo)."""
    import io  # noqa: PLC0415

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = vendor(list(args))
    if code:
        raise SystemExit(f"demo: autoadd-vendor {' '.join(args)} failed")
    return out.getvalue().strip()


async def lost_and_restored(
    hass: HomeAssistantProcess,
    session: aiohttp.ClientSession,
    password: str,
    args: argparse.Namespace,
    recovery: str,
) -> tuple[HomeAssistantProcess, HomeAssistantClient]:
    """The Home Assistant is lost with no backup: a new one (its own configuration, nothing carried
    over) is set up by restoring the home from its recovery key, and trusts Acme again."""
    say("Home Assistant is lost, with no backup; a new one is set up from the printed recovery key")
    await hass.stop()
    config = DEMO / "config-new"
    write_config(config, port=args.port, adapters=hass.adapters)
    new = HomeAssistantProcess(config, args.port, allow_loopback=hass.allow_loopback, adapters=hass.adapters)
    await new.start()
    client = await HomeAssistantClient.onboard(session, new.url, "demo", password)
    results = await client.config_flow(
        "autoadd",
        [{"home_name": "Demo home", "key_type": "ed25519", "restore": True}, {"recovery_key": recovery}, {}],
    )
    say(f"restored: the new home key string is {results[2]['description_placeholders']['home_key']}")
    await trust(client, results[-1]["result"]["entry_id"])
    return new, client


def make_devices(home_key: str) -> dict[str, str]:
    """Manufacturers, devices and invoices; returns the expected outcome per serial number."""
    vendors, devices = DEMO / "vendor", DEMO / "devices"
    quiet_vendor("init", "--vendor", str(vendors / "acme"), "--name", "Acme", "--device-ca")
    quiet_vendor("init", "--vendor", str(vendors / "mallory"), "--name", "Acme")  # same name, another root
    quiet_vendor(
        "provision",
        "--vendor",
        str(vendors / "acme"),
        "--out",
        str(devices),
        "--model",
        "Lamp 1",
        "--count",
        "6",
    )
    second_home = quiet_vendor("home-key", "--out", str(DEMO / "second-home.key"))
    expected: dict[str, str] = {}
    for serial in ("SN0001", "SN0002", "SN0003"):
        quiet_vendor("invoice", "--vendor", str(vendors / "acme"), str(devices / serial), "--home", home_key)
        expected[serial] = "onboarded"
    # SN0004 was sold to a second home, which handed it over to the demo home.
    quiet_vendor("invoice", "--vendor", str(vendors / "acme"), str(devices / "SN0004"), "--home", second_home)
    links = decode_chain((devices / "SN0004" / "invoice.cbor").read_bytes())
    head = verify_chain(links, roots=None, now=dt.datetime.now(dt.UTC)).head
    seller = private_key_from_pem((DEMO / "second-home.key").read_bytes())
    handover = issue_link(
        signer=seller,
        head=head,
        owners=list(parse_home_keys(home_key)),
        reason=LinkReason.HANDOVER,
        issued_at=int(time.time()),
    )
    write_atomic(devices / "SN0004" / STATE, DeviceState(chain=(*links, handover)).encode(), mode=0o600)
    expected["SN0004"] = "approval, then onboarded"
    # SN0005's invoice is forged: signed under a root with Acme's exact name that Acme never made (a
    # counterfeit: the owner is told in a repair issue).
    quiet_vendor("invoice", "--vendor", str(vendors / "mallory"), str(devices / "SN0005"), "--home", home_key)
    expected["SN0005"] = "refused: wrong_manufacturer_root"
    # SN0006 is unassigned stock: no owner in its invoice, a claim code printed on it.
    (DEMO / "labels").mkdir()
    quiet_vendor(
        "invoice", "--vendor", str(vendors / "acme"), str(devices / "SN0006"), "--unassigned",
        "--label", str(DEMO / "labels" / "SN0006.svg"),
    )  # fmt: skip
    expected["SN0006"] = CLAIMED
    # GX0001 comes from Globex, which the home does not trust: it offers its root, the owner approves it.
    quiet_vendor("init", "--vendor", str(vendors / "globex"), "--name", "Globex")
    quiet_vendor(
        "provision", "--vendor", str(vendors / "globex"), "--out", str(devices), "--model", "Plug 2",
        "--serial-prefix", "GX",
    )  # fmt: skip
    quiet_vendor("invoice", "--vendor", str(vendors / "globex"), str(devices / "GX0001"), "--home", home_key)
    expected["GX0001"] = "manufacturer approved, then onboarded"
    return expected


def typed_back(form: dict[str, Any]) -> dict[str, Any]:
    """What the owner types on the recovery key's page: its last group, from what they wrote down."""
    return {"confirm_characters": form["description_placeholders"]["recovery_key"][-5:]}


async def set_up_registrar(client: HomeAssistantClient) -> tuple[str, str, str]:
    """The AutoAdd config flow as the UI runs it, making a recovery key. Returns (entry id, home key
    string, recovery key string)."""
    results = await client.config_flow(
        "autoadd", [{"home_name": "Demo home", "key_type": "ed25519"}, typed_back, {}]
    )
    recovery = results[1]["description_placeholders"]["recovery_key"]
    home_key = results[2]["description_placeholders"]["home_key"]
    entry_id = results[-1]["result"]["entry_id"]
    return entry_id, home_key, recovery


async def trust(client: HomeAssistantClient, entry_id: str) -> None:
    """Trust Acme's root through the options flow."""
    pem = (DEMO / "vendor" / "acme" / "root.pem").read_text()
    await client.options_flow(entry_id, [{"next_step_id": "add_manufacturer"}, {"name": "Acme", "pem": pem}])


def observed(
    diagnostics: dict[str, Any],
    serial_of: dict[str, str],
    decided: tuple[set[str], set[str]],
    *,
    added: str = "onboarded",
) -> dict[str, str]:
    """What Home Assistant reports per serial number (`decided`: devices whose manufacturer waited for
    the owner, and devices the owner claimed with their code; `added`: the word for a device this home
    holds, "restored" after a restore)."""
    asked, claimed = decided
    states: dict[str, str] = {}
    for refusal in diagnostics["refused"]:
        states[serial_of.get(refusal["device_id"], refusal["device_id"][:8])] = f"refused: {refusal['code']}"
    for waiting in diagnostics["awaiting_approval"]:
        states[waiting["serial_number"]] = "approval waiting"
    for device in diagnostics["devices"]:
        serial = serial_of.get(device["device_id"], device["device_id"][:8])
        events = [event["event"] for event in diagnostics["history"].get(device["device_id"], [])]
        if device["device_id"] in asked:
            states[serial] = f"manufacturer approved, then {added}"
        elif device["device_id"] in claimed:
            states[serial] = f"claimed with its code, then {added}"
        else:
            states[serial] = f"approval, then {added}" if "approved" in events else added
    return states


def serials() -> dict[str, str]:
    """Device id (hex) to serial number, from the device directories' certificates."""
    from autoadd_device.files import load_identity  # noqa: PLC0415
    from custom_components.autoadd.protocol.idevid import device_id_for  # noqa: PLC0415

    mapping = {}
    for folder in sorted(p for p in (DEMO / "devices").iterdir() if p.is_dir()):
        identity = load_identity(folder)
        mapping[device_id_for(identity.key.public_key()).hex()] = folder.name
    return mapping


async def watch(
    client: HomeAssistantClient,
    entry_id: str,
    expected: dict[str, str],
    wait_seconds: float,
    added: str = "onboarded",
) -> dict[str, str]:
    """Follow Home Assistant until every device has its expected outcome (or time runs out), deciding
    what its owner is asked as the owner would."""
    serial_of = serials()
    seen: dict[str, str] = {}
    approved: set[str] = set()
    asked: set[str] = set()
    claimed: set[str] = set()
    trusted: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while loop.time() < deadline:
        diagnostics = await client.diagnostics(entry_id)
        asked |= {r["device_id"] for r in diagnostics["refused"] if r["code"] == "unknown_manufacturer"}
        now = observed(diagnostics, serial_of, (asked, claimed), added=added)
        for serial, state in sorted(now.items()):
            if seen.get(serial) != state:
                say(f"Home Assistant: {serial} {state}")
        seen = now
        for waiting in diagnostics["awaiting_approval"]:
            if waiting["device_id"] not in approved:
                approved.add(waiting["device_id"])
                previous = waiting["previous_owner"]  # diagnostics give it as every screen shows it (§2.3)
                say(f"owner approves {waiting['serial_number']} (handed over by the home {previous})")
                await client.repair_fix(f"approve_{waiting['device_id']}", "accept")
        for refusal in diagnostics["refused"]:
            if refusal["code"] == "unassigned" and refusal["device_id"] not in claimed:
                claimed.add(refusal["device_id"])
                serial = serial_of[refusal["device_id"]]
                code = (DEMO / "devices" / serial / "claim_code").read_text().strip()  # the box's label
                say(f"owner types the claim code printed on {serial}: {code}")
                await client.repair_fix(f"claim_{refusal['device_id']}", {"claim_code": code})
        for fingerprint, waiting in diagnostics["manufacturers_waiting_for_approval"].items():
            if fingerprint not in trusted:
                trusted.add(fingerprint)
                say(f"owner trusts the new manufacturer {waiting['name']} (root {fingerprint})")
                issues = [i["issue_id"] for i in await client.repair_issues() if i["domain"] == "autoadd"]
                for issue_id in (i for i in issues if i.startswith("manufacturer_")):
                    await client.repair_fix(issue_id, "approve")
        if all(seen.get(serial) == outcome for serial, outcome in expected.items()):
            break
        await asyncio.sleep(1)
    return seen


def summary(expected: dict[str, str], seen: dict[str, str]) -> bool:
    """Print the table; True when every outcome is as expected."""
    print(f"\n  device  {'expected':<38} {'observed':<38} ok")
    ok = True
    for serial, outcome in expected.items():
        got = seen.get(serial, "nothing yet")
        good = got == outcome
        ok &= good
        print(f"  {serial}  {outcome:<38} {got:<38} {'yes' if good else 'NO'}")
    print()
    return ok


async def follow_device_log(process: asyncio.subprocess.Process) -> None:
    """Device log lines, into the timeline."""
    assert process.stdout is not None
    async for raw in process.stdout:
        line = raw.decode(errors="replace").strip()
        if " [" in line and any(word in line for word in ("refused", "accepted", "answered", "claim")):
            say("device " + line.split(" INFO ", 1)[-1])


def prepare_network() -> tuple[VirtualNetwork | None, str, list[str]]:
    """A namespace for the devices when the kernel allows it, else loopback with multicast."""
    try:
        network = VirtualNetwork.create(os.getpid() % 10000)
    except OSError as err:
        say(f"no network namespace ({err}); devices on loopback with multicast")
        subprocess.run(["ip", "link", "set", "lo", "multicast", "on"], check=False)  # noqa: S607
        return None, "127.0.0.1", ["lo"]
    say(f"virtual network {network.name}: HA on {network.host_if}, devices on {network.device_address}")
    return network, network.device_address, [network.host_if]


async def run(
    args: argparse.Namespace, network: VirtualNetwork | None, address: str, adapters: list[str]
) -> int:
    """The whole demo."""
    hass = HomeAssistantProcess(DEMO / "config", args.port, allow_loopback=network is None, adapters=adapters)
    devices: asyncio.subprocess.Process | None = None
    try:
        write_config(DEMO / "config", port=args.port, adapters=adapters)
        say("starting Home Assistant (the first run installs its frontend: a few minutes)")
        await hass.start()
        password = secrets.token_urlsafe(9)
        async with aiohttp.ClientSession() as session:
            client = await HomeAssistantClient.onboard(session, hass.url, "demo", password)
            say(f"Home Assistant is up at {hass.url} (user demo, password {password})")
            entry_id, home_key, recovery = await set_up_registrar(client)
            say(f"AutoAdd set up with a recovery key; the home key string is {home_key}")
            expected = make_devices(home_key)
            await trust(client, entry_id)
            say("Acme's root is trusted; provisioned 6 Acme devices and 1 Globex device with autoadd-vendor")
            command = [
                sys.executable,
                "-m",
                "autoadd_device",
                str(DEMO / "devices"),
                "--address",
                address,
                "--port",
                str(FIRST_PORT),
            ]
            if network is not None:
                command = network.wrap(command)
            devices = await asyncio.create_subprocess_exec(
                *command,
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            log_task = asyncio.create_task(follow_device_log(devices))
            say("devices switched on: they announce _autoadd._tcp.local. over mDNS")
            seen = await watch(client, entry_id, expected, args.timeout)
            ok = summary(expected, seen)
            if ok:
                hass, client = await lost_and_restored(hass, session, password, args, recovery)
                entry_id = (await client.get("/api/config/config_entries/entry?domain=autoadd"))[0][
                    "entry_id"
                ]
                # A device this home took in from another party's link (a hand-over) is asked about
                # again: the new Home Assistant can't tell that link from a stranger's. So is a claimed
                # one: its claim link names the lost home key first, which the new one never had.
                restored = {
                    serial: "approval, then restored"
                    if outcome == CLAIMED
                    else outcome.replace("onboarded", "restored")
                    for serial, outcome in expected.items()
                }
                seen = await watch(client, entry_id, restored, args.timeout, added="restored")
                ok = summary(restored, seen)
                await client.options_flow(entry_id, [{"next_step_id": "finish_restore"}, {"confirm": True}])
                say("owner finishes the restore: Home Assistant forgets the recovery key")
            if not args.headless:
                print(f"Home Assistant keeps running at {hass.url} (user demo, password {password}).")
                print("Ctrl-C stops everything.")
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await stop.wait()
            log_task.cancel()
            return 0 if ok else 1
    except HomeAssistantError as err:
        say(f"demo failed: {err}")
        return 2
    finally:
        say("stopping everything the demo started")
        if devices is not None and devices.returncode is None:
            devices.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(devices.wait(), 20)
        await hass.stop()


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--headless", action="store_true", help="run the scenario and exit with its status")
    parser.add_argument(
        "--port", type=int, default=8123, help="Home Assistant's port on 127.0.0.1 (default 8123)"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the outcomes (default 180)"
    )
    args = parser.parse_args()
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    network, address, adapters = prepare_network()
    try:
        return asyncio.run(run(args, network, address, adapters))
    finally:
        if network is not None:
            network.remove()


if __name__ == "__main__":
    sys.exit(main())

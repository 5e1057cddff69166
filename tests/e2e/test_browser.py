"""The real Home Assistant frontend in headless Chromium: set AutoAdd up, see the home key and its QR code,
approve a handed-over device, decide about a cloned one, and start a hand-over. Screenshots go to
screenshots/ (git-ignored)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import datetime as dt
import os
from pathlib import Path
import shutil
import sys
import time

import pytest

from autoadd_demo.hass import REPO, HomeAssistantClient
from autoadd_demo.network import VirtualNetwork
from autoadd_device.device import DeviceState
from autoadd_device.files import STATE, write_atomic
from autoadd_vendor.cli import main as vendor
from custom_components.autoadd.protocol.chain import decode_chain, issue_link, verify_chain
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_key
from custom_components.autoadd.protocol.keys import generate_private_key

from .conftest import StartHass

pytest.importorskip("playwright.async_api", reason="Playwright is not installed")
from playwright.async_api import Page, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "screenshots"
USER, PASSWORD = "owner", "e2e-password-1"
#: No DNS at all but localhost, so the frontend's requests for brand icons never leave the machine.
CHROMIUM_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def poll(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Wait for a real process's state; fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; the test is skipped where it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it when run as root)")
    SHOTS.mkdir(exist_ok=True)
    return CHROMIUM


@pytest.fixture
async def page(chromium: str) -> AsyncIterator[Page]:
    """A Chromium page with no DNS beyond localhost."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        yield await context.new_page()
        await browser.close()


def make_devices(folder: Path, home_key: str) -> None:
    """A manufacturer; SN0001 invoiced to this home, SN0002 sold to another home that handed it over."""
    assert vendor(["init", "--vendor", str(folder / "acme"), "--name", "Acme"]) == 0
    assert (
        vendor(
            [
                "provision",
                "--vendor",
                str(folder / "acme"),
                "--out",
                str(folder / "devices"),
                "--model",
                "Lamp 1",
                "--count",
                "2",
            ]
        )
        == 0
    )
    seller = generate_private_key()
    assert (
        vendor(
            [
                "invoice",
                "--vendor",
                str(folder / "acme"),
                str(folder / "devices" / "SN0001"),
                "--home",
                home_key,
            ]
        )
        == 0
    )
    assert (
        vendor(
            [
                "invoice",
                "--vendor",
                str(folder / "acme"),
                str(folder / "devices" / "SN0002"),
                "--home",
                format_home_key(seller.public_key()),
            ]
        )
        == 0
    )
    device = folder / "devices" / "SN0002"
    links = decode_chain((device / "invoice.cbor").read_bytes())
    head = verify_chain(links, roots=None, now=dt.datetime.now(dt.UTC)).head
    link = issue_link(
        signer=seller,
        head=head,
        owners=[parse_home_key(home_key)],
        reason=LinkReason.HANDOVER,
        issued_at=int(time.time()),
    )
    write_atomic(device / STATE, DeviceState(chain=(*links, link)).encode(), mode=0o600)


async def shot(page: Page, name: str) -> None:
    """A screenshot once the page's fonts are in: text set in a font still loading is drawn invisible."""
    await page.evaluate("document.fonts.ready.then(() => true)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def test_owner_journey_in_the_real_frontend(
    start_hass: StartHass, network: VirtualNetwork, page: Page, tmp_path: Path
) -> None:
    """Log in, set AutoAdd up, see the key and QR code, approve a device, decide about a cloned one, start
    a hand-over."""
    client: HomeAssistantClient = await start_hass("home")
    url = client.url

    # Log in as the owner.
    await page.goto(url + "/")
    await page.get_by_role("textbox", name="Username").fill(USER)
    await page.get_by_role("textbox", name="Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_text("Settings").first.wait_for(timeout=60000)
    await shot(page, "01-logged-in")

    # Set AutoAdd up through its config flow, as in Settings > Add integration.
    await page.goto(url + "/config/integrations/dashboard/add?domain=autoadd")
    await page.get_by_role("button", name="OK").click()
    await page.get_by_text("Set up AutoAdd").first.wait_for(timeout=30000)
    await shot(page, "02-setup")
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text("Give this to the shop").wait_for(timeout=30000)
    qr = page.locator("img[src*='home_key_qr.svg']")
    await qr.wait_for(timeout=30000)
    await poll(lambda: qr.evaluate("img => img.complete && img.naturalWidth > 0"), 20, "the QR code to load")
    home_key = (await page.get_by_text("AAHK1-").first.inner_text()).strip()
    parse_home_key(home_key)
    await shot(page, "03-home-key-and-qr")
    await page.get_by_role("button", name="Submit").click()

    entries = await client.get("/api/config/config_entries/entry?domain=autoadd")
    entry_id = entries[0]["entry_id"]
    make_devices(tmp_path, home_key)
    pem = (tmp_path / "acme" / "root.pem").read_text()
    await client.options_flow(entry_id, [{"next_step_id": "add_manufacturer"}, {"pem": pem}])
    devices = await asyncio.create_subprocess_exec(
        *network.wrap(
            [
                sys.executable,
                "-m",
                "autoadd_device",
                str(tmp_path / "devices"),
                "--address",
                network.device_address,
            ]
        ),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:

        async def one_added_one_waiting() -> bool:
            diagnostics = await client.diagnostics(entry_id)
            return len(diagnostics["devices"]) == 1 and len(diagnostics["awaiting_approval"]) == 1

        await poll(one_added_one_waiting, 90, "one device added and one waiting for approval")

        # Approve the handed-over device in Settings > Repairs.
        await page.goto(url + "/config/repairs")
        await page.get_by_text("A device was handed to this home").click()
        await page.get_by_text("Accept the device").wait_for(timeout=30000)
        # The owner decides on what the description says: who handed the device over (its fingerprint).
        await page.get_by_text("was handed to this home by the home with fingerprint").wait_for(timeout=30000)
        await shot(page, "04-approval")
        await page.get_by_text("Accept the device").click()

        async def both_added() -> bool:
            return len((await client.diagnostics(entry_id))["devices"]) == 2

        await poll(both_added, 60, "the approved device to be added")
        await shot(page, "05-approved")

        # A copy of SN0002's identity (key included) switched on next to it: Home Assistant keeps the
        # device where it proved itself first and asks in Settings > Repairs.
        shutil.copytree(tmp_path / "devices" / "SN0002", tmp_path / "clone" / "SN0002")
        clone = await asyncio.create_subprocess_exec(
            *network.wrap(
                [
                    sys.executable,
                    "-m",
                    "autoadd_device",
                    str(tmp_path / "clone"),
                    "--address",
                    network.device_address,
                ]
            ),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:

            async def clone_reported() -> bool:
                return any(i["issue_id"].startswith("clone_") for i in await client.repair_issues())

            await poll(clone_reported, 90, "the cloned identity to be reported")
            await page.goto(url + "/config/repairs")
            await page.get_by_text("answers from two places at once").first.click()
            await page.get_by_text("Keep talking to it at the first address").wait_for(timeout=30000)
            await page.get_by_text("proved its identity at").wait_for(timeout=30000)
            await shot(page, "06-clone")
            await page.get_by_text("Keep talking to it at the first address").click()

            async def clone_decided() -> bool:
                return not any(i["issue_id"].startswith("clone_") for i in await client.repair_issues())

            await poll(clone_decided, 30, "the decision to close the repair")
        finally:
            clone.terminate()
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(clone.wait(), 20)

        # Start a hand-over of SN0001 from the options flow.
        buyer = format_home_key(generate_private_key().public_key())
        await page.goto(url + "/config/integrations/integration/autoadd")
        await page.get_by_role("button", name="Configure").first.click()
        await page.get_by_text("Hand a device over to a new owner").click()
        await page.get_by_text("Acme Lamp 1 SN0001").click()
        await page.get_by_role("textbox", name="New owner's home key string").fill(buyer)
        await page.get_by_role("button", name="Submit").click()
        await page.get_by_text("Confirm the hand-over").first.wait_for(timeout=30000)
        await shot(page, "07-hand-over-confirm")
        await page.get_by_role("button", name="Submit").click()
        await page.get_by_text("Hand-over signed").first.wait_for(timeout=30000)
        await shot(page, "08-hand-over-done")
        assert await page.get_by_text("Device took it already: yes").count() == 1
    finally:
        devices.terminate()
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            await asyncio.wait_for(devices.wait(), 20)

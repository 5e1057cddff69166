"""The README's main command: `scripts/demo --headless` runs its whole scenario and exits 0."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from autoadd_demo.hass import REPO
from autoadd_demo.network import VirtualNetwork

from .conftest import free_port


@pytest.mark.usefixtures("socket_enabled")
async def test_demo_headless_scenario_succeeds() -> None:
    """Real Home Assistant, seven devices over mDNS (one claimed with its code): every outcome in the
    summary is as expected, before and after the restore."""
    try:
        VirtualNetwork.create(os.getpid() % 10000 + 1).remove()
    except OSError as err:
        pytest.skip(f"no network namespace here: {err}")
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autoadd_demo",
        "--headless",
        "--port",
        str(free_port()),
        "--timeout",
        "120",
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(demo.communicate(), 600)
    text = out.decode()
    assert demo.returncode == 0, text
    for serial in ("SN0001", "SN0002", "SN0003", "SN0004", "SN0005", "SN0006", "GX0001"):
        assert any(
            line.strip().startswith(serial) and line.rstrip().endswith("yes") for line in text.splitlines()
        )
    assert "stopping everything the demo started" in text

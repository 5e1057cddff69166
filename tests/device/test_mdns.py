"""Two reference devices seen by a real zeroconf ServiceBrowser, in a network namespace the test makes."""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from custom_components.autoadd.protocol.keys import PrivateKey

from .conftest import RunningDevice

ROOT = Path(__file__).parents[2]
NAMESPACE_SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"


def _namespaces_allowed() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare (util-linux) and ip (iproute2)"
    probe = subprocess.run(
        ["unshare", "--net", "sh", "-c", NAMESPACE_SETUP],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"the kernel or sandbox forbids a network namespace here: {probe.stderr.strip()}"
    return None


def test_two_devices_are_discovered_over_real_mdns(
    make_device: Callable[..., RunningDevice], home: PrivateKey, tmp_path: Path
) -> None:
    """Both devices announce `_autoadd._tcp.local.` with the documented TXT keys, and withdraw on shutdown."""
    reason = _namespaces_allowed()
    if reason is not None:
        pytest.skip(reason)
    first = make_device([home], serial="SN0001")
    second = make_device([home], serial="SN0002")
    command = f"{NAMESPACE_SETUP} && exec {sys.executable} -m tests.device.mdns_probe {tmp_path} 2"
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", command],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["all_found"], report
    found = sorted(report["found"], key=lambda txt: txt["id"])
    expected_ids = sorted([first.spec.device_id.hex(), second.spec.device_id.hex()])
    assert [txt["id"] for txt in found] == expected_ids
    for txt in found:
        assert txt["v"] == "1"
        assert txt["mf"] == "Acme"
        assert txt["md"] == "Lamp 1"
        assert txt["st"] == "unclaimed"
        assert txt["path"] == "/autoadd/v1"
        assert txt["sv"].isdigit()
        assert txt["_addresses"] == "127.0.0.1"
    assert len({txt["_port"] for txt in found}) == 2
    assert report["clean_exit"]
    assert report["all_removed"], "devices must send goodbye packets when they stop"

"""Run inside a network namespace by test_mdns.py: start devices, browse for them, report as JSON.

    python -m tests.device.mdns_probe DEVICES_DIR COUNT

Starts `autoadd-device DEVICES_DIR --count COUNT` on 127.0.0.1, browses `_autoadd._tcp.local.` with
python-zeroconf's ServiceBrowser until COUNT services resolve, stops the devices with SIGTERM, waits for
the goodbye packets to remove them, and prints {"found": [...TXT maps...], "removed": N}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE = "_autoadd._tcp.local."
WAIT = 30.0


def main() -> int:
    folder, count = sys.argv[1], int(sys.argv[2])
    found: dict[str, dict[str, str]] = {}
    removed: set[str] = set()
    all_found, all_removed = threading.Event(), threading.Event()
    zc = Zeroconf(interfaces=["127.0.0.1"])

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            removed.add(name)
            if len(removed) >= count:
                all_removed.set()
            return
        info = zeroconf.get_service_info(service_type, name, timeout=5000)
        if info is None:
            return
        found[name] = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        found[name]["_port"] = str(info.port)
        found[name]["_addresses"] = ",".join(info.parsed_addresses())
        if len(found) >= count:
            all_found.set()

    device = subprocess.Popen(
        [sys.executable, "-m", "autoadd_device", folder, "--count", str(count), "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    browser = ServiceBrowser(zc, SERVICE, handlers=[on_change])
    try:
        ok = all_found.wait(WAIT)
        device.terminate()
        device.wait(WAIT)
        gone = all_removed.wait(WAIT) if ok else False
    finally:
        browser.cancel()
        zc.close()
        if device.poll() is None:
            device.kill()
    print(
        json.dumps(
            {
                "found": list(found.values()),
                "removed": len(removed),
                "clean_exit": device.returncode == 0,
                "all_found": ok,
                "all_removed": gone,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

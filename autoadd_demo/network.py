"""A virtual network for the demo: a network namespace joined to this host by a veth pair.

Devices run inside the namespace, Home Assistant on the host side; multicast (mDNS) crosses the veth link
like any Ethernet. Everything is made by this process and removed on exit. Addresses are in a private
range used only on that link.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import shutil
import subprocess

PREFIX = 24


def _ip(*args: str, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603


@dataclass
class VirtualNetwork:
    """A namespace `name`, host interface `host_if` and the namespace's interface `ns_if`."""

    name: str
    host_if: str
    ns_if: str
    subnet: int

    @property
    def host_address(self) -> str:
        """The host's address on the link."""
        return f"10.213.{self.subnet}.1"

    @property
    def device_address(self) -> str:
        """The namespace's address on the link: where the devices listen."""
        return f"10.213.{self.subnet}.2"

    @classmethod
    def create(cls, tag: int) -> VirtualNetwork:
        """Make the namespace and link; raise OSError saying why when the kernel or sandbox forbids it.

        `tag` (0-9999) names the namespace and picks the link's /24, so that several can coexist."""
        if shutil.which("ip") is None:
            raise OSError("the ip command (iproute2) is not installed")
        if os.geteuid() != 0:
            raise OSError("network namespaces need root")
        net = cls(name=f"autoadd-{tag}", host_if=f"aad{tag}h", ns_if=f"aad{tag}n", subnet=1 + tag % 250)
        net.remove()  # what a killed earlier run with the same tag left behind
        steps = [
            (("netns", "add", net.name), None),
            (("link", "add", net.host_if, "type", "veth", "peer", "name", net.ns_if), None),
            (("link", "set", net.ns_if, "netns", net.name), None),
            (("addr", "add", f"{net.host_address}/{PREFIX}", "dev", net.host_if), None),
            (("link", "set", net.host_if, "up", "multicast", "on"), None),
            (("addr", "add", f"{net.device_address}/{PREFIX}", "dev", net.ns_if), net.name),
            (("link", "set", net.ns_if, "up", "multicast", "on"), net.name),
            (("link", "set", "lo", "up"), net.name),
            (("route", "add", "224.0.0.0/4", "dev", net.ns_if), net.name),
        ]
        for args, namespace in steps:
            result = _ip(*args, namespace=namespace)
            if result.returncode != 0:
                net.remove()
                raise OSError(f"ip {' '.join(args)}: {result.stderr.strip()}")
        return net

    def wrap(self, command: list[str]) -> list[str]:
        """A command line that runs `command` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def remove(self) -> None:
        """Delete the link and the namespace (deleting the namespace removes its end of the link)."""
        _ip("link", "del", self.host_if)
        _ip("netns", "del", self.name)

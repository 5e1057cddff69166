"""A stand-in for zeroconf's record cache and queries, behind the browser's own handler.

Discovery reads an announced name's records from zeroconf's cache, or queries for them. Tests announce
names through the handler the browser registered, and say here which names have cached records, which
must be queried, and when those queries answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import MagicMock, patch

from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceInfo

from custom_components.autoadd.const import SERVICE_TYPE

from .conftest import service_info


@dataclass
class Mdns:
    """Records by service name: `cached` ones are read at once, `answers` ones are returned by a query
    (and cached from then on) once `answering` is set; any other name's query finds nothing."""

    handler: Any
    cached: dict[str, AsyncServiceInfo] = field(default_factory=dict)
    answers: dict[str, AsyncServiceInfo] = field(default_factory=dict)
    answering: asyncio.Event = field(default_factory=asyncio.Event)
    queried: list[str] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    @staticmethod
    def name_of(device_id: str) -> str:
        """The service name a device with this id announces (its id's end: bogus ids share a start)."""
        return f"Lamp-{device_id[-16:]}.{SERVICE_TYPE}"

    def records(self, device_id: str, port: int, claimed: bool) -> AsyncServiceInfo:
        info = service_info(device_id, port, claimed=claimed)
        return AsyncServiceInfo(
            SERVICE_TYPE,
            self.name_of(device_id),
            addresses=info.addresses,
            port=port,
            properties=info.properties,
        )

    def cache(self, device_id: str, port: int, *, claimed: bool = False) -> str:
        """The device's records, cached as its announcement carried them; returns its name."""
        info = self.records(device_id, port, claimed)
        self.cached[info.name] = info
        return info.name

    def answer(self, device_id: str, port: int, *, claimed: bool = False) -> str:
        """The device's records, given only to a query; returns its name."""
        info = self.records(device_id, port, claimed)
        self.answers[info.name] = info
        return info.name

    def announce(self, name: str, change: ServiceStateChange = ServiceStateChange.Added) -> None:
        """The browser heard the name (added, updated or removed)."""
        self.handler(zeroconf=MagicMock(), service_type=SERVICE_TYPE, name=name, state_change=change)

    def info(self, service_type: str, name: str) -> _Info:
        return _Info(self, service_type, name)


class _Info:
    """What discovery uses of AsyncServiceInfo, over `Mdns`."""

    def __init__(self, mdns: Mdns, service_type: str, name: str) -> None:
        self.mdns, self.type, self.name = mdns, service_type, name
        self.found: AsyncServiceInfo | None = None

    def load_from_cache(self, zc: Any) -> bool:
        self.found = self.mdns.cached.get(self.name)
        return self.found is not None

    async def async_request(self, zc: Any, *_: Any) -> bool:
        mdns = self.mdns
        mdns.queried.append(self.name)
        mdns.in_flight += 1
        mdns.peak_in_flight = max(mdns.peak_in_flight, mdns.in_flight)
        try:
            await mdns.answering.wait()
        finally:
            mdns.in_flight -= 1
        self.found = mdns.answers.pop(self.name, None)
        if self.found is not None:
            mdns.cached[self.name] = self.found
        return self.found is not None

    def __getattr__(self, attribute: str) -> Any:
        assert self.found is not None, f"{attribute} of a name not resolved"
        return getattr(self.found, attribute)


def patched_mdns(browser: MagicMock) -> tuple[Mdns, Any]:
    """The stand-in for the browser the entry started (`auto_mock_zeroconf`), and the patch that puts it
    in discovery's place (use as a context manager)."""
    mdns = Mdns(browser.call_args.kwargs["handlers"][0])
    return mdns, patch("custom_components.autoadd.discovery.AsyncServiceInfo", mdns.info)

"""A long chain seen for the first time is verified off the event loop, with the same verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import dataclasses
from typing import Any
from unittest.mock import patch

from autoadd_bench.rig import Rig
from custom_components.autoadd.protocol.const import MAX_CHAIN_LINKS
from custom_components.autoadd.registrar.record import Phase


def _counting_threads() -> tuple[list[str], Callable[..., Any]]:
    calls: list[str] = []
    real = asyncio.to_thread

    async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "func", func).__name__)
        return await real(func, *args, **kwargs)

    return calls, to_thread


async def test_a_long_new_chain_is_checked_in_a_worker_thread_and_onboarded() -> None:
    rig = Rig()
    device = rig.maker.device(rig.home.key, links=MAX_CHAIN_LINKS)
    calls, to_thread = _counting_threads()
    with patch("custom_components.autoadd.registrar.session.asyncio.to_thread", to_thread):
        await rig.onboard(device)
        record = rig.registrar.state.devices[device.device_id]
        assert record.phase is Phase.ONBOARDED
        assert len(record.chain) == MAX_CHAIN_LINKS
        assert calls == ["read_proof"]
        # Back again, known: only what is new is checked, in the event loop.
        rig.registrar.checked.discard(device.device_id)
        assert record.address is not None
        rig.announce(device.device_id, record.address.host)
        await rig.scheduler.settle()
        assert calls == ["read_proof"]


async def test_a_forged_long_chain_is_refused_the_same_way_off_the_loop() -> None:
    rig = Rig()
    device = rig.maker.device(rig.home.key, links=MAX_CHAIN_LINKS)
    forged = bytearray(device.links[-1])
    forged[-1] ^= 1  # the last link's signature
    device.links[-1] = bytes(forged)
    device.chain = dataclasses.replace(device.chain, links=tuple(device.links))  # what it will send
    calls, to_thread = _counting_threads()
    with patch("custom_components.autoadd.registrar.session.asyncio.to_thread", to_thread):
        await rig.onboard(device)
    record = rig.registrar.state.devices[device.device_id]
    assert calls == ["read_proof"]
    assert record.refusal is not None
    assert record.refusal.code == "bad_signature"
    assert not record.is_member

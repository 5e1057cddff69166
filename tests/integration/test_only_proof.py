"""What 0.1.0 got wrong on a hostile network, each tried again through discovery and the owner's steps:
an announcement, a `204` or a replayed proof moves nothing; a note the device could not match starts a new
handshake; a request on a connection the device closed is tried once more on a fresh one.

(The rest of issue 9's findings: test_never_locked_out.py; a transfer file the seller cancelled:
test_handover.py::test_cancelled_hand_over_makes_the_transfer_file_useless.)
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import decode_chain
from custom_components.autoadd.protocol.errors import ChainHeadMismatchError, UnknownSessionError
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import PATH_HELLO, PATH_LINKS
from custom_components.autoadd.registrar.record import ChangeKind, Phase
from tests.factory import NOW_TS, fixed_key
from tests.reference_device import RunningDevice

from .conftest import Impostor, announce, onboarding_state, registered, registrar_of, settle

BUYER = fixed_key("buyer home")


async def onboarded(hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice) -> str:
    device_id = device.spec.device_id.hex()
    announce(entry, device_id, device.port, claimed=False)
    await settle(hass)
    assert onboarding_state(hass, device_id) == "onboarded"
    return device_id


async def replayed_proof(device: RunningDevice, home: PrivateKey) -> bytes:
    """A proof bundle the real device gave in an earlier session (anyone on the LAN could record one)."""
    return await device.client.hello(RegistrarHandshake(home, issued_at=NOW_TS).hello)


async def hand_over(hass: HomeAssistant, device_id: str) -> dict[str, Any]:
    device = registered(hass, device_id)
    assert device is not None
    response = await hass.services.async_call(
        DOMAIN,
        "hand_over_device",
        {"device_id": device.id, "new_owner": format_home_key(BUYER.public_key())},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


@pytest.mark.parametrize("answer", ["204", "replayed proof"])
async def test_claimed_announcement_elsewhere_moves_nothing(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    impostor: Callable[..., Awaitable[Impostor]],
    answer: str,
) -> None:
    """0.1.0 moved a known device's address on any "claimed" announcement. Now the registrar asks
    whoever is there to prove it is the device, and nothing moves when it can't."""
    device: RunningDevice = await devices([home])
    device_id = await onboarded(hass, loaded, device)
    before = registrar_of(loaded).state.devices[device_id].as_dict()
    hello = await replayed_proof(device, home) if answer == "replayed proof" else None
    fake = await impostor(b"", hello=hello)

    announce(loaded, device_id, fake.port, claimed=True)
    await settle(hass)

    assert PATH_HELLO in fake.requests  # asked to prove itself, and could not
    record = registrar_of(loaded).state.devices[device_id]
    assert record.address is not None
    assert record.address.port == device.port
    after = record.as_dict()
    for key in ("phase", "chain", "address", "owners", "change", "approval"):
        assert after[key] == before[key], key
    assert registered(hass, device_id) is not None


@pytest.mark.parametrize("answer", ["204", "replayed proof"])
async def test_pending_hand_over_is_not_delivered_to_an_impostor(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    impostor: Callable[..., Awaitable[Impostor]],
    answer: str,
) -> None:
    """0.1.0 counted a hand-over "delivered" when anything answered `204` at the device's address, and
    dropped a device that never left. Only a proof of the new head from the device itself counts."""
    device: RunningDevice = await devices([home])
    device_id = await onboarded(hass, loaded, device)
    hello = await replayed_proof(device, home) if answer == "replayed proof" else None
    await device.stop()
    assert (await hand_over(hass, device_id))["delivered"] is False
    fake = await impostor(b"", port=device.port, hello=hello)

    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)

    assert PATH_LINKS not in fake.requests  # links go only to a device that just proved itself
    record = registrar_of(loaded).state.devices[device_id]
    assert record.phase is Phase.CHANGING_OWNER
    assert record.change is not None
    assert record.change.kind is ChangeKind.HANDOVER
    assert registered(hass, device_id) is not None
    assert onboarding_state(hass, device_id) == "handover_pending"

    await fake.stop()
    await device.start(device.port)
    announce(loaded, device_id, device.port, claimed=True)
    await settle(hass)
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.HANDED_OVER
    assert registered(hass, device_id) is None


async def test_cancel_is_not_done_on_an_unsigned_204(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    impostor: Callable[..., Awaitable[Impostor]],
) -> None:
    """0.1.0 reported a cancel done on a `204` while the real device still took the buyer's transfer
    file. The cancel is done only on the device's receipt; until then the owner sees it unconfirmed."""
    device: RunningDevice = await devices([home])
    device_id = await onboarded(hass, loaded, device)
    await device.stop()
    transfer = decode_chain(base64.b64decode((await hand_over(hass, device_id))["transfer_file"]))
    fake = await impostor(b"", port=device.port)

    flow = await hass.config_entries.options.async_init(loaded.entry_id)
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "pending_hand_overs"}
    )
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"device": device_id, "action": "cancel"}
    )
    result = await hass.config_entries.options.async_configure(flow["flow_id"], {"confirm": True})
    await settle(hass)
    assert result["reason"] == "cancel_signed"  # an unsigned 204 is no receipt
    record = registrar_of(loaded).state.devices[device_id]
    assert record.change is not None
    assert record.change.kind is ChangeKind.CANCEL
    assert onboarding_state(hass, device_id) in ("cancel_pending", "cancel_sent")

    await fake.stop()
    await device.start(device.port)
    assert device.device is not None
    device.device.add_links(list(transfer[1:]))  # the buyer's registrar was quicker
    announce(loaded, device_id, device.port, claimed=False)
    await settle(hass)
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.HANDED_OVER
    assert registered(hass, device_id) is None


@pytest.mark.parametrize("error", [UnknownSessionError, ChainHeadMismatchError])
async def test_a_note_the_device_cannot_match_starts_a_new_handshake(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    error: type[UnknownSessionError | ChainHeadMismatchError],
) -> None:
    """0.1.0 recorded the device as refused after `unknown_session` or `chain_head_mismatch` on the note
    and never tried it again. §12: start a new handshake."""
    device: RunningDevice = await devices([home])
    assert device.device is not None
    responder = device.device.responder
    real = responder.accept_note
    notes: list[bytes] = []

    def flaky(note: bytes, *args: Any, **kwargs: Any) -> Any:
        notes.append(note)
        if len(notes) == 1:
            raise error("the session is gone (the device restarted)")
        return real(note, *args, **kwargs)

    responder.accept_note = flaky  # type: ignore[method-assign]
    device_id = await onboarded(hass, loaded, device)

    assert len(notes) == 2
    record = registrar_of(loaded).state.devices[device_id]
    assert record.refusal is None
    assert record.phase is Phase.ONBOARDED


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (as aiohttp sends and answers them)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head + await reader.readexactly(length)


@pytest.fixture
async def closes_after_one_request(
    socket_enabled: None,
) -> AsyncIterator[Callable[[int], Awaitable[int]]]:
    """A relay in front of a device: on its first connection it answers one request and then closes the
    connection when the next request comes (the device restarted meanwhile); later connections relay."""
    servers: list[asyncio.Server] = []

    async def start(device_port: int) -> int:
        connections = 0

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            first = connections == 1
            try:
                while True:
                    request = await read_message(reader)
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", device_port)
                    up_writer.write(request)
                    writer.write(await read_message(up_reader))
                    up_writer.close()
                    await writer.drain()
                    if first:
                        await reader.read(1)  # the next request on this connection: gone
                        writer.transport.abort()
                        return
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()


async def test_a_request_on_a_connection_the_device_closed_is_tried_again(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    closes_after_one_request: Callable[[int], Awaitable[int]],
) -> None:
    """0.1.0 sent the first request after a device restart over the stale pooled connection, failed it as
    `unreachable` and waited for a back-off. It is tried once more on a fresh connection."""
    device: RunningDevice = await devices([home])
    port = await closes_after_one_request(device.port)
    device_id = device.spec.device_id.hex()

    announce(loaded, device_id, port, claimed=False)  # the hello gets its answer; the note meets a dead end
    await settle(hass)

    assert onboarding_state(hass, device_id) == "onboarded"
    assert device_id not in registrar_of(loaded).failures
    assert device_id not in registrar_of(loaded).retries

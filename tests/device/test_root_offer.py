"""The reference device's root offer (§14.7, §16): root.pem, when shipped, is checked at start and served
at `GET /autoadd/v1/root`; without it the endpoint answers 404 `not_found`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from autoadd_device import files
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import DeviceFileError, write_root
from custom_components.autoadd.protocol.certificates import certificate_to_pem, read_root_offer
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import PeerError
from tests.factory import Manufacturer

from .conftest import RunningDevice


async def test_the_shipped_root_is_offered(
    make_device: Callable[..., RunningDevice], home: PrivateKey, maker: Manufacturer
) -> None:
    device = make_device([home])
    write_root(device.folder, maker.root)
    await device.start()
    try:
        assert read_root_offer(await device.client.root()) == maker.root
    finally:
        await device.stop()


async def test_no_root_shipped_is_not_found(running: RunningDevice) -> None:
    with pytest.raises(PeerError) as caught:
        await running.client.root()
    assert (caught.value.peer_code, caught.value.status) == ("not_found", 404)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (lambda maker, other: b"", "holds 0 PEM blocks"),
        (lambda maker, other: certificate_to_pem(maker.root) * 2, "holds 2 PEM blocks"),
        (lambda maker, other: certificate_to_pem(maker.make_device().cert), "not self-issued"),
        (lambda maker, other: certificate_to_pem(other.root), "did not issue the last certificate"),
        (lambda maker, other: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not PEM"),
    ],
)
def test_a_root_pem_that_is_no_root_of_the_device_stops_it(
    make_device: Callable[..., RunningDevice],
    home: PrivateKey,
    maker: Manufacturer,
    content: Callable[[Manufacturer, Manufacturer], bytes],
    match: str,
) -> None:
    """Exactly one CERTIFICATE block, a root (O3-O5), the one that issued the IDevID chain's top."""
    folder: Path = make_device([home]).folder
    (folder / files.ROOT).write_bytes(content(maker, Manufacturer.create("Globex")))
    with pytest.raises(DeviceFileError, match=match) as caught:
        ReferenceDevice(folder, clock=lambda: 0.0)
    assert str(caught.value).startswith(str(folder / files.ROOT))
    assert not (folder / files.STATE).exists()

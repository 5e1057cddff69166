"""The device's state on disk: atomic writes, crash safety, and clear errors for a broken directory."""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path

import pytest

from autoadd_device import files
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import STATE, DeviceFileError
from custom_components.autoadd.protocol.const import Label
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from custom_components.autoadd.protocol.keys import PrivateKey
from tests.factory import NOW, NOW_TS, Manufacturer
from tests.protocol.helpers import payload_of

from .conftest import RunningDevice


async def test_crash_between_write_and_rename_keeps_the_old_state(
    running: RunningDevice, home: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the new state is written but before the rename leaves the old state in force."""
    await running.onboard(home)
    assert running.device is not None
    before = (running.folder / STATE).read_bytes()

    def power_cut(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        running.device.factory_reset()
    monkeypatch.undo()

    assert (running.folder / STATE).read_bytes() == before
    device = await running.restart()
    assert device.claimed


async def test_leftover_temporary_file_is_harmless(running: RunningDevice, home: PrivateKey) -> None:
    """A temporary file left by a crash is ignored at start and replaced by the next write."""
    await running.onboard(home)
    (running.folder / f".{STATE}.tmp").write_bytes(b"half a state")
    device = await running.restart()
    assert device.claimed
    device.factory_reset()
    assert not (running.folder / f".{STATE}.tmp").exists()


def test_corrupt_state_is_reported_at_start(
    make_device: Callable[..., RunningDevice], home: PrivateKey
) -> None:
    """A state file that is not a state names itself in the error."""
    spec = make_device([home])
    (spec.folder / STATE).write_bytes(b"\xa1\x01\x02")
    with pytest.raises(DeviceFileError, match=r"state\.cbor: corrupt state"):
        ReferenceDevice(spec.folder, clock=spec.clock)


def test_missing_key_is_reported(make_device: Callable[..., RunningDevice], home: PrivateKey) -> None:
    """A device directory without its key names the missing file."""
    spec = make_device([home])
    (spec.folder / files.IDEVID_KEY).unlink()
    with pytest.raises(DeviceFileError, match=r"idevid\.key: missing"):
        ReferenceDevice(spec.folder, clock=spec.clock)


def test_invoice_for_another_device_is_refused(
    make_device: Callable[..., RunningDevice], home: PrivateKey
) -> None:
    """A device shipped with another device's invoice refuses to start."""
    first = make_device([home], serial="SN0001")
    second = make_device([home], serial="SN0002")
    (second.folder / files.INVOICE).write_bytes((first.folder / files.INVOICE).read_bytes())
    with pytest.raises(DeviceFileError, match="another device"):
        ReferenceDevice(second.folder, clock=second.clock)


def test_state_file_mode_is_private(make_device: Callable[..., RunningDevice], home: PrivateKey) -> None:
    """The key and the state are readable by the device's user only."""
    spec = make_device([home])
    device = ReferenceDevice(spec.folder, clock=spec.clock)
    device.factory_reset()
    assert (Path(spec.folder) / STATE).stat().st_mode & 0o077 == 0
    assert (Path(spec.folder) / files.IDEVID_KEY).stat().st_mode & 0o077 == 0


def test_invoice_naming_another_certificate_is_refused(
    make_device: Callable[..., RunningDevice], home: PrivateKey, maker: Manufacturer
) -> None:
    """An invoice for this device id but another IDevID certificate stops the device at start."""
    spec = make_device([home])
    other_cert = maker.make_device("SN0001").cert  # same key, new certificate (another serial number)
    from custom_components.autoadd.protocol.manufacturer import make_idevid_certificate

    reissued = make_idevid_certificate(
        maker.root_key,
        maker.root,
        spec.spec.key.public_key(),
        serial_number="SN9999",
        model="Lamp 1",
        now=NOW,
        serial=4242,
    )
    assert reissued != other_cert
    files.write_identity(spec.folder, spec.spec.key, [reissued])
    with pytest.raises(DeviceFileError, match="another IDevID certificate"):
        ReferenceDevice(spec.folder, clock=spec.clock)


async def test_note_without_configuration_stores_an_empty_one(
    running: RunningDevice, home: PrivateKey
) -> None:
    """§11: the configuration is always the last accepted note's; a note without label 17 clears it."""
    await running.onboard(home)  # configuration {"room": "hall"}
    session = RegistrarHandshake(home, issued_at=NOW_TS)
    session.read_proof(await running.client.hello(session.hello), roots=[running.maker.root], now=NOW)
    note = session.make_note(signer=home, issued_at=NOW_TS, links=[])
    assert Label.CONFIG not in payload_of(note)
    session.read_receipt(await running.client.note(note))

    device = await running.restart()
    assert device.claimed
    assert device.state.config == {}
    assert loads((running.folder / STATE).read_bytes(), what="state", max_size=1 << 20)["config"] == {}

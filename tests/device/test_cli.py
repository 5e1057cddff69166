"""autoadd-device's command line: finding device directories, factory reset, and clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from autoadd_device.cli import find_device_dirs, main
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import DeviceFileError
from custom_components.autoadd.protocol.keys import PrivateKey

from .conftest import RunningDevice


async def test_factory_reset_from_the_command_line(running: RunningDevice, home: PrivateKey) -> None:
    """--factory-reset clears the imprint of every device found and keeps the chain."""
    await running.onboard(home)
    assert main([str(running.folder), "--factory-reset"]) == 0
    device = ReferenceDevice(running.folder, clock=running.clock)
    assert not device.claimed
    assert len(device.chain.links) == 1


def test_folders_of_devices_are_found_in_name_order(
    make_device: Callable[..., RunningDevice], home: PrivateKey, tmp_path: Path
) -> None:
    """A folder holding device directories gives them in name order; --count takes the first ones."""
    make_device([home], serial="SN0002")
    make_device([home], serial="SN0001")
    (tmp_path / "notes").mkdir()
    assert [p.name for p in find_device_dirs([tmp_path])] == ["SN0001", "SN0002"]


def test_a_path_that_is_no_device_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing path is an error that names it, exit status 1."""
    missing = tmp_path / "nothing-here"
    with pytest.raises(DeviceFileError):
        find_device_dirs([missing])
    assert main([str(missing), "--no-mdns"]) == 1
    assert str(missing) in capsys.readouterr().err


def test_an_empty_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder with no device directories is reported, not silently served."""
    assert main([str(tmp_path), "--no-mdns"]) == 1
    assert "no device directories" in capsys.readouterr().err

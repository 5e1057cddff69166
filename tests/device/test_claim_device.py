"""The reference device as unassigned stock (§14.9, §11): claim endpoints over HTTP, the wrong-code count
on disk and its delay, and a claimed device that stays claimed through restarts and factory resets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from pathlib import Path

import aiohttp
import pytest

from autoadd_device.claims import CLAIM_STATE, read_claim_code, write_claim_code
from autoadd_device.cli import main
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import DeviceFileError, write_identity, write_invoice
from custom_components.autoadd.protocol.chain import verify_chain
from custom_components.autoadd.protocol.claim import ClaimRun
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import PrivateKey
from custom_components.autoadd.protocol.transport import HTTP_STATUS, MEDIA_TYPE, PATH_CLAIM_START, PeerError
from tests.factory import NOW, Manufacturer, fixed_key
from tests.reference_device import FakeClock, RunningDevice

HOME = fixed_key("device claim home")


@pytest.fixture
async def stock(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[RunningDevice]:
    """An unassigned device with its claim code, served."""
    maker = Manufacturer.create("Acme")
    spec = maker.make_device("SN7001")
    folder = tmp_path / "SN7001"
    write_identity(folder, spec.key, [spec.cert])
    spec.links = [maker.invoice(spec, [])]
    write_invoice(folder, spec.links)
    write_claim_code(folder, format_claim_code(_code(spec.device_id)))
    device = RunningDevice(folder, maker, spec, FakeClock(), http)
    await device.start()
    yield device
    await device.stop()


def _code(device_id: bytes, secret: bytes = b"12345678") -> ClaimCode:
    return ClaimCode(device_id[:3], secret)


def _run(device: RunningDevice, home: PrivateKey = HOME, secret: bytes = b"12345678") -> ClaimRun:
    code = _code(device.spec.device_id, secret)
    return ClaimRun(code, device_id=device.spec.device_id, home=home.public_key(), owners=[home.public_key()])


async def _claim(device: RunningDevice, home: PrivateKey = HOME, secret: bytes = b"12345678") -> bytes:
    run = _run(device, home, secret)
    finish = run.finish(await device.client.claim_start(run.start))
    answer = await device.client.claim_finish(finish)
    chain = verify_chain(device.spec.links, roots=[device.maker.root], now=NOW)
    run.read_link(answer, chain)
    return answer


async def _refused(call: Coroutine[object, object, object]) -> tuple[str, int | None]:
    """The code the device answered with (its status too, where the client keeps it)."""
    try:
        await call
    except PeerError as err:
        return err.peer_code, err.status
    except AutoAddError as err:
        return err.code, HTTP_STATUS[err.code]
    raise AssertionError("the device took it")


def _failures(device: RunningDevice) -> int:
    value = loads((device.folder / CLAIM_STATE).read_bytes(), what="t", max_size=64)
    assert isinstance(value, dict)
    count = value["failures"]
    assert isinstance(count, int)
    return count


async def test_claimed_with_its_code_and_never_again(stock: RunningDevice) -> None:
    await _claim(stock)
    assert stock.device is not None
    assert stock.device.chain.head.is_owner(HOME.public_key())
    assert _failures(stock) == 0
    # A restart and a factory reset keep the claim link: the code never claims the device again.
    await stock.restart()
    assert stock.device is not None
    stock.device.factory_reset()
    assert stock.device.chain.head.is_owner(HOME.public_key())
    code, status = await _refused(_claim(stock, fixed_key("second home")))
    assert (code, status) == ("already_claimed", 409)
    await stock.onboard(HOME)  # and the chain works as for any device


async def test_a_wrong_code_counts_and_says_nothing_more(stock: RunningDevice) -> None:
    code, status = await _refused(_claim(stock, secret=b"87654321"))
    assert (code, status) == ("wrong_claim_code", 403)
    assert _failures(stock) == 1
    assert stock.device is not None
    assert not stock.device.chain.head.owners  # nothing changed
    await _claim(stock)  # the right code still works


async def test_wrong_codes_wait_longer_each_time_even_across_restarts(stock: RunningDevice) -> None:
    for _ in range(3):
        await _refused(_claim(stock, secret=b"00000000"))
    assert _failures(stock) == 3
    url = f"http://127.0.0.1:{stock.port}{PATH_CLAIM_START}"
    start = _run(stock).start
    async with stock.session.post(url, data=start, headers={"Content-Type": MEDIA_TYPE}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert loads(await response.read(), what="t", max_size=1024)[1] == "claim_wait"
    assert _failures(stock) == 3  # a refused start is not counted
    stock.clock.now += 1.5
    await _refused(_claim(stock, secret=b"00000000"))  # the 4th wrong code: now 2 s
    await stock.restart()  # the count is on disk; the wait counts from the restart
    code, _ = await _refused(_claim(stock))
    assert code == "claim_wait"
    stock.clock.now += 2.5
    await _claim(stock)
    assert _failures(stock) == 0


async def test_a_start_alone_counts_nothing(stock: RunningDevice) -> None:
    """A start tells nobody anything about the code: only a finish, whose code is checked, counts."""
    for _ in range(5):
        await stock.client.claim_start(_run(stock).start)
    assert not (stock.folder / CLAIM_STATE).exists()
    await _claim(stock)


async def test_an_owned_device_has_no_claim_endpoints(running: RunningDevice) -> None:
    code, status = await _refused(_claim(running))
    assert (code, status) == ("not_found", 404)


def test_unassigned_stock_needs_its_code(tmp_path: Path) -> None:
    maker = Manufacturer.create("Acme")
    spec = maker.make_device("SN7002")
    folder = tmp_path / "SN7002"
    write_identity(folder, spec.key, [spec.cert])
    write_invoice(folder, [maker.invoice(spec, [])])
    with pytest.raises(DeviceFileError, match="no claim code"):
        ReferenceDevice(folder, clock=lambda: 0.0)
    (folder / "claim_code").write_text("AACC1-NOT-A-CODE")
    with pytest.raises(DeviceFileError, match="not a claim code"):
        ReferenceDevice(folder, clock=lambda: 0.0)
    other = Manufacturer.create("Acme").make_device("SN7003")
    write_claim_code(folder, format_claim_code(_code(other.device_id)))
    with pytest.raises(DeviceFileError, match="for another device"):
        ReferenceDevice(folder, clock=lambda: 0.0)
    # The command line gives the code instead of the file.
    (folder / "claim_code").unlink()
    text = format_claim_code(_code(spec.device_id))
    assert ReferenceDevice(folder, clock=lambda: 0.0, claim_code=_code(spec.device_id)).claims is not None
    assert main([str(folder), "--claim-code", text, "--factory-reset"]) == 0
    assert read_claim_code(folder) is None

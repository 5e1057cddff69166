"""The conformance runner (scripts/conformance) against the reference device on 127.0.0.1, and against
devices that break §9 on purpose: it must pass the one and fail the others on exactly the broken rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
import io
import json
from pathlib import Path

import aiohttp
from aiohttp import web
import pytest

from autoadd_conformance import Outcome, Result, RunOptions, run
from autoadd_conformance.checks_claim import ClaimOptions
from autoadd_conformance.checks_note import ONBOARD_CONFIG
from autoadd_conformance.cli import main
from autoadd_device.claims import write_claim_code
import autoadd_device.server
from custom_components.autoadd.protocol.certificates import certificate_to_pem
from custom_components.autoadd.protocol.claim_code import ClaimCode, format_claim_code
from custom_components.autoadd.protocol.keys import PrivateKey, fingerprint, private_key_to_pem
from tests.factory import Manufacturer, fixed_key
from tests.reference_device import RunningDevice, make_running_device

HOME = fixed_key("conformance home")
#: Checks the runner never runs (they need time or a chain change): SKIP whatever the options.
ALWAYS_SKIPPED = {"N3", "N7"}


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """The device is a real HTTP server on 127.0.0.1 (connections stay limited to loopback)."""


def new_device(tmp_path: Path, session: aiohttp.ClientSession) -> RunningDevice:
    """A reference device owned by HOME, not yet started."""
    return make_running_device(tmp_path / "device", Manufacturer.create("Acme"), [HOME], "SN1", session)


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[RunningDevice]:
    async with aiohttp.ClientSession() as session:
        running = new_device(tmp_path, session)
        await running.start()
        yield running
        await running.stop()


def url(device: RunningDevice) -> str:
    return f"http://127.0.0.1:{device.port}"


def pem_files(tmp_path: Path, device: RunningDevice, owner: PrivateKey = HOME) -> tuple[str, str]:
    """The owner key and the manufacturer root as the files a maker passes."""
    key, root = tmp_path / "owner.pem", tmp_path / "root.pem"
    key.write_bytes(private_key_to_pem(owner))
    root.write_bytes(certificate_to_pem(device.maker.root))
    return str(key), str(root)


def outcomes(results: list[Result]) -> dict[Outcome, list[Result]]:
    found: dict[Outcome, list[Result]] = {outcome: [] for outcome in Outcome}
    for result in results:
        found[result.outcome].append(result)
    return found


def state_of(device: RunningDevice) -> tuple[tuple[bytes, ...], bytes | None, dict[object, object]]:
    assert device.device is not None
    state = device.device.state
    return tuple(state.chain), state.owner, dict(state.config)


async def test_reference_device_passes_every_check_without_keys(device: RunningDevice) -> None:
    before = state_of(device)

    results = await run(RunOptions(url(device)))

    found = outcomes(results)
    assert found[Outcome.FAILED] == []
    rules = {result.rule for result in found[Outcome.PASSED]}
    assert {
        "H1",
        "H2",
        "H3",
        "H4",
        "H5",
        "N1",
        "N2",
        "N4",
        "N5",
        "N6",
        "N7a",
        "N8",
        "N9",
        "N10",
        "N11",
        "8.4",
        "T1",
        "T2",
        "T6",
        "T9",
    } <= rules
    skipped = {result.rule: result.why for result in found[Outcome.SKIPPED]}
    assert set(skipped) == ALWAYS_SKIPPED | {"P1-P14", "N12", "8.4", "O1-O5"}
    assert skipped["O1-O5"] == "the device offers no root (allowed)"
    assert skipped["P1-P14"] == "needs --root"
    assert skipped["N12"].startswith("needs --owner-key, --root, --onboard")
    assert all(line.line().startswith(("PASS ", "SKIP ")) for line in results)
    assert state_of(device) == before  # nothing but sessions changed


async def test_onboarding_with_the_owner_key_passes_and_changes_only_the_imprint_and_config(
    device: RunningDevice, tmp_path: Path
) -> None:
    assert device.device is not None
    chain_before, owner_before, _ = state_of(device)

    results = await run(RunOptions(url(device), owner_key=HOME, roots=[device.maker.root], onboard=True))

    found = outcomes(results)
    assert found[Outcome.FAILED] == []
    assert {result.rule for result in found[Outcome.SKIPPED]} == ALWAYS_SKIPPED | {"O1-O5"}
    assert {"N12", "P1-P14"} <= {result.rule for result in found[Outcome.PASSED]}
    chain, owner, config = state_of(device)
    assert chain == chain_before
    assert owner_before is None
    assert owner == fingerprint(HOME.public_key())
    assert config == ONBOARD_CONFIG


async def test_owner_key_without_onboard_changes_nothing(device: RunningDevice, tmp_path: Path) -> None:
    before = state_of(device)
    key, root = pem_files(tmp_path, device)
    out = io.StringIO()

    status = await asyncio.to_thread(main, ["--device", url(device), "--owner-key", key, "--root", root], out)

    lines = out.getvalue().splitlines()
    assert status == 0
    assert any(line.startswith("PASS P1-P14 ") for line in lines)
    assert any(line.startswith("SKIP N12 ") and "needs --onboard" in line for line in lines)
    assert all(line.startswith(("PASS ", "SKIP ")) for line in lines)
    assert state_of(device) == before


async def test_cli_json_lines(device: RunningDevice) -> None:
    out = io.StringIO()

    status = await asyncio.to_thread(main, ["--device", url(device), "--json"], out)

    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 0
    assert rows
    assert {row["outcome"] for row in rows} == {"PASS", "SKIP"}
    assert all(set(row) == {"outcome", "rule", "title", "why"} for row in rows)


async def test_a_non_owner_key_fails_the_onboarding_and_changes_nothing(
    device: RunningDevice, tmp_path: Path
) -> None:
    before = state_of(device)
    key, root = pem_files(tmp_path, device, owner=fixed_key("conformance stranger"))
    out = io.StringIO()

    status = await asyncio.to_thread(
        main, ["--device", url(device), "--owner-key", key, "--root", root, "--onboard"], out
    )

    failures = [line for line in out.getvalue().splitlines() if line.startswith("FAIL ")]
    assert status == 1
    assert failures == [
        "FAIL N12 a full hello, proof, note, receipt with the owner key (receipt verified, R1-R9) "
        "(the --owner-key is not a current owner in the device's chain)"
    ]
    assert state_of(device) == before


async def test_plain_text_404_fails_the_not_found_and_error_body_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def plain_not_found(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="not found")

    monkeypatch.setattr(autoadd_device.server, "_not_found", plain_not_found)
    async with aiohttp.ClientSession() as session:
        running = new_device(tmp_path, session)
        await running.start()
        try:
            results = await run(RunOptions(url(running)))
        finally:
            await running.stop()

    failed = [result for result in results if result.outcome is Outcome.FAILED]
    assert [(result.rule, result.title) for result in failed] == [
        ("T2", "GET /autoadd/v1/nothing"),
        ("T2", "POST /"),
        ("Q3", "a device whose chain names owners takes no claim (404 not_found or 409 already_claimed)"),
        ("T9", "every 4xx answer is {1: code, 2: detail <= 256 chars} as application/cbor, and no 5xx"),
    ]
    assert failed[0].why == "expected 404 not_found, got 404 with no CBOR error body"
    assert failed[2].why == "got 404 with no CBOR error body"
    assert failed[3].why.startswith("3 of ")


async def test_a_device_answering_200_to_everything_fails(tmp_path: Path) -> None:
    async def yes(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=200, body=b"\xa0", content_type="application/cbor")

    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{path:.*}", yes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    out = io.StringIO()
    try:
        status = await asyncio.to_thread(main, ["--device", f"http://127.0.0.1:{port}"], out)
    finally:
        await runner.cleanup()

    lines = out.getvalue().splitlines()
    assert status == 1
    assert lines[0] == (
        "FAIL H1-H5 a good hello (EdDSA) is answered 200 with a proof bundle for it "
        "(the proof bundle is not one: malformed)"
    )
    assert lines[-1].startswith("FAIL * the remaining checks")
    assert not any(line.startswith("PASS ") for line in lines)


async def test_an_unusable_device_url_or_key_file_exits_2(tmp_path: Path) -> None:
    bad_key = tmp_path / "key.pem"
    bad_key.write_bytes(b"not a key")
    assert main(["--device", "https://127.0.0.1:1"], io.StringIO()) == 2
    assert main(["--device", "http://127.0.0.1:1", "--owner-key", str(bad_key)], io.StringIO()) == 2
    missing = str(tmp_path / "missing.pem")
    assert main(["--device", "http://127.0.0.1:1", "--root", missing], io.StringIO()) == 2


async def test_a_rate_limited_device_is_waited_out_not_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as session:
        running = new_device(tmp_path, session)
        running.rate, running.burst = 50.0, 30  # fewer than the run's requests: it meets 429s
        await running.start()
        try:
            results = await run(RunOptions(url(running)))
        finally:
            await running.stop()

    assert [result for result in results if result.outcome is Outcome.FAILED] == []
    assert "request refused: rate_limited" in caplog.text


@pytest.mark.parametrize("offered", ["its own root", "another root"])
async def test_a_root_offer_is_checked_against_the_device_chains(tmp_path: Path, offered: str) -> None:
    """§14.7: a device offering the root its chains end at passes O1-O5; one offering another
    manufacturer's root fails, naming why."""
    async with aiohttp.ClientSession() as session:
        running = new_device(tmp_path, session)
        device = await running.start()
        root = running.maker.root if offered == "its own root" else Manufacturer.create("Globex").root
        device.identity = replace(device.identity, root=root)
        try:
            results = await run(RunOptions(url(running)))
        finally:
            await running.stop()
    (check,) = [result for result in results if result.rule == "O1-O5"]
    if offered == "its own root":
        assert check.outcome is Outcome.PASSED
    else:
        assert check.outcome is Outcome.FAILED
        assert check.why == "the device's chains do not verify under the offered root: untrusted_manufacturer"


async def test_unassigned_stock_passes_the_claim_checks(tmp_path: Path) -> None:
    """§14.9: without a code only refusals that count nothing are sent (the device's wrong-code count
    stays 0); with --claim-code a wrong code is refused (counted); with --claim the device is claimed for
    the owner key and its claim link verifies."""
    async with aiohttp.ClientSession() as session:
        running = make_running_device(tmp_path / "stock", Manufacturer.create("Acme"), [], "UN1", session)
        code = ClaimCode(running.spec.device_id[:3], b"conform!")
        write_claim_code(running.folder, format_claim_code(code))
        device = await running.start()
        try:
            plain = await run(RunOptions(url(running)))
            assert device.claims is not None
            assert device.claims.failures == 0
            claimed = await run(RunOptions(url(running), claim=ClaimOptions(code, HOME, claim=True)))
        finally:
            await running.stop()
    by_rule = {result.rule: result for result in plain}
    assert [by_rule[rule].outcome for rule in ("Q1", "Q2", "F2")] == [Outcome.PASSED] * 3
    assert by_rule["F5"].why == "needs --claim-code"
    assert outcomes(claimed)[Outcome.FAILED] == []
    assert {r.rule for r in outcomes(claimed)[Outcome.PASSED]} >= {"Q1", "Q2", "F2", "F5", "F8"}
    assert device.chain.head.owner_fingerprints == (fingerprint(HOME.public_key()),)
    assert device.claims.failures == 0  # reset by the claim


async def test_a_device_with_owners_takes_no_claim(device: RunningDevice) -> None:
    results = await run(RunOptions(url(device)))
    (check,) = [result for result in results if result.rule == "Q3"]
    assert check.outcome is Outcome.PASSED

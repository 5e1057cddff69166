"""scripts/bench's in-process part runs and reports every figure with its target (no speed is asserted:
speed belongs to the bench, not to the tests)."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parents[2]

IN_PROCESS = {
    *(f"chain_verify_{kind}_{n}" for kind in ("ed25519", "p256") for n in (1, 8, 64)),
    "known_back_verifications",
    "known_back_time",
    "onboarding_cpu",
    "onboarding_stored",
    "known_under_flood",
}


def test_quick_bench_reports_every_in_process_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "autoadd_bench", "--quick", "--no-hass", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())
    figures = {fig["key"]: fig for fig in results["figures"]}
    assert set(figures) == IN_PROCESS
    assert results["quick"] is True
    assert results["machine"]["cores"] >= 1
    for fig in figures.values():
        assert fig["value"] is not None, fig
        assert fig["value"] >= 0, fig
        assert fig["met"] == (fig["value"] <= fig["target"])
        assert fig["label"] in run.stdout  # the table names it beside its target
    # A known device's proof is checked with two verifications, however long its chain: counted, not timed.
    assert figures["known_back_verifications"]["value"] == 2
    assert "figures met" in run.stdout

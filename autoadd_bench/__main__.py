"""scripts/bench: AutoAdd's speed and scale figures (issue 12), each against its target.

    scripts/bench            every figure (the Home Assistant part takes several minutes)
    scripts/bench --quick    small counts, for a smoke run
    scripts/bench --no-hass  only the figures measured in this process

Every figure is a ratio against a baseline measured in the same run, or a time, memory or stall measured
on this machine; the table shows the target beside each and how far off it is. The results are written
as JSON to bench/results.json (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import shutil
import sys
import time

from custom_components.autoadd.protocol.keys import KeyType

from . import inprocess
from .figures import Figure, machine, render, write

REPO = Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    """One progress line."""
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


async def measure(args: argparse.Namespace) -> list[Figure]:
    """Every figure, in the order of the issue's table."""
    figures: list[Figure] = []
    raw: dict[KeyType, tuple[float, float]] = {}
    for kind in (KeyType.ED25519, KeyType.P256):
        say(f"raw {kind.value} verify and sign, then chain verification at 1, 8 and 64 links")
        raw[kind] = inprocess.raw_costs(kind, quick=args.quick)
        figures += inprocess.chain_figures(kind, raw[kind][0], quick=args.quick)
    verify, sign = raw[KeyType.ED25519]
    say("a known device back with a 64-link chain")
    figures += await inprocess.known_device_figures(verify, sign, quick=args.quick)
    say("onboardings in the registrar core: with none stored, then with many")
    figures += await inprocess.onboarding_figures(verify, sign, quick=args.quick)
    say("a known device while bogus announcements flood the registrar")
    figures += await inprocess.flood_figures(quick=args.quick)
    if not args.no_hass:
        from .hass_bench import hass_figures  # noqa: PLC0415 - Home Assistant only when asked for

        workdir = REPO / "bench" / "hass"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        figures += await hass_figures(quick=args.quick, say=say, workdir=workdir)
    return figures


def main() -> int:
    """Command line; exits 0 when every figure was measured (met or not: the table says)."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--no-hass", action="store_true", help="skip the Home Assistant figures")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json", help="JSON results")
    args = parser.parse_args()
    figures = asyncio.run(measure(args))
    write(args.out, figures, quick=args.quick)
    info = machine()
    print(f"\nMeasured {info['date']} on {info['cpu']} ({info['cores']} cores), Python {info['python']}")
    print(render(figures))
    print(f"\n{sum(f.met for f in figures)} of {len(figures)} figures met; results in {args.out}")
    return 0 if all(f.value is not None for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())

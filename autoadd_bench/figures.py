"""What the bench measures: figures with their targets, printed as a table and written as JSON.

Every figure is "lower is better" against a ceiling from issue 12. A figure that could not be measured
keeps `value = None` and says why in `note`; it counts as missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any


@dataclass(slots=True)
class Figure:
    """One measured figure: `value` against the ceiling `target`, in `unit`."""

    key: str
    label: str
    target: float
    unit: str = "x"
    value: float | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        """Whether the figure is measured and within its target."""
        return self.value is not None and self.value <= self.target

    def off(self) -> str:
        """How far from the target: "met", or the factor over it."""
        if self.value is None:
            return "not measured"
        if self.met:
            return "met"
        return f"{self.value / self.target:.2f}x over" if self.target else "over"


def _number(value: float, unit: str) -> str:
    if unit in {"x", ""}:
        return f"{value:.2f}"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def render(figures: Sequence[Figure]) -> str:
    """The table the bench prints, and the README shows."""
    rows = [("figure", "measured", "target", "")]
    for fig in figures:
        measured = "—" if fig.value is None else _number(fig.value, fig.unit)
        rows.append((fig.label, measured, f"≤ {_number(fig.target, fig.unit)}", fig.off()))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "system": f"{platform.system()} {platform.release()}",
        "date": time.strftime("%Y-%m-%d"),
    }


def write(path: Path, figures: Sequence[Figure], *, quick: bool) -> None:
    """The JSON results (git-ignored): the machine, and every figure with its target and verdict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": machine(),
        "quick": quick,
        "figures": [{**asdict(fig), "met": fig.met} for fig in figures],
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

"""docs/design.md draws the state machine the code has: its diagram is the transition table's."""

from __future__ import annotations

from pathlib import Path
import re

from custom_components.autoadd.registrar.machine import TRANSITIONS, state_diagram
from custom_components.autoadd.registrar.record import Phase

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"


def test_diagram_is_the_transition_table() -> None:
    """The Mermaid block in docs/design.md is exactly what machine.state_diagram() generates."""
    blocks = re.findall(r"```mermaid\n(.*?)\n```", DESIGN.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks == [state_diagram()]


def test_every_phase_is_documented_and_reachable() -> None:
    """Each phase has a row in the phase table and can be reached from `seen`."""
    text = DESIGN.read_text(encoding="utf-8")
    reached, frontier = {Phase.SEEN}, [Phase.SEEN]
    while frontier:
        source = frontier.pop()
        for src, dst in TRANSITIONS:
            if src is source and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(Phase)
    for phase in Phase:
        assert f"| `{phase.value}` |" in text

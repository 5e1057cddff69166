"""docs/protocol.md §13.1 links each attack to its test: every link names a test that exists."""

from __future__ import annotations

import ast
from pathlib import Path
import re

ROOT = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"### 13\.1 The security battery\n(.*?)\n## 14\.", re.DOTALL)
#: `file.py::test_name`, `::test_name` (same file as the link before), or `file.py` alone.
LINK = re.compile(r"`(?:((?:tests/device/)?test_\w+\.py))?(?:::(test_\w+))?`")


def functions_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_attack_links_to_a_test_that_exists() -> None:
    match = SECTION.search((ROOT / "docs" / "protocol.md").read_text())
    assert match is not None
    links: list[tuple[str, str | None]] = []
    current = ""
    for file, name in LINK.findall(match.group(1)):
        if not file and not name:
            continue
        current = file or current
        links.append((current, name or None))
    assert len(links) > 40
    for file, name in links:
        path = ROOT / file if file.startswith("tests/") else ROOT / "tests" / "security" / file
        assert path.exists(), file
        if name is not None:
            assert name in functions_of(path), f"{file}::{name}"
    linked = {file for file, _ in links}
    battery = {p.name for p in (ROOT / "tests" / "security").glob("test_*.py")}
    assert battery <= linked, battery - linked  # no file of the battery goes unmentioned

"""A conformance runner for AutoAdd devices: docs/protocol.md §7.5, §7.8, §8.4 and §9 checked over HTTP.

A device maker points it at their own device (`scripts/conformance --device http://HOST:PORT`); it sends
well-formed and deliberately broken messages, built with the protocol core, and prints one line per check
(`PASS`, `FAIL`, `SKIP`). The test suite runs it against the reference device, so the runner and the
reference device keep each other honest.
"""

from __future__ import annotations

from .results import Outcome, Result
from .runner import RunOptions, run

__all__ = ["Outcome", "Result", "RunOptions", "run"]

"""Fixtures: the integration tests' registrar entry and reference devices, for attacks on public surfaces."""

from __future__ import annotations

from tests.integration.conftest import *  # noqa: F403  (the same fixtures: a registrar entry, devices, impostors)

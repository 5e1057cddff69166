"""Shared fixtures.

The project's `custom_components` package must be imported before pytest-homeassistant-custom-component
puts its own on the path, so the integration under test is this one.
"""

from __future__ import annotations

from collections.abc import Iterator
import logging

import pytest

import custom_components.autoadd  # noqa: F401  (before Home Assistant's harness: see the module docstring)


class _Reports(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def no_deprecated_home_assistant_use() -> Iterator[None]:
    """Home Assistant reports an integration's use of a deprecated or wrong API through its frame helper's
    log, not as a Python warning: any such report about this integration fails the test. (Home Assistant
    reports each use once per process, so the first test that makes it fails.)"""
    reports = _Reports()
    logger = logging.getLogger("homeassistant.helpers.frame")
    logger.addHandler(reports)
    try:
        yield
    finally:
        logger.removeHandler(reports)
    ours = [message for message in reports.messages if "'autoadd'" in message]
    assert not ours, ours

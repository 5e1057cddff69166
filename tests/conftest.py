"""Shared fixtures.

The project's `custom_components` package must be imported before pytest-homeassistant-custom-component
puts its own on the path, so the integration under test is this one.
"""

from __future__ import annotations

import custom_components.autoadd  # noqa: F401  (import first: see the module docstring)

# What mypy sees as `voluptuous` (mypy_path in pyproject.toml). Home Assistant 2026.10, which .venv and so
# mypy check against, validates with probatio: it aliases `voluptuous` to probatio's drop-in
# (probatio.compat.install_as_voluptuous, in homeassistant/__init__.py) and types its flows, services and
# selectors with probatio's classes. The integration keeps `import voluptuous` because Home Assistant
# 2026.3 (the minimum, .venv-min) has no probatio; there the real voluptuous runs, with the same API.
from probatio import *  # noqa: F403  (all of probatio's voluptuous surface)

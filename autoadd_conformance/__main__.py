"""`python -m autoadd_conformance`: see cli.py (scripts/conformance runs this)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())

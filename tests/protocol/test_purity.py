"""The protocol core is pure: no Home Assistant, no I/O, so the device and vendor tool can run it as is.

Every module in custom_components/autoadd/protocol is read with `ast` (never imported here), and refused if it
imports Home Assistant in any form, imports an I/O module, reaches out of its package with a relative import
(which would load the integration and so Home Assistant), imports dynamically, or calls `open`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "custom_components" / "autoadd" / "protocol"
#: The registrar core: no Home Assistant and no I/O either; it may use asyncio for its own locks and
#: tasks (the host's ports do the I/O) and import the protocol core by its absolute name.
REGISTRAR = PROTOCOL.parent / "registrar"
CORE_ALLOWED = ("custom_components.autoadd.protocol", "custom_components.autoadd.registrar")

#: Modules that do I/O (network, files, processes, the event loop), by top-level name.
IO_MODULES = frozenset(
    {
        "aiofiles",
        "aiohttp",
        "asyncio",
        "fcntl",
        "ftplib",
        "glob",
        "http",
        "httpx",
        "io",
        "mmap",
        "multiprocessing",
        "os",
        "pathlib",
        "requests",
        "select",
        "selectors",
        "shutil",
        "smtplib",
        "socket",
        "socketserver",
        "ssl",
        "subprocess",
        "tempfile",
        "urllib",
        "urllib3",
        "zeroconf",
    }
)
FORBIDDEN = IO_MODULES | {"homeassistant", "importlib"}
FORBIDDEN_CALLS = frozenset({"open", "__import__", "exec", "eval", "compile"})


def _modules() -> list[Path]:
    return sorted(PROTOCOL.glob("*.py"))


def violations(source: str, *, core: bool = False) -> list[str]:
    """What in `source` breaks purity, one line per finding (`core`: the registrar core's rules)."""
    found: list[str] = []
    forbidden = FORBIDDEN - {"asyncio"} if core else FORBIDDEN
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in forbidden:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] in forbidden:
                found.append(f"line {node.lineno}: from {module} import ...")
            if node.level > 1:
                found.append(f"line {node.lineno}: relative import out of the package")
            if (
                node.level == 0
                and module.startswith("custom_components")
                and not (core and module.startswith(CORE_ALLOWED))
            ):
                found.append(f"line {node.lineno}: absolute import of the integration")
            if node.level == 1 and module == "" and any(a.name == "homeassistant" for a in node.names):
                found.append(f"line {node.lineno}: from . import homeassistant")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: call to {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr in {"open", "import_module"}:
                found.append(f"line {node.lineno}: call to .{func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "homeassistant" in node.value:
            found.append(f"line {node.lineno}: string naming homeassistant")
    return found


def test_all_modules_are_found() -> None:
    """The walk covers the whole core (so an empty glob cannot make the other tests pass)."""
    names = {path.stem for path in _modules()}
    assert names >= {
        "__init__",
        "certificates",
        "chain",
        "const",
        "cose",
        "encoding",
        "errors",
        "handshake",
        "home_key",
        "idevid",
        "keys",
        "manufacturer",
        "schema",
    }


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.name)
def test_module_is_pure(path: Path) -> None:
    """No Home Assistant, no I/O module, no relative import out of the package, no open()."""
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import homeassistant",
        "import homeassistant.core as core",
        "from homeassistant.core import HomeAssistant",
        "from homeassistant import config_entries",
        "import socket",
        "import os.path",
        "from pathlib import Path",
        "import asyncio",
        "from aiohttp import web",
        "import requests",
        "from urllib.request import urlopen",
        "import http.client",
        "import shutil",
        "import subprocess",
        "from io import BytesIO",
        "from .. import const",
        "from ..const import DOMAIN",
        "from custom_components.autoadd import const",
        "import importlib",
        "__import__('homeassistant')",
        "x = 'homeassistant.core'",
        "data = open('key.pem').read()",
        "with open('f', 'rb') as f: pass",
        "import io\nio.open('f')",
        "def f():\n    import socket",
        "if False:\n    from homeassistant.core import HomeAssistant",
    ],
)
def test_checker_catches(source: str) -> None:
    """The checker itself finds each kind of impurity, wherever it hides (functions, dead branches)."""
    assert violations(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import hashlib",
        "from . import cose",
        "from .keys import fingerprint",
        "import secrets",
        "from cryptography import x509",
        "import cbor2",
        "def f(x):\n    return x.open",
    ],
)
def test_checker_allows(source: str) -> None:
    """Pure imports and in-package relative imports pass."""
    assert violations(source) == []


def _core_modules() -> list[Path]:
    return sorted(REGISTRAR.glob("*.py"))


def test_all_core_modules_are_found() -> None:
    """The walk covers the registrar core too."""
    assert {path.stem for path in _core_modules()} >= {"core", "machine", "verdict", "record", "ports"}


@pytest.mark.parametrize("path", _core_modules(), ids=lambda path: path.name)
def test_core_module_is_pure(path: Path) -> None:
    """The registrar core: no Home Assistant, no I/O module, only the protocol and itself."""
    assert violations(path.read_text(encoding="utf-8"), core=True) == []


@pytest.mark.parametrize(
    "source",
    [
        "from homeassistant.core import HomeAssistant",
        "from custom_components.autoadd.storage import Stores",
        "from custom_components.autoadd import const",
        "from aiohttp import ClientSession",
        "import socket",
        "from ..storage import Stores",
    ],
)
def test_core_checker_catches(source: str) -> None:
    """The core's checker refuses Home Assistant, the integration's glue and I/O."""
    assert violations(source, core=True) != []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "from custom_components.autoadd.protocol.chain import extend",
        "from .record import Phase",
    ],
)
def test_core_checker_allows(source: str) -> None:
    """asyncio for its own locks, the protocol core by name, itself."""
    assert violations(source, core=True) == []

"""HACS and Home Assistant read the integration's metadata: it must be complete and consistent."""

from __future__ import annotations

import json
from pathlib import Path
import re
import tomllib

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

ROOT = Path(__file__).parents[2]
MANIFEST = json.loads((ROOT / "custom_components" / "autoadd" / "manifest.json").read_text())
HACS = json.loads((ROOT / "hacs.json").read_text())


async def test_home_assistant_loads_the_manifest(hass: HomeAssistant) -> None:
    """Home Assistant's own loader accepts the manifest of the custom integration."""
    integration = await async_get_integration(hass, "autoadd")
    assert integration.domain == "autoadd"
    assert integration.version == AwesomeVersion(MANIFEST["version"])
    assert integration.config_flow
    assert integration.single_config_entry
    assert integration.integration_type == "hub"
    assert integration.iot_class == "local_push"
    assert integration.manifest["zeroconf"] == ["_autoadd._tcp.local."]
    for dependency in integration.dependencies:
        await async_get_integration(hass, dependency)


def test_manifest_keys() -> None:
    """The keys Home Assistant and HACS require for a custom integration, in hassfest's order."""
    assert list(MANIFEST)[:2] == ["domain", "name"]
    assert list(MANIFEST)[2:] == sorted(list(MANIFEST)[2:])
    for key in ("codeowners", "documentation", "issue_tracker", "requirements", "version"):
        assert MANIFEST[key]
    assert all(re.fullmatch(r"[a-z0-9_.-]+==[0-9][0-9a-z.]*", req) for req in MANIFEST["requirements"])
    assert all(owner.startswith("@") for owner in MANIFEST["codeowners"])


def pinned_home_assistant(requirements: str) -> str:
    """The Home Assistant version a requirements file pins."""
    pins = re.findall(r"^homeassistant==(\S+)$", (ROOT / requirements).read_text(), re.MULTILINE)
    assert len(pins) == 1, pins
    return str(pins[0])


def test_hacs_metadata_matches() -> None:
    """hacs.json names the integration and, as its minimum, the oldest Home Assistant the tests run on
    (requirements_test_min.txt, .venv-min); this test runs on that one or on the newest."""
    assert HACS["name"] == MANIFEST["name"]
    minimum = pinned_home_assistant("requirements_test_min.txt")
    assert HACS["homeassistant"] == minimum
    assert HA_VERSION in (minimum, pinned_home_assistant("requirements_test.txt"))
    assert AwesomeVersion(minimum) <= AwesomeVersion(HA_VERSION)
    # The integration's own brand/ folder (its icon and logo, quality_scale.yaml's `brands`) is shown by
    # Home Assistant 2026.3 and newer only.
    assert AwesomeVersion(minimum) >= AwesomeVersion("2026.3.0")
    assert HACS.get("render_readme") is True


def test_changelog_names_the_version() -> None:
    """The changelog has an entry for the manifest's version."""
    assert f"## {MANIFEST['version']}" in (ROOT / "CHANGELOG.md").read_text()


def test_brand_images_exist() -> None:
    """HACS and HA show the integration's icon and logo."""
    brand = ROOT / "custom_components" / "autoadd" / "brand"
    for name in ("icon.png", "icon@2x.png", "logo.png", "logo@2x.png"):
        assert (brand / name).read_bytes().startswith(b"\x89PNG")


def test_the_license_file_is_the_one_pyproject_names() -> None:
    """HACS checks for a license file; it is the Apache License 2.0 text, as pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text

"""A real Home Assistant process for the demo and the end-to-end tests, and a small client for its API.

The configuration folder gets a minimal configuration.yaml (frontend, config), the HTTP settings in
storage, the integration from the working tree (a symlink), and optionally the network adapters Home
Assistant should use. Onboarding is
finished through the onboarding API, so an owner account exists and the frontend opens logged-in-able.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
CLIENT_ID_PATH = "/"


class HomeAssistantError(Exception):
    """Home Assistant did not start or answer as expected; the message says what happened."""


def write_config(config: Path, *, port: int, adapters: list[str] | None = None) -> None:
    """A minimal configuration with the integration from the working tree."""
    (config / "custom_components").mkdir(parents=True, exist_ok=True)
    link = config / "custom_components" / "autoadd"
    if not link.exists():
        link.symlink_to(REPO / "custom_components" / "autoadd", target_is_directory=True)
    (config / "configuration.yaml").write_text(
        "homeassistant:\n"
        "  name: AutoAdd demo\n"
        "  time_zone: UTC\n"
        "  country: NL\n"
        "  currency: EUR\n"
        "frontend:\n"
        "config:\n"
        "logbook:\n"
        "logger:\n"
        "  default: warning\n"
        "  logs:\n"
        "    custom_components.autoadd: info\n"
    )
    storage = config / ".storage"
    storage.mkdir(exist_ok=True)
    # Home Assistant 2026.10 keeps its HTTP settings in storage (an `http:` section in YAML is
    # deprecated: it is migrated once as an unconfirmed setting that reverts after five minutes). A
    # version-1 store, as older releases wrote it, is migrated through its own schema into the confirmed one.
    (storage / "http").write_text(
        json.dumps(
            {
                "version": 1,
                "minor_version": 1,
                "key": "http",
                "data": {"server_host": ["127.0.0.1"], "server_port": port},
            }
        )
    )
    # Every onboarding step but the owner account is marked done, so that Home Assistant sets up none of
    # the integrations its onboarding adds by default (some of them reach the internet).
    onboarding = storage / "onboarding"
    if not onboarding.exists():
        onboarding.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config", "analytics", "integration"]},
                }
            )
        )
    if adapters:
        storage = config / ".storage"
        storage.mkdir(exist_ok=True)
        (storage / "core.network").write_text(
            json.dumps(
                {
                    "version": 1,
                    "minor_version": 1,
                    "key": "core.network",
                    "data": {"configured_adapters": adapters},
                }
            )
        )


#: Lets the registrar contact devices on loopback (docs/protocol.md §10), which a real home never needs.
ALLOW_LOOPBACK_ENV = "AUTOADD_ALLOW_LOOPBACK"


class HomeAssistantProcess:
    """`python -m homeassistant -c CONFIG` with its output in CONFIG/hass.out.

    `allow_loopback` sets AUTOADD_ALLOW_LOOPBACK=1 in its environment: without a network namespace the
    demo's devices listen on 127.0.0.1, which the registrar otherwise refuses to contact."""

    def __init__(
        self, config: Path, port: int, *, allow_loopback: bool = True, adapters: list[str] | None = None
    ) -> None:
        """Not started yet (`adapters`: the network adapters its configuration names)."""
        self.config = config
        self.adapters = adapters
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.allow_loopback = allow_loopback
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, wait_seconds: float = 600.0) -> None:
        """Start and wait until the HTTP API answers (the first start installs the frontend: minutes)."""
        out = self.config / "hass.out"
        with out.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "homeassistant",
                "-c",
                str(self.config),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self._environment(),
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    raise HomeAssistantError(
                        f"Home Assistant exited with {self._process.returncode}; see {out}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(
                        f"{self.url}/api/onboarding", timeout=aiohttp.ClientTimeout(2)
                    ) as r:
                        if r.status in (200, 401):
                            return
                await asyncio.sleep(1)
        raise HomeAssistantError(f"Home Assistant did not answer within {wait_seconds:.0f} s; see {out}")

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != ALLOW_LOOPBACK_ENV}
        return {**env, ALLOW_LOOPBACK_ENV: "1"} if self.allow_loopback else env

    async def stop(self) -> None:
        """Stop Home Assistant (SIGTERM, then SIGKILL after 60 s)."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


class HomeAssistantClient:
    """The REST and WebSocket API of one Home Assistant, as the frontend uses them."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        """Use `token` (an access token) for every call."""
        self.session = session
        self.url = url
        self.token = token

    @classmethod
    async def onboard(
        cls, session: aiohttp.ClientSession, url: str, username: str, password: str
    ) -> HomeAssistantClient:
        """Finish onboarding (its other steps are marked done by write_config) with a new owner account;
        return a client logged in as that owner."""
        client_id = url + CLIENT_ID_PATH
        async with session.post(
            f"{url}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Demo owner",
                "username": username,
                "password": password,
                "language": "en",
            },
        ) as response:
            if response.status != 200:
                raise HomeAssistantError(f"onboarding refused the owner account: {response.status}")
            code = (await response.json())["auth_code"]
        async with session.post(
            f"{url}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
        ) as response:
            token = (await response.json())["access_token"]
        return cls(session, url, token)

    async def post(self, path: str, data: dict[str, Any]) -> Any:
        """POST JSON, return the JSON answer."""
        async with self.session.post(
            self.url + path, json=data, headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            if response.status >= 400:
                raise HomeAssistantError(f"POST {path}: {response.status} {await response.text()}")
            return await response.json()

    async def get(self, path: str) -> Any:
        """GET, return the JSON answer."""
        async with self.session.get(self.url + path, headers={"Authorization": f"Bearer {self.token}"}) as r:
            if r.status >= 400:
                raise HomeAssistantError(f"GET {path}: {r.status} {await r.text()}")
            return await r.json()

    async def config_flow(
        self, handler: str, steps: list[dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Run a config flow through the steps a user would submit (each a form's data, or what to submit
        given the form shown, as a user who reads it); return every result."""
        results = [await self.post("/api/config/config_entries/flow", {"handler": handler})]
        for step in steps:
            data = step(results[-1]) if callable(step) else step
            results.append(await self.post(f"/api/config/config_entries/flow/{results[-1]['flow_id']}", data))
        return results

    async def options_flow(self, entry_id: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run an options flow through the given submissions; return every result."""
        results = [await self.post("/api/config/config_entries/options/flow", {"handler": entry_id})]
        for data in steps:
            results.append(
                await self.post(f"/api/config/config_entries/options/flow/{results[-1]['flow_id']}", data)
            )
        return results

    async def repair_fix(self, issue_id: str, choice: str | dict[str, Any]) -> dict[str, Any]:
        """Answer a repair issue's fix flow: a menu with `choice`, or a form with its values."""
        flow = await self.post("/api/repairs/issues/fix", {"handler": "autoadd", "issue_id": issue_id})
        answer = {"next_step_id": choice} if isinstance(choice, str) else choice
        result: dict[str, Any] = await self.post(f"/api/repairs/issues/fix/{flow['flow_id']}", answer)
        return result

    async def diagnostics(self, entry_id: str, wait: float = 120.0) -> dict[str, Any]:
        """The integration's diagnostics for the entry. Home Assistant registers an integration's
        diagnostics platform in the background after the entry loads, answering 404 until then: that is
        waited out (up to `wait` seconds: on a loaded 2-core CI machine it once took over 30), anything
        else raised at once."""
        path = f"/api/diagnostics/config_entry/{entry_id}"
        deadline = asyncio.get_running_loop().time() + wait
        headers = {"Authorization": f"Bearer {self.token}"}
        while True:
            async with self.session.get(self.url + path, headers=headers) as r:
                if r.status == 404 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.5)
                    continue
                if r.status >= 400:
                    raise HomeAssistantError(f"GET {path}: {r.status} {await r.text()}")
                data: dict[str, Any] = (await r.json())["data"]
                return data

    @contextlib.asynccontextmanager
    async def websocket(self) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """An authenticated WebSocket connection."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json())["type"] != "auth_ok":
                raise HomeAssistantError("the WebSocket API refused the token")
            yield ws

    async def repair_issues(self) -> list[dict[str, Any]]:
        """The open repair issues."""
        async with self.websocket() as ws:
            await ws.send_json({"id": 1, "type": "repairs/list_issues"})
            issues: list[dict[str, Any]] = (await ws.receive_json())["result"]["issues"]
            return issues

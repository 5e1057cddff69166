"""Upgrading from 0.1.0: the store its own code wrote (fixtures/store_0_1_0, see its README) is migrated,
every device, key, link, approval, refusal, block and history entry kept in the right phase (diagnostics,
sensors, repairs and actions where they show it, the registrar state otherwise). No device answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import copy
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import DOMAIN
from custom_components.autoadd.protocol.chain import decode_chain, verify_chain
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import format_fingerprint
from custom_components.autoadd.registrar.candidates import REFUSAL_KEEP
from custom_components.autoadd.registrar.handover import transfer_file
from custom_components.autoadd.registrar.migration import migrate
from custom_components.autoadd.registrar.ports import DeviceUnreachableError
from custom_components.autoadd.registrar.record import Address, ChangeKind, Phase, Refusal, unb64
from custom_components.autoadd.registrar.state import RegistrarState
from custom_components.autoadd.runtime import HassRuntime
from custom_components.autoadd.services import SERVICE_HAND_OVER_DEVICE
from custom_components.autoadd.storage import HOME_KEY_STORE, REGISTRAR_STORE
from tests.factory import fixed_key

from .conftest import onboarding_state, registered, registrar_of, settle

FIXTURE = Path(__file__).parent / "fixtures" / "store_0_1_0"
REGISTRAR_V1: dict[str, Any] = json.loads((FIXTURE / "autoadd.registrar.json").read_text())
HOME_KEY_V1: dict[str, Any] = json.loads((FIXTURE / "autoadd.home_key.json").read_text())
FACTS: dict[str, dict[str, str]] = json.loads((FIXTURE / "states.json").read_text())
V1: dict[str, Any] = REGISTRAR_V1["data"]
#: A few hours after the fixture's last write (its refusal is dated 2026-06-15 09:08 UTC).
WRITTEN_AT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
ID = FACTS["states"]
KEY = FACTS["keys"]
FIX_PATH = "/api/repairs/issues/fix"

#: The phase each 0.1.0 state becomes (README: "Devices, by state").
PHASES = {
    "onboarded_idle": Phase.ONBOARDED,
    "pending_rotation": Phase.CHANGING_OWNER,
    "pending_handover": Phase.CHANGING_OWNER,
    "awaiting": Phase.AWAITING_APPROVAL,
    "rejected": Phase.REJECTED,
    "approved_transfer": Phase.APPROVED,
    "blocked": Phase.BLOCKED,
    "removed": Phase.REMOVED,
    "refused_not_owner": Phase.SEEN,
    "pending_unreachable": Phase.SEEN,
    "revoked_manufacturer": Phase.ONBOARDED,
}
#: What each member's onboarding_state sensor says.
SENSOR_STATES = {
    "onboarded_idle": "onboarded",
    "pending_rotation": "rotation_pending",
    "pending_handover": "handover_pending",
    "blocked": "blocked",
    "revoked_manufacturer": "revoked",
}


class Unreachable:
    """A device connection that never gets an answer (hello, note and links alike)."""

    async def _no_answer(self, *_: object) -> Any:
        raise DeviceUnreachableError("no device answers in this test")

    hello = note = links = _no_answer


@pytest.fixture
def contacted() -> Iterator[list[Address]]:
    """Every address the registrar tries (none answers)."""
    tried: list[Address] = []

    def transport(_runtime: HassRuntime, host: str, port: int) -> Unreachable:
        tried.append(Address(host, port))
        return Unreachable()

    with patch.object(HassRuntime, "transport", transport):
        yield tried


@pytest.fixture
def storage_0_1_0(hass_storage: dict[str, Any]) -> dict[str, Any]:
    """Home Assistant's storage holding what 0.1.0 wrote."""
    hass_storage[REGISTRAR_STORE] = copy.deepcopy(REGISTRAR_V1)
    hass_storage[HOME_KEY_STORE] = copy.deepcopy(HOME_KEY_V1)
    return hass_storage


@pytest.fixture
async def migrated(
    hass: HomeAssistant,
    storage_0_1_0: dict[str, Any],
    entry: MockConfigEntry,
    contacted: list[Address],
    freezer: FrozenDateTimeFactory,
) -> AsyncIterator[MockConfigEntry]:
    """The entry set up on the 0.1.0 store (unloaded after the test), a few hours after 0.1.0 wrote it
    (a week later its refusal of an unknown device would have aged out: test_refusal_ages_out)."""
    freezer.move_to(WRITTEN_AT)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_refusal_ages_out(
    hass: HomeAssistant,
    storage_0_1_0: dict[str, Any],
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    contacted: list[Address],
) -> None:
    """Started a week after 0.1.0 wrote it, the store no longer holds the refusal of an unknown device
    (refusals are kept for a week, so that a flood of fake ids can't fill the store)."""
    freezer.move_to(WRITTEN_AT + REFUSAL_KEEP + timedelta(minutes=1))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    devices = registrar_of(entry).state.devices
    assert ID["refused_not_owner"] not in devices
    assert {ID["awaiting"], ID["rejected"]} <= set(devices)  # only refusals of unknown ids age out
    assert await hass.config_entries.async_unload(entry.entry_id)


def old_device(name: str) -> dict[str, Any]:
    """A device's entry in 0.1.0's `devices` map."""
    return dict(V1["devices"][ID[name]])


def stored_state(storage: dict[str, Any]) -> RegistrarState:
    """What the registrar store holds now."""
    return RegistrarState.from_dict(storage[REGISTRAR_STORE]["data"])


async def test_store_is_rewritten_at_version_2(
    migrated: MockConfigEntry, storage_0_1_0: dict[str, Any]
) -> None:
    """The registrar store is written back at version 2, one record per device, in a form that reads back
    whole; the key store (still version 1) is left as 0.1.0 wrote it."""
    envelope = storage_0_1_0[REGISTRAR_STORE]
    assert (envelope["version"], envelope["minor_version"], envelope["key"]) == (2, 1, REGISTRAR_STORE)
    assert set(envelope["data"]) == {
        "roots",
        "devices",
        "revoked_roots",
        "rotation",
        "waiting_roots",
        "rejected_roots",
    }
    assert set(envelope["data"]["devices"]) == set(ID.values())
    assert stored_state(storage_0_1_0).as_dict() == envelope["data"]
    assert storage_0_1_0[HOME_KEY_STORE] == HOME_KEY_V1


async def test_every_device_keeps_its_phase(
    hass: HomeAssistant,
    migrated: MockConfigEntry,
    storage_0_1_0: dict[str, Any],
    hass_client: ClientSessionGenerator,
) -> None:
    """Every device of the README is stored in its phase, and diagnostics and sensors show it (the
    pending hand-over after start: test_pending_hand_over_stays_pending_after_start)."""
    expected = {ID[name]: phase for name, phase in PHASES.items()}
    assert {k: record.phase for k, record in stored_state(storage_0_1_0).devices.items()} == expected
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, migrated)
    shown = {ID[name]: phase.value for name, phase in PHASES.items() if name != "pending_handover"}
    assert {k: v for k, v in diagnostics["phases"].items() if k in shown} == shown
    members = {device["device_id"]: device for device in diagnostics["devices"]}
    assert set(members) == {ID[name] for name in SENSOR_STATES}
    for name, state in SENSOR_STATES.items():
        assert registered(hass, ID[name]) is not None, name
        assert members[ID[name]]["chain_length"] == len(old_device(name)["chain"]), name
        if name != "pending_handover":
            assert onboarding_state(hass, ID[name]) == state, name
    assert members[ID["pending_rotation"]]["change"] == "rotate"
    assert members[ID["pending_handover"]]["change"] == "handover"
    assert not any(device["change_sent"] for device in members.values())


async def test_devices_keep_chains_owners_and_addresses(migrated: MockConfigEntry) -> None:
    """Chains, owners, roots, addresses, flags and retry addresses are 0.1.0's; a blocked device
    remembers it was onboarded."""
    devices = registrar_of(migrated).state.devices
    for name in SENSOR_STATES:
        old, record = old_device(name), devices[ID[name]]
        assert record.chain == [unb64(link) for link in old["chain"]], name
        for field in ("manufacturer", "model", "serial_number", "manufacturer_root", "owners", "last_seen"):
            assert getattr(record, field) == old[field], (name, field)
        assert record.onboarded_at == old["onboarded_at"], name
        assert record.address == Address(old["host"], old["port"]), name
        assert record.is_member, name
    assert devices[ID["revoked_manufacturer"]].flags == ["revoked_manufacturer"]
    blocked = devices[ID["blocked"]]
    assert (blocked.flags, blocked.blocked_from, blocked.change) == ([], Phase.ONBOARDED, None)
    assert devices[ID["onboarded_idle"]].change is None
    for device_id, where in V1["pending"].items():
        assert devices[device_id].hint == Address(where["host"], where["port"])


async def test_start_tries_only_what_it_should(migrated: MockConfigEntry, contacted: list[Address]) -> None:
    """At start the registrar delivers pending links, checks members and retries the unreachable device;
    it never contacts the blocked, awaiting, rejected, refused or removed ones."""
    tried = ("onboarded_idle", "pending_rotation", "pending_handover", "revoked_manufacturer")
    expected = {Address(old_device(name)["host"], old_device(name)["port"]) for name in tried}
    expected.add(Address(**V1["pending"][ID["pending_unreachable"]]))
    assert set(contacted) == expected


async def test_pending_links_are_kept(migrated: MockConfigEntry) -> None:
    """The rotate link an offline device never got is still to be delivered (the rotation stays on); the
    hand-over signed over a pending rotate link is kept, its transfer file verifying from Acme to buyer."""
    registrar = registrar_of(migrated)
    change = registrar.state.devices[ID["pending_rotation"]].change
    assert change is not None
    assert change.kind is ChangeKind.ROTATE
    assert change.links == [unb64(link) for link in old_device("pending_rotation")["pending_links"]]
    assert (change.rotation, change.sent, change.superseded) == (True, False, [])
    assert registrar.state.rotation == V1["rotation"]

    old = old_device("pending_handover")
    change = registrar.state.devices[ID["pending_handover"]].change
    assert change is not None
    assert change.kind is ChangeKind.HANDOVER
    assert change.links == [*(unb64(link) for link in old["pending_links"]), unb64(old["handover"]["link"])]
    assert (change.new_owner, change.at) == (KEY["buyer"], old["handover"]["at"])
    assert (change.rotation, change.sent, change.superseded) == (True, False, [])

    transfer = decode_chain(transfer_file(registrar, ID["pending_handover"]))
    chain = verify_chain(transfer, roots=registrar.roots, now=datetime.now(UTC))
    assert list(chain.links) == [*(unb64(link) for link in old["chain"]), *change.links]
    assert [owner.hex() for owner in chain.head.owner_fingerprints] == [KEY["buyer"]]


async def test_pending_hand_over_stays_pending_after_start(
    hass: HomeAssistant, migrated: MockConfigEntry
) -> None:
    """After start the device still waits for its hand-over: no key lost, no second hand-over."""
    device_id = ID["pending_handover"]
    assert onboarding_state(hass, device_id) == "handover_pending"
    assert registrar_of(migrated).state.devices[device_id].phase is Phase.CHANGING_OWNER
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"key_lost_{device_id}") is None
    device = registered(hass, device_id)
    assert device is not None
    call = {"device_id": device.id, "new_owner": format_home_key(fixed_key("buyer home").public_key())}
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(DOMAIN, SERVICE_HAND_OVER_DEVICE, call, blocking=True)
    assert raised.value.translation_key == "handover_in_progress"


async def test_approval_rejection_and_refusal_are_kept(
    hass: HomeAssistant, migrated: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """The device awaiting approval, the accepted transfer file, the rejected head and the refusal."""
    devices = registrar_of(migrated).state.devices
    waiting = V1["awaiting"][ID["awaiting"]]
    awaiting = devices[ID["awaiting"]]
    assert awaiting.approval is not None
    assert (awaiting.approval.head, awaiting.approval.previous_owner) == (waiting["head"], KEY["seller"])
    assert awaiting.hint == Address(waiting["host"], waiting["port"])

    accepted = V1["approvals"][ID["approved_transfer"]]
    approved = devices[ID["approved_transfer"]].approval
    assert approved is not None
    assert (approved.head, approved.previous_owner) == (accepted["head"], KEY["seller"])
    assert approved.transfer == [unb64(link) for link in accepted["links"]]
    assert getattr(devices[ID["rejected"]].approval, "head", None) == V1["rejected"][ID["rejected"]]

    old = V1["refused"][ID["refused_not_owner"]]
    assert devices[ID["refused_not_owner"]].refusal == Refusal.from_dict(old)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, migrated)
    asked = [
        (a["device_id"], a["serial_number"], a["previous_owner"]) for a in diagnostics["awaiting_approval"]
    ]
    assert asked == [(ID["awaiting"], "SN0004", format_fingerprint(bytes.fromhex(KEY["seller"])))]
    refused = [(r["device_id"], r["code"], r["at"]) for r in diagnostics["refused"]]
    assert refused == [(ID["refused_not_owner"], "not_owner", old["at"])]


async def test_an_approval_asked_by_0_1_0_can_still_be_answered(
    hass: HomeAssistant, migrated: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """0.1.0's approval issue is persistent (Home Assistant keeps it over the upgrade); its fix flow still
    shows the device and the seller, and accepting approves the migrated device."""
    device_id = ID["awaiting"]
    ir.async_create_issue(  # as 0.1.0's _await_approval created it
        hass,
        DOMAIN,
        f"approve_{device_id}",
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="approve_device",
        translation_placeholders={"manufacturer": "Acme", "model": "Lamp 1", "device": device_id[:16]},
        data={"device_id": device_id},
    )
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    client = await hass_client()
    response = await client.post(FIX_PATH, json={"handler": DOMAIN, "issue_id": f"approve_{device_id}"})
    assert response.status == HTTPStatus.OK
    flow: dict[str, Any] = await response.json()
    assert flow["type"] == "menu"
    shown = flow["description_placeholders"]  # the flow reads the migrated record
    assert (shown["device"], shown["serial_number"]) == (device_id[:16], "SN0004")
    assert shown["previous_owner"] == format_fingerprint(bytes.fromhex(KEY["seller"]))
    response = await client.post(f"{FIX_PATH}/{flow['flow_id']}", json={"next_step_id": "accept"})
    assert response.status == HTTPStatus.OK
    await settle(hass)

    assert registrar_of(migrated).state.devices[device_id].phase is Phase.APPROVED
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"approve_{device_id}") is None


async def test_history_is_kept(
    hass: HomeAssistant, migrated: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """All 21 events of 0.1.0's history, in order, first in each device's history; the removal, which
    0.1.0 kept outside the history, is added as an event."""
    assert sum(len(events) for events in V1["history"].values()) == 21
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, migrated)
    history = diagnostics["history"]
    for device_id, events in V1["history"].items():
        assert history[device_id][: len(events)] == events, device_id
    added = history[ID["removed"]][len(V1["history"][ID["removed"]]) :]
    assert added == [{"at": V1["removed"][ID["removed"]], "event": "removed"}]
    assert not {ID["refused_not_owner"], ID["pending_unreachable"]} & set(history)  # 0.1.0 kept none


async def test_history_gains_nothing_0_1_0_already_recorded(
    storage_0_1_0: dict[str, Any], migrated: MockConfigEntry
) -> None:
    """The migrated history is 0.1.0's, plus only the removal event 0.1.0 kept elsewhere."""
    stored = stored_state(storage_0_1_0)
    expected = copy.deepcopy(V1["history"])
    expected[ID["removed"]].append({"at": V1["removed"][ID["removed"]], "event": "removed"})
    assert {k: r.history for k, r in stored.devices.items() if r.history} == expected


async def test_home_keys_and_manufacturers_are_kept(
    hass: HomeAssistant, migrated: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """The current key, the retired key with its private part, the trusted and the revoked roots."""
    registrar, old, new = registrar_of(migrated), KEY["home_before_rotation"], KEY["home_after_rotation"]
    assert (registrar.home.fingerprint.hex(), registrar.keys.staged) == (new, None)
    assert {digest.hex() for digest in registrar.keys.held()} == {old, new}
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, migrated)
    assert diagnostics["home_key"]["fingerprint"] == format_fingerprint(bytes.fromhex(new))
    retired_at = HOME_KEY_V1["data"]["retired"][0]["retired_at"]

    def shown(digest: str) -> str:  # diagnostics show fingerprints as every screen does
        return format_fingerprint(bytes.fromhex(digest))

    assert diagnostics["retired_home_keys"] == [
        {"fingerprint": shown(old), "retired_at": retired_at, "private_key_kept": True}
    ]
    rotation = V1["rotation"]
    assert diagnostics["rotation"] == {
        **rotation,
        "old": shown(rotation["old"]),
        "new": shown(rotation["new"]),
    }
    assert diagnostics["revoked_manufacturers"] == {shown(k): v for k, v in V1["revoked_roots"].items()}
    assert set(V1["revoked_roots"]) == {FACTS["roots"]["Globex"]}
    assert [(root["name"], root["fingerprint"]) for root in diagnostics["trusted_manufacturers"]] == [
        ("Acme", shown(FACTS["roots"]["Acme"]))
    ]


async def test_a_second_load_gives_the_same_state(
    hass: HomeAssistant, migrated: MockConfigEntry, storage_0_1_0: dict[str, Any]
) -> None:
    """Unloaded and set up again, the migrated store (version 2, not migrated again) reads back the same."""
    before = registrar_of(migrated).state.as_dict()
    assert await hass.config_entries.async_unload(migrated.entry_id)
    written = copy.deepcopy(storage_0_1_0[REGISTRAR_STORE])
    assert (written["version"], written["data"]) == (2, before)

    with patch("custom_components.autoadd.storage.migrate") as migrate:
        assert await hass.config_entries.async_setup(migrated.entry_id)
        await settle(hass)
    migrate.assert_not_called()
    assert migrated.state is ConfigEntryState.LOADED
    assert registrar_of(migrated).state.as_dict() == before
    assert storage_0_1_0[REGISTRAR_STORE] == written
    assert storage_0_1_0[HOME_KEY_STORE] == HOME_KEY_V1


async def test_a_newer_store_fails_setup(
    hass: HomeAssistant, storage_0_1_0: dict[str, Any], entry: MockConfigEntry, contacted: list[Address]
) -> None:
    """A store written by a later release (version 3) is not read: setup fails and the file is untouched."""
    data = migrate(1, copy.deepcopy(V1))
    data["devices"][ID["onboarded_idle"]]["from_a_later_release"] = {"kept": True}
    storage_0_1_0[REGISTRAR_STORE] = {"version": 3, "minor_version": 1, "key": REGISTRAR_STORE, "data": data}
    newer = copy.deepcopy(storage_0_1_0[REGISTRAR_STORE])

    await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    try:
        assert entry.state is ConfigEntryState.SETUP_ERROR
        assert storage_0_1_0[REGISTRAR_STORE] == newer
    finally:
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)

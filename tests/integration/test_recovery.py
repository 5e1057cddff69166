"""The recovery key (§14.8): made at set-up or later (shown once, typed back), a co-owner of every device,
kept by rotations, removable; and a home restored with it on a fresh Home Assistant, or over an older
backup. Reference devices over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
import json
from typing import Any
from unittest.mock import MagicMock

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.autoadd.const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from custom_components.autoadd.protocol import cose
from custom_components.autoadd.protocol.certificates import certificate_public_key
from custom_components.autoadd.protocol.chain import issue_link
from custom_components.autoadd.protocol.const import ContentType, LinkReason
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_keys
from custom_components.autoadd.protocol.keys import (
    PrivateKey,
    fingerprint,
    private_key_to_pem,
    public_key_to_pem,
)
from custom_components.autoadd.protocol.recovery_key import format_recovery_key
from custom_components.autoadd.registrar import new_manufacturers
from custom_components.autoadd.registrar.record import Phase
from custom_components.autoadd.storage import HOME_KEY_STORE, REGISTRAR_STORE
from tests.factory import NOW_TS, Manufacturer, fixed_key
from tests.reference_device import RunningDevice

from .conftest import device_announces, onboard, registered, registrar_of, rotate, settle, stored
from .mdns import patched_mdns
from .offering import Start, offering, stranger
from .test_options_lifecycle import (
    handed_over_offline,
    open_options,
    placeholders,
    registrar_writes_fail,
    submit,
    writes_fail,
)

__all__ = ["offering", "stranger"]  # fixtures, used by name


@pytest.fixture
def recovery() -> PrivateKey:
    """The home's recovery key, as its owner keeps it on paper."""
    return fixed_key("integration recovery")


def key_store(home: PrivateKey, recovery: PrivateKey | None, *, holding: bool = False) -> dict[str, Any]:
    """The key store of a home whose key is `home`, with the public part of `recovery` (and, while
    restoring, its private part)."""
    data: dict[str, Any] = {
        "current": {
            "private_pem": private_key_to_pem(home).decode(),
            "key_type": "ed25519",
            "created_at": "2026-06-01T00:00:00+00:00",
        },
        "staged": None,
        "retired": [],
        "kept": {},
        "recovery": None,
    }
    if recovery is not None:
        data["recovery"] = {
            "public_pem": public_key_to_pem(recovery.public_key()).decode(),
            "created_at": "2026-06-01T00:00:00+00:00",
            "private_pem": private_key_to_pem(recovery).decode() if holding else None,
        }
    return stored(HOME_KEY_STORE, data)


@pytest.fixture
def with_recovery(hass_storage_with_home: dict[str, Any], home: PrivateKey, recovery: PrivateKey) -> None:
    """This home has a recovery key."""
    hass_storage_with_home[HOME_KEY_STORE] = key_store(home, recovery)


def owners_of(device: RunningDevice) -> tuple[bytes, ...]:
    assert device.device is not None
    return device.device.chain.head.owner_fingerprints


def fp(key: PrivateKey) -> bytes:
    return fingerprint(key.public_key())


async def user_step(hass: HomeAssistant, **fields: Any) -> Any:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOME_NAME: "Home", CONF_KEY_TYPE: "ed25519", **fields}
    )


# --- making one ----------------------------------------------------------------------------------------


async def test_set_up_shows_a_recovery_key_once_and_keeps_only_its_public_part(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """The recovery key is shown as text (and QR code) once; set-up goes on only when its last group is
    typed back; the home key string then names both keys; the private part is stored nowhere."""
    result = await user_step(hass)
    assert result["step_id"] == "new_recovery_key"
    text = placeholders(result)["recovery_key"]
    assert text.startswith("AARK1-")
    assert HOME_KEY_STORE in hass_storage  # the home key is on disk first; the recovery key is not yet
    assert hass_storage[HOME_KEY_STORE]["data"].get("recovery") is None

    flow = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow, {"confirm_characters": "22222"})
    assert result["errors"] == {"confirm_characters": "recovery_mismatch"}
    assert placeholders(result)["recovery_key"] == text  # the same key, shown again
    result = await hass.config_entries.flow.async_configure(flow, {"confirm_characters": text[-5:].lower()})
    assert result["step_id"] == "home_key"
    home, shown_recovery = parse_home_keys(placeholders(result)["home_key"])
    result = await hass.config_entries.flow.async_configure(flow, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    stored_keys = hass_storage[HOME_KEY_STORE]["data"]
    assert stored_keys["recovery"]["private_pem"] is None
    assert stored_keys["recovery"]["public_pem"] == public_key_to_pem(shown_recovery).decode()
    everything = json.dumps(hass_storage)
    assert text not in everything
    assert text.replace("-", "") not in everything
    registrar = registrar_of(hass.config_entries.async_entries(DOMAIN)[0])
    assert registrar.keys.recovery is not None
    assert registrar.keys.recovery.key is None
    assert fingerprint(home) == registrar.keys.current.fingerprint


async def test_set_up_without_a_recovery_key(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    """Turning the switch off skips it: the home key string names one key."""
    result = await user_step(hass, make_recovery_key=False)
    assert result["step_id"] == "home_key"
    assert placeholders(result)["home_key"].startswith("AAHK1-")


async def test_invoices_name_both_keys_and_rotations_keep_the_recovery_key(
    hass: HomeAssistant,
    with_recovery: None,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
) -> None:
    """A device invoiced to the home key string (both keys) is added as any; a rotation moves the home
    key and keeps the recovery key as a co-owner."""
    device: RunningDevice = await devices([home, recovery])
    await onboard(hass, loaded, device)
    await rotate(hass)
    registrar = registrar_of(loaded)
    assert owners_of(device) == (registrar.keys.current.fingerprint, fp(recovery))


async def test_an_existing_home_makes_a_recovery_key_and_a_rotation_adds_it(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """Configure → recovery key: shown once, typed back; then every device names it (a rotation)."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    result = await open_options(hass, loaded, "recovery_key")
    assert result["step_id"] == "new_recovery_key"
    text = placeholders(result)["recovery_key"]
    result = await submit(hass, result, {"confirm_characters": text[-5:]})
    await settle(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "recovery_key_made"
    registrar = registrar_of(loaded)
    assert registrar.keys.recovery is not None
    assert owners_of(device) == (registrar.keys.current.fingerprint, registrar.keys.recovery.fingerprint)


async def test_removing_the_recovery_key_takes_it_off_every_device(
    hass: HomeAssistant,
    with_recovery: None,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
) -> None:
    """Configure → recovery key, on a home that has one: confirmed, a rotation leaves it out."""
    device: RunningDevice = await devices([home, recovery])
    await onboard(hass, loaded, device)
    result = await open_options(hass, loaded, "recovery_key")
    assert result["step_id"] == "recovery_key"
    result = await submit(hass, result, {"confirm": False})
    assert result["errors"] == {"confirm": "not_confirmed"}
    result = await submit(hass, result, {"confirm": True})
    await settle(hass)
    assert result["reason"] == "recovery_key_removed"
    registrar = registrar_of(loaded)
    assert registrar.keys.recovery is None
    assert owners_of(device) == (registrar.keys.current.fingerprint,)


# --- restoring -----------------------------------------------------------------------------------------


async def fresh_home_assistant(
    hass: HomeAssistant, hass_storage: dict[str, Any], entry: MockConfigEntry
) -> None:
    """The Home Assistant is lost with no backup: nothing of AutoAdd is left."""
    assert await hass.config_entries.async_remove(entry.entry_id)
    hass_storage.pop(HOME_KEY_STORE, None)
    hass_storage.pop(REGISTRAR_STORE, None)


async def restore(
    hass: HomeAssistant, text: str, trusted: list[dict[str, str]], hass_storage: dict[str, Any]
) -> Any:
    """Set AutoAdd up again, restoring from a recovery key string; the owner trusts the manufacturer."""
    result = await user_step(hass, restore=True)
    assert result["step_id"] == "restore"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"recovery_key": text})
    if result["type"] is not FlowResultType.FORM or result["step_id"] != "home_key":
        return result
    hass_storage[REGISTRAR_STORE] = stored(REGISTRAR_STORE, {"roots": trusted, "devices": {}})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await settle(hass)
    return result


async def test_a_home_is_restored_from_its_recovery_key_on_a_fresh_home_assistant(
    hass: HomeAssistant,
    with_recovery: None,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """A new home key is made; each device that names the recovery key is moved to it by a rotation
    link the recovery key signs, and added with no question; the owner is told while the key is held,
    and finishing forgets it."""
    device: RunningDevice = await devices([home, recovery])
    await onboard(hass, loaded, device)
    await fresh_home_assistant(hass, hass_storage, loaded)

    result = await restore(hass, format_recovery_key(recovery), trusted, hass_storage)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    registrar = registrar_of(entry)
    assert registrar.keys.current.fingerprint != fp(home)
    assert ir.async_get(hass).async_get_issue(DOMAIN, "restoring") is not None

    await device_announces(hass, entry, device, claimed=True)
    assert registered(hass, device.spec.device_id.hex()) is not None
    assert owners_of(device) == (registrar.keys.current.fingerprint, fp(recovery))
    assert device.device is not None
    restore_link = cose.parse(device.device.chain.links[-1], ContentType.LINK, max_size=16384, what="link")
    assert restore_link.kid == fp(recovery)  # signed by the recovery key
    assert not [i for (d, i) in ir.async_get(hass).issues if d == DOMAIN and i.startswith("approve_")]

    result = await open_options(hass, entry, "finish_restore")
    result = await submit(hass, result, {"confirm": True})
    assert result["reason"] == "restore_finished"
    assert registrar.keys.recovery is not None
    assert registrar.keys.recovery.key is None
    assert hass_storage[HOME_KEY_STORE]["data"]["recovery"]["private_pem"] is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, "restoring") is None


async def test_a_recovery_key_of_another_home_moves_nothing(
    hass: HomeAssistant,
    with_recovery: None,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
    hass_storage: dict[str, Any],
    trusted: list[dict[str, str]],
) -> None:
    """Restored with someone else's recovery key, this home's devices are refused (`not_owner`) and
    nothing is signed; where the home knows its recovery key, another one is refused at once."""
    device: RunningDevice = await devices([home, recovery])
    await onboard(hass, loaded, device)
    chain_before = owners_of(device)

    result = await open_options(hass, loaded, "restore_from_recovery_key")
    result = await submit(hass, result, {"recovery_key": format_recovery_key(fixed_key("another home's"))})
    assert result["errors"] == {"recovery_key": "not_this_home"}
    kept = registrar_of(loaded).keys.recovery
    assert kept is not None
    assert kept.key is None

    await fresh_home_assistant(hass, hass_storage, loaded)
    result = await restore(hass, format_recovery_key(fixed_key("another home's")), trusted, hass_storage)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await device_announces(hass, entry, device, claimed=True)
    record = registrar_of(entry).state.devices[device.spec.device_id.hex()]
    assert record.refusal is not None
    assert record.refusal.code == "not_owner"
    assert owners_of(device) == chain_before
    assert registered(hass, device.spec.device_id.hex()) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("AAHK1-AAAAA", "recovery_prefix"),
        ("AARK1-AAAAA", "recovery_length"),
        ("AARK1-" + "A" * 59 + "0", "recovery_characters"),
    ],
)
async def test_a_mistyped_recovery_key_is_refused_with_its_reason(
    hass: HomeAssistant, hass_storage: dict[str, Any], text: str, error: str
) -> None:
    result = await user_step(hass, restore=True)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"recovery_key": text})
    assert result["errors"] == {"recovery_key": error}
    assert HOME_KEY_STORE not in hass_storage  # nothing is made before the key reads


async def test_a_typo_in_the_recovery_key_is_a_checksum_error(
    hass: HomeAssistant, hass_storage: dict[str, Any], recovery: PrivateKey
) -> None:
    text = format_recovery_key(recovery).replace("-", "")
    typo = text[:20] + ("B" if text[20] == "A" else "A") + text[21:]
    result = await user_step(hass, restore=True)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"recovery_key": typo})
    assert result["errors"] == {"recovery_key": "recovery_checksum"}


async def test_restoring_over_an_older_backup_moves_the_devices_its_key_lost(
    hass: HomeAssistant,
    with_recovery: None,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
    auto_mock_zeroconf: MagicMock,
) -> None:
    """The backup holds an older home key than the one its devices moved to: as far as it can tell they
    are someone else's. Restoring with the recovery key (Configure) tries them again at once, from what
    discovery heard, and moves them to the key this Home Assistant has."""
    lost = fixed_key("the newer key, lost with the old Home Assistant")
    device: RunningDevice = await devices([lost, recovery])  # as if rotated away from `home` meanwhile
    hass_storage[HOME_KEY_STORE] = key_store(home, recovery)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    mdns, in_place = patched_mdns(auto_mock_zeroconf)
    with in_place:
        mdns.announce(mdns.cache(device.spec.device_id.hex(), device.port, claimed=True))
        await settle(hass)
        record = registrar_of(entry).state.devices[device.spec.device_id.hex()]
        assert record.refusal is not None
        assert record.refusal.code == "not_owner"

        result = await open_options(hass, entry, "restore_from_recovery_key")
        result = await submit(hass, result, {"recovery_key": format_recovery_key(recovery)})
        await settle(hass)
    assert result["reason"] == "restoring"
    assert registered(hass, device.spec.device_id.hex()) is not None
    assert owners_of(device) == (fp(home), fp(recovery))
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- writes that fail -----------------------------------------------------------------------------------


def key_writes_fail() -> AbstractContextManager[Any]:
    """The key store cannot be written (the registrar store still can)."""
    return writes_fail(HOME_KEY_STORE)


async def test_a_restore_that_cannot_be_written_holds_nothing(
    hass: HomeAssistant, with_recovery: None, loaded: MockConfigEntry, recovery: PrivateKey
) -> None:
    """The recovery key is held only once it is on disk: a failed write is the form's error and the
    registrar holds nothing."""
    result = await open_options(hass, loaded, "restore_from_recovery_key")
    with key_writes_fail():
        result = await submit(hass, result, {"recovery_key": format_recovery_key(recovery)})
    assert result["errors"] == {"base": "storage_failed"}
    kept = registrar_of(loaded).keys.recovery
    assert kept is not None
    assert kept.key is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, "restoring") is None


async def test_a_recovery_key_that_cannot_be_written_is_not_made(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The rotation that adds it cannot write the key store: nothing is signed and no recovery key kept."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    result = await open_options(hass, loaded, "recovery_key")
    text = placeholders(result)["recovery_key"]
    with key_writes_fail():
        result = await submit(hass, result, {"confirm_characters": text[-5:]})
    assert result["reason"] == "recovery_key_not_made"
    registrar = registrar_of(loaded)
    assert registrar.keys.recovery is None
    assert registrar.state.devices[device.spec.device_id.hex()].change is None
    assert owners_of(device) == (fp(home),)


async def test_finishing_a_restore_that_cannot_be_written_keeps_holding(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    home: PrivateKey,
    recovery: PrivateKey,
) -> None:
    """Forgetting the key must reach the disk too, else the owner is told and the restore goes on."""
    hass_storage_with_home[HOME_KEY_STORE] = key_store(home, recovery, holding=True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, "restoring") is not None  # told at start
    result = await open_options(hass, entry, "finish_restore")
    with key_writes_fail():
        result = await submit(hass, result, {"confirm": True})
    assert result["errors"] == {"base": "storage_failed"}
    kept = registrar_of(entry).keys.recovery
    assert kept is not None
    assert kept.key is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, "restoring") is not None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_hand_over_to_this_homes_own_recovery_key_is_refused(
    hass: HomeAssistant,
    with_recovery: None,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
) -> None:
    """A string naming a buyer and this home's recovery key would let a restore take the sold device back:
    refused as a hand-over to this home's own key, nothing signed."""
    device: RunningDevice = await devices([home, recovery])
    await onboard(hass, loaded, device)
    result = await open_options(hass, loaded, "hand_over")
    text = format_home_key(fixed_key("buyer").public_key(), recovery.public_key())
    result = await submit(hass, result, {"device": device.spec.device_id.hex(), "new_owner": text})
    if result["step_id"] == "hand_over_confirm":
        result = await submit(hass, result, {"confirm": True})
    assert result["errors"] == {"base": "own_key"}
    assert registrar_of(loaded).state.devices[device.spec.device_id.hex()].change is None


async def test_a_recovery_key_that_moved_nothing_is_forgotten_when_the_restore_finishes(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    """A home that knew no recovery key takes a typed one on trust only until it moves a device: finished
    unused, it is forgotten whole (not named in the home key string, not added by rotations)."""
    result = await open_options(hass, loaded, "restore_from_recovery_key")
    result = await submit(hass, result, {"recovery_key": format_recovery_key(fixed_key("typed by mistake"))})
    assert result["reason"] == "restoring"
    registrar = registrar_of(loaded)
    assert registrar.keys.owner_keys() == [registrar.keys.current.key.public_key()]  # not named meanwhile
    result = await open_options(hass, loaded, "finish_restore")
    result = await submit(hass, result, {"confirm": True})
    assert result["reason"] == "restore_finished_unused"
    assert registrar.keys.recovery is None
    assert hass_storage[HOME_KEY_STORE]["data"]["recovery"] is None


async def test_a_recovery_key_whose_rotation_cannot_be_signed_is_not_kept_on_disk(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """The rotation that adds it fails after the key store took the staged key (the registrar store cannot
    be written): memory and disk both go back to no recovery key."""
    device: RunningDevice = await devices([home])
    await onboard(hass, loaded, device)
    result = await open_options(hass, loaded, "recovery_key")
    text = placeholders(result)["recovery_key"]
    with registrar_writes_fail():
        result = await submit(hass, result, {"confirm_characters": text[-5:]})
    assert result["reason"] == "recovery_key_not_made"
    assert registrar_of(loaded).keys.recovery is None
    assert hass_storage[HOME_KEY_STORE]["data"]["recovery"] is None
    assert owners_of(device) == (fp(home),)


async def test_a_restore_replaces_a_change_signed_with_a_key_now_lost(
    hass: HomeAssistant,
    with_recovery: None,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    recovery: PrivateKey,
) -> None:
    """As an older backup leaves it: a hand-over is pending on a head the device has moved past, to a key
    this Home Assistant does not hold (the owner is told the key is lost). Restoring replaces the pending
    change with the restore's link, and the device is added again."""
    device: RunningDevice = await devices([home, recovery])
    await handed_over_offline(hass, loaded, device, fixed_key("buyer"))
    device_id = device.spec.device_id.hex()
    registrar = registrar_of(loaded)
    assert registrar.state.devices[device_id].change is not None
    # Meanwhile (after the backup) the lost Home Assistant rotated the device to a key nobody has now.
    assert device.device is not None
    lost = fixed_key("rotated to after the backup")
    rotate_link = issue_link(
        signer=home,
        head=device.device.chain.head,
        owners=[lost.public_key(), recovery.public_key()],
        reason=LinkReason.ROTATE,
        issued_at=NOW_TS,
    )
    device.device.add_links([rotate_link])
    await device.start(device.port)
    await device_announces(hass, loaded, device, claimed=True)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"key_lost_{device_id}") is not None
    assert registered(hass, device_id) is not None  # still this home's, but unreachable: told why

    result = await open_options(hass, loaded, "restore_from_recovery_key")
    result = await submit(hass, result, {"recovery_key": format_recovery_key(recovery)})
    await settle(hass)
    assert result["reason"] == "restoring"
    record = registrar.state.devices[device_id]
    assert record.change is None
    assert record.phase is Phase.ONBOARDED
    assert owners_of(device) == (fp(home), fp(recovery))
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"key_lost_{device_id}") is None


async def test_a_device_of_a_new_manufacturer_naming_the_recovery_key_is_asked_about_in_a_restore(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    recovery: PrivateKey,
) -> None:
    """O9 counts the recovery key as this home's: a restored home is asked about the manufacturer of a
    device that names only its lost key and its recovery key, then moves it."""
    hass_storage_with_home[HOME_KEY_STORE] = key_store(home, recovery, holding=True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    device = await offering(stranger, [fixed_key("lost"), recovery])
    await device_announces(hass, entry, device, claimed=True)
    waiting = registrar_of(entry).state.waiting_roots
    assert list(waiting) == [fingerprint(certificate_public_key(stranger.root)).hex()]
    new_manufacturers.approve_root(registrar_of(entry), next(iter(waiting)))
    await settle(hass)
    assert owners_of(device) == (fp(home), fp(recovery))
    assert await hass.config_entries.async_unload(entry.entry_id)

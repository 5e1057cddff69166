"""A device from a manufacturer this home does not trust yet (§14.7): it offers its root, and the owner
decides in Repairs. Reference devices over real HTTP on 127.0.0.1; the decision through the repairs API,
as the frontend makes it. What must ask nothing is in tests/security/test_made_up_manufacturers.py."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from unittest.mock import patch

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.device_client import DeviceClient
from custom_components.autoadd.protocol.certificates import certificate_to_pem
from custom_components.autoadd.protocol.keys import PrivateKey, format_fingerprint
from custom_components.autoadd.registrar import new_manufacturers
from custom_components.autoadd.registrar.manufacturers import add_root
from custom_components.autoadd.storage import REGISTRAR_STORE
from tests.factory import Manufacturer

from .conftest import device_announces, options_step, registered, registrar_of, settle
from .offering import Start, issue_of, offering, our_issues, refusal_code, repairs, root_id, stranger
from .test_repairs import choose, start_fix

__all__ = ["offering", "repairs", "stranger"]  # fixtures, used by name


async def test_the_owner_is_asked_and_approving_adds_the_manufacturer_and_the_device(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """The device proved itself under the root it offered and names this home: one fixable issue showing
    what was verified; nothing is added before the owner approves; approving trusts the root and adds
    the device at once."""
    device = await offering(stranger, [home])
    await device_announces(hass, repairs, device)

    device_id = device.spec.device_id.hex()
    assert registered(hass, device_id) is None
    assert refusal_code(repairs, device) == "unknown_manufacturer"
    issue = issue_of(hass, stranger)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "approve_manufacturer"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["model"] == "Lamp 1"
    assert issue.translation_placeholders["serial_number"] == "IN0001"
    assert [root.name for root in registrar_of(repairs).state.roots] == ["Acme"]

    status, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    assert status == HTTPStatus.OK
    assert result["type"] == "menu"
    assert result["step_id"] == "init"
    assert result["menu_options"] == ["approve", "reject"]
    shown = result["description_placeholders"]
    assert shown == {
        "manufacturer": "Initech",
        "manufacturer_root": format_fingerprint(bytes.fromhex(root_id(stranger))),
        "model": "Lamp 1",
        "serial_number": "IN0001",
        "count": "1",
        "when": shown["when"],
        "same_name": "no",
    }

    result = await choose(hass_client, result["flow_id"], "approve")
    assert result["type"] == "create_entry"
    await settle(hass)

    state = registrar_of(repairs).state
    assert [root.name for root in state.roots] == ["Acme", "Initech"]
    assert state.waiting_roots == {}
    assert issue_of(hass, stranger) is None
    assert registered(hass, device_id) is not None
    assert device.device is not None
    assert device.device.state.owner is not None


async def test_rejecting_is_remembered_for_the_root(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
) -> None:
    """Rejecting adds nothing and stores the rejection: the device's refusal says so, and another device
    from that root is refused without asking again."""
    first = await offering(stranger, [home])
    await device_announces(hass, repairs, first)
    _, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    result = await choose(hass_client, result["flow_id"], "reject")
    assert result["type"] == "create_entry"
    await settle(hass)

    assert issue_of(hass, stranger) is None
    assert refusal_code(repairs, first) == "manufacturer_rejected"
    registrar = registrar_of(repairs)
    assert list(registrar.state.rejected_roots) == [root_id(stranger)]
    assert [root.name for root in registrar.state.roots] == ["Acme"]

    second = await offering(stranger, [home], "IN0002")
    await device_announces(hass, repairs, second)
    assert refusal_code(repairs, second) == "manufacturer_rejected"
    assert issue_of(hass, stranger) is None
    assert registered(hass, second.spec.device_id.hex()) is None

    await registrar.persistence.save_state(registrar.state, None)
    assert list(hass_storage[REGISTRAR_STORE]["data"]["rejected_roots"]) == [root_id(stranger)]


async def test_adding_a_rejected_root_by_hand_undoes_the_rejection(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """The owner changes their mind: Configure → Trust a manufacturer with the root clears the rejection."""
    device = await offering(stranger, [home])
    await device_announces(hass, repairs, device)
    _, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    await choose(hass_client, result["flow_id"], "reject")
    await settle(hass)

    await options_step(
        hass, repairs, "add_manufacturer", {"pem": certificate_to_pem(stranger.root).decode(), "name": ""}
    )
    registrar = registrar_of(repairs)
    assert registrar.state.rejected_roots == {}
    assert [root.name for root in registrar.state.roots] == ["Acme", "Initech"]
    assert refusal_code(repairs, device) is None


async def test_several_devices_of_one_root_wait_in_one_approval(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """One issue per root, counting its devices; approving adds them all at once."""
    devices = [await offering(stranger, [home], f"IN000{n}") for n in (1, 2)]
    for device in devices:
        await device_announces(hass, repairs, device)
    assert our_issues(hass) == [f"manufacturer_{root_id(stranger)}"]
    _, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    assert result["description_placeholders"]["count"] == "2"

    await choose(hass_client, result["flow_id"], "approve")
    await settle(hass)
    for device in devices:
        assert registered(hass, device.spec.device_id.hex()) is not None


async def test_a_root_named_like_a_trusted_one_says_so(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    trusted: list[dict[str, str]],
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """The owner trusts a root they named "Initech"; a device offering another root named Initech gets the
    approval that warns of the look-alike."""
    trusted[0]["name"] = "Initech"
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    await hass.async_block_till_done()
    device = await offering(stranger, [home])
    await device_announces(hass, entry, device)

    _, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    assert result["step_id"] == "same_name"
    assert result["description_placeholders"]["same_name"] == "yes"
    assert result["menu_options"] == ["approve", "reject"]
    result = await choose(hass_client, result["flow_id"], "approve")
    assert result["type"] == "create_entry"
    await settle(hass)
    assert [root.name for root in registrar_of(entry).state.roots] == ["Initech", "Initech"]
    assert registered(hass, device.spec.device_id.hex()) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_an_approval_outlives_a_restart(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """The waiting root is stored: after a restart the issue is there and approving still works."""
    device = await offering(stranger, [home])
    await device_announces(hass, repairs, device)
    assert await hass.config_entries.async_reload(repairs.entry_id)
    await settle(hass)
    assert root_id(stranger) in registrar_of(repairs).state.waiting_roots
    assert issue_of(hass, stranger) is not None

    _, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    await choose(hass_client, result["flow_id"], "approve")
    await settle(hass)
    assert registered(hass, device.spec.device_id.hex()) is not None


async def test_a_decided_approval_aborts(
    hass: HomeAssistant,
    repairs: MockConfigEntry,
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """A fix flow left open while the root was decided elsewhere ends with "no longer waiting"."""
    await device_announces(hass, repairs, await offering(stranger, [home]))
    _, result = await start_fix(hass_client, f"manufacturer_{root_id(stranger)}")
    with patch.dict(registrar_of(repairs).state.waiting_roots, clear=True):
        result = await choose(hass_client, result["flow_id"], "approve")
    assert result["type"] == "abort"
    assert result["reason"] == "no_longer_waiting"


async def test_devices_past_the_cap_are_counted_as_more(
    hass: HomeAssistant, repairs: MockConfigEntry, offering: Start, stranger: Manufacturer, home: PrivateKey
) -> None:
    """A root keeps at most MAX_DEVICES_PER_ROOT devices to try; the approval says there are more."""
    with patch.object(new_manufacturers, "MAX_DEVICES_PER_ROOT", 2):
        for n in range(3):
            await device_announces(hass, repairs, await offering(stranger, [home], f"IN000{n}"))
        entry = registrar_of(repairs).state.waiting_roots[root_id(stranger)]
        assert len(entry["devices"]) == 2
        assert (
            new_manufacturers.placeholders(registrar_of(repairs), root_id(stranger))["count"] == "2 or more"
        )


@pytest.mark.parametrize(
    "trusted_name", ["initech", "Initech ", "Ini\u200btech", "\uff29\uff2e\uff29\uff34\uff25\uff23\uff28"]
)
async def test_a_look_alike_name_is_a_same_name(
    hass: HomeAssistant,
    hass_storage_with_home: dict[str, Any],
    entry: MockConfigEntry,
    trusted: list[dict[str, str]],
    offering: Start,
    stranger: Manufacturer,
    home: PrivateKey,
    trusted_name: str,
) -> None:
    """Case, spaces, zero-width and full-width forms do not make another name."""
    trusted[0]["name"] = trusted_name
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await device_announces(hass, entry, await offering(stranger, [home]))
    shown = new_manufacturers.placeholders(registrar_of(entry), root_id(stranger))
    assert shown["same_name"] == "yes"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_root_trusted_while_its_offer_is_read_onboards_the_device(
    hass: HomeAssistant, repairs: MockConfigEntry, offering: Start, stranger: Manufacturer, home: PrivateKey
) -> None:
    """The owner trusts the root (by hand) while the registrar fetches the device's offer: the proof is
    read again under the trusted roots and the device is added in that same attempt (O6)."""
    device = await offering(stranger, [home])
    registrar = registrar_of(repairs)
    fetch = DeviceClient.root

    async def owner_trusts_meanwhile(client: DeviceClient) -> bytes:
        answer = await fetch(client)
        add_root(registrar, stranger.root, "Initech")
        return answer

    with patch.object(DeviceClient, "root", owner_trusts_meanwhile):
        await device_announces(hass, repairs, device)
    assert registered(hass, device.spec.device_id.hex()) is not None
    assert registrar.state.waiting_roots == {}

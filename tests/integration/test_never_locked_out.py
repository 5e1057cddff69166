"""What locked devices out in 0.1.0, each tried again through the owner's steps: removing and adding the
entry, restoring an older backup, devices handed in to the pre-rotation key, and a hand-over to one of the
home's own keys. (A rotation with a pending hand-over, and failed writes: test_rotation*.py.)
"""

from __future__ import annotations

from collections.abc import Callable
import copy
from http import HTTPStatus
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.autoadd.const import CONF_HOME_NAME, CONF_KEY_TYPE, DOMAIN
from custom_components.autoadd.protocol.certificates import certificate_to_pem
from custom_components.autoadd.protocol.chain import encode_chain, issue_link
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.home_key import format_home_key
from custom_components.autoadd.protocol.keys import PrivateKey, PublicKey, fingerprint, format_fingerprint
from custom_components.autoadd.registrar.ownership import accept_transfer, read_transfer
from custom_components.autoadd.registrar.record import Phase
from custom_components.autoadd.storage import HOME_KEY_STORE, REGISTRAR_STORE
from tests.factory import NOW_TS, Manufacturer, fixed_key
from tests.reference_device import RunningDevice

from .conftest import announce, onboarding_state, registered, registrar_of, rotate, settle

SELLER = fixed_key("seller home")
FIX_PATH = "/api/repairs/issues/fix"


async def show_up(hass: HomeAssistant, entry: MockConfigEntry, device: RunningDevice) -> str:
    """The device announces itself as it is (claimed or not)."""
    assert device.device is not None
    device_id = device.spec.device_id.hex()
    announce(entry, device_id, device.port, claimed=device.device.claimed)
    await settle(hass)
    return device_id


def head_owner(device: RunningDevice) -> bytes:
    assert device.device is not None
    (owner,) = device.device.chain.head.owner_fingerprints
    return owner


async def reload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED


def handed_in_by_seller(device: RunningDevice, to: PublicKey) -> bytes:
    """The seller's hand-over link of the device to `to` (not yet given to the device)."""
    assert device.device is not None
    return issue_link(
        signer=SELLER,
        head=device.device.chain.head,
        owners=[to],
        reason=LinkReason.HANDOVER,
        issued_at=NOW_TS,
    )


async def test_removing_and_adding_the_entry_keeps_an_undelivered_rotation_link(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    maker: Manufacturer,
) -> None:
    """0.1.0 deleted the registrar store, and with it the only rotation link to a device whose old key
    was destroyed: the device was locked out for good. The link is kept with the key store."""
    device: RunningDevice = await devices([home])
    device_id = await show_up(hass, loaded, device)
    await device.stop()
    await rotate(hass, destroy_old=True)
    new_key = registrar_of(loaded).home.fingerprint
    assert await hass.config_entries.async_remove(loaded.entry_id)

    again = MockConfigEntry(
        domain=DOMAIN, title="Home", data={CONF_HOME_NAME: "Home", CONF_KEY_TYPE: "ed25519"}
    )
    again.add_to_hass(hass)
    assert await hass.config_entries.async_setup(again.entry_id)
    await settle(hass)
    flow = await hass.config_entries.options.async_init(
        again.entry_id
    )  # trusted manufacturers were forgotten
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "add_manufacturer"}
    )
    await hass.config_entries.options.async_configure(
        flow["flow_id"], {"pem": certificate_to_pem(maker.root).decode()}
    )
    await device.start(device.port)
    await show_up(hass, again, device)

    assert head_owner(device) == new_key
    assert onboarding_state(hass, device_id) == "onboarded"
    assert registrar_of(again).keys.kept == {}  # taken back into the registrar store


async def test_an_older_backup_says_which_key_a_device_expects(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_storage: dict[str, Any],
) -> None:
    """0.1.0 said "onboarded" for every device after a restore from a backup older than the last
    rotation, and a later hand-over failed without a word. The device's proof shows a chain ahead of the
    stored one; the owner is told which key it expects, and a hand-over says why it can't be done."""
    device: RunningDevice = await devices([home])
    device_id = await show_up(hass, loaded, device)
    await reload(hass, loaded)  # (unloading writes the store)
    backup = copy.deepcopy({key: hass_storage[key] for key in (HOME_KEY_STORE, REGISTRAR_STORE)})
    await rotate(hass, destroy_old=True)
    expected = registrar_of(loaded).home.fingerprint
    assert head_owner(device) == expected

    assert await hass.config_entries.async_unload(loaded.entry_id)
    hass_storage.update(backup)
    assert await hass.config_entries.async_setup(loaded.entry_id)
    await settle(hass)  # the start checks every member it has an address for

    assert onboarding_state(hass, device_id) == "key_lost"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"key_lost_{device_id}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["expected"] == format_fingerprint(expected)
    entry = registered(hass, device_id)
    assert entry is not None
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "hand_over_device",
            {"device_id": entry.id, "new_owner": format_home_key(fixed_key("buyer").public_key())},
            blocking=True,
        )
    assert err.value.translation_key == "key_lost"


async def test_a_device_waiting_for_approval_moves_with_the_rotation(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    hass_client: ClientSessionGenerator,
) -> None:
    """0.1.0 counted only onboarded devices as "to move": a device handed in to the pre-rotation key and
    waiting for approval was locked out once that key was destroyed."""
    device: RunningDevice = await devices([SELLER])
    assert device.device is not None
    device.device.add_links([handed_in_by_seller(device, home.public_key())])
    device_id = await show_up(hass, loaded, device)
    assert registrar_of(loaded).state.devices[device_id].phase is Phase.AWAITING_APPROVAL

    await rotate(hass, destroy_old=True)
    assert [old.key for old in registrar_of(loaded).keys.retired] == [None]
    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()
    response = await client.post(FIX_PATH, json={"handler": DOMAIN, "issue_id": f"approve_{device_id}"})
    flow: dict[str, Any] = await response.json()
    response = await client.post(f"{FIX_PATH}/{flow['flow_id']}", json={"next_step_id": "accept"})
    assert response.status == HTTPStatus.OK
    await settle(hass)

    assert head_owner(device) == registrar_of(loaded).home.fingerprint
    assert onboarding_state(hass, device_id) == "onboarded"


async def test_a_transfer_file_accepted_before_the_rotation_still_onboards(
    hass: HomeAssistant, loaded: MockConfigEntry, devices: Callable[..., Any], home: PrivateKey
) -> None:
    """The same for a device whose transfer file the owner accepted before rotating: the file hands it to
    the destroyed key, so the device gets the file's link and the rotation link together."""
    device: RunningDevice = await devices([SELLER])
    assert device.device is not None
    link = handed_in_by_seller(device, home.public_key())
    registrar = registrar_of(loaded)
    accept_transfer(registrar, read_transfer(registrar, encode_chain([*device.device.chain.links, link])))
    await device.stop()
    await rotate(hass, destroy_old=True)
    assert [old.key for old in registrar.keys.retired] == [None]

    await device.start(device.port)
    device_id = await show_up(hass, loaded, device)  # still claimed by the seller

    assert head_owner(device) == registrar.home.fingerprint
    assert onboarding_state(hass, device_id) == "onboarded"
    assert device.device.chain.links[1] == link


@pytest.mark.parametrize("destroy_old", [False, True])
async def test_a_hand_over_to_one_of_the_homes_own_keys_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    devices: Callable[..., Any],
    home: PrivateKey,
    destroy_old: bool,
) -> None:
    """0.1.0 signed a hand-over to the home's own retired or destroyed key; the device was then
    unreachable. Every key this home holds or held is refused, and nothing is signed."""
    device: RunningDevice = await devices([home])
    device_id = await show_up(hass, loaded, device)
    await rotate(hass, destroy_old=destroy_old)
    entry = registered(hass, device_id)
    assert entry is not None
    before = registrar_of(loaded).state.devices[device_id].as_dict()

    for key in (home.public_key(), registrar_of(loaded).home.key.public_key()):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "hand_over_device",
                {"device_id": entry.id, "new_owner": format_home_key(key)},
                blocking=True,
            )
        assert err.value.translation_key == "own_key"
    after = registrar_of(loaded).state.devices[device_id].as_dict()
    assert after["change"] == before["change"] is None
    assert after["chain"] == before["chain"]
    assert fingerprint(home.public_key()) not in {head_owner(device)}

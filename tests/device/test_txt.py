"""The reference device's TXT record (docs/protocol.md §10): `mf` is the O of its IDevID's issuer, `sv` a
decimal of at most 10 digits that changes with every announcement, `id` 64 lowercase hex digits, `hd` the
head link's digest (changing with the chain only), and the fixed `path` still announced for 1.0 registrars."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import hashlib
from pathlib import Path
import re
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
import pytest
from zeroconf.asyncio import AsyncServiceInfo

from autoadd_device import advertise
from autoadd_device.advertise import Advertiser, txt_record
from autoadd_device.device import ReferenceDevice
from autoadd_device.files import write_identity, write_invoice
from custom_components.autoadd.protocol.const import LinkReason
from custom_components.autoadd.protocol.keys import PrivateKey
from tests.factory import Device, Manufacturer, add_link, fixed_key

from .conftest import RunningDevice


def _done() -> Awaitable[None]:
    sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sent.set_result(None)
    return sent


class RecordingZeroconf:
    """Stands in for AsyncZeroconf: keeps every TXT record announced, in order."""

    def __init__(self) -> None:
        self.records: list[dict[str, str]] = []

    def _keep(self, info: AsyncServiceInfo) -> Awaitable[None]:
        self.records.append({k.decode(): (v or b"").decode() for k, v in info.properties.items()})
        return _done()

    async def async_register_service(self, info: AsyncServiceInfo, **_: Any) -> Awaitable[None]:
        return self._keep(info)

    async def async_update_service(self, info: AsyncServiceInfo) -> Awaitable[None]:
        return self._keep(info)

    async def async_unregister_all_services(self) -> None:
        """Nothing registered for real."""

    async def async_close(self) -> None:
        """Nothing to close."""


@pytest.fixture
def zeroconf(monkeypatch: pytest.MonkeyPatch) -> RecordingZeroconf:
    fake = RecordingZeroconf()
    monkeypatch.setattr(advertise, "AsyncZeroconf", lambda **_: fake)
    return fake


def _with_subject_organisation(
    cert: x509.Certificate, organisation: str, maker: Manufacturer
) -> x509.Certificate:
    """The same IDevID, re-issued by the maker's root with another O in its subject than the root's."""
    subject = x509.Name(
        [
            x509.NameAttribute(
                attr.oid, organisation if attr.oid == NameOID.ORGANIZATION_NAME else str(attr.value)
            )
            for attr in cert.subject
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(maker.root_key, None)


def test_mf_is_the_organisation_of_the_idevid_issuer(
    tmp_path: Path, maker: Manufacturer, home: PrivateKey
) -> None:
    """A device whose own certificate names a division announces its issuer's name, "Acme"."""
    spec = maker.make_device("SN0001")
    cert = _with_subject_organisation(spec.cert, "Acme Lighting Division", maker)
    device_spec = Device(maker, spec.key, cert)
    write_identity(tmp_path, spec.key, [cert])
    write_invoice(tmp_path, [maker.invoice(device_spec, [home])])
    device = ReferenceDevice(tmp_path, clock=lambda: 0.0)

    txt = txt_record(device)

    assert txt["mf"] == "Acme"


def test_the_record_has_a_lowercase_id_and_the_fixed_path(running: RunningDevice) -> None:
    """`id` is 64 lowercase hex digits; `path` is the fixed base path, announced for 1.0 registrars."""
    assert running.device is not None
    txt = txt_record(running.device, 7)
    assert re.fullmatch(r"[0-9a-f]{64}", txt["id"])
    assert txt["id"] == running.spec.device_id.hex()
    assert txt["path"] == "/autoadd/v1"
    assert txt["v"] == "1"
    assert txt["st"] == "unclaimed"
    assert txt["sv"] == "7"


async def test_hd_names_the_head_and_changes_only_with_the_chain(
    running: RunningDevice, home: PrivateKey, maker: Manufacturer
) -> None:
    """`hd` is the first 8 bytes of the head link's digest in lowercase hex. Onboarding and a factory reset
    leave it as it is; a hand-over link changes it, even though `st` is back to `unclaimed` after it."""
    device = running.device
    assert device is not None
    first = txt_record(device)
    assert first["hd"] == hashlib.sha256(running.spec.links[-1]).digest()[:8].hex()
    await running.onboard(home)
    claimed = txt_record(device)
    device.factory_reset()
    reset = txt_record(device)
    buyer = fixed_key("device tests buyer")
    links = list(device.chain.links)
    link = add_link(links, home, [buyer], LinkReason.HANDOVER, [maker.root])
    device.add_links([link])
    handed_over = txt_record(device)

    assert first["hd"] == claimed["hd"] == reset["hd"]
    assert (claimed["st"], reset["st"], handed_over["st"]) == ("claimed", "unclaimed", "unclaimed")
    assert handed_over["hd"] == hashlib.sha256(link).digest()[:8].hex() != first["hd"]
    assert re.fullmatch(r"[0-9a-f]{16}", handed_over["hd"])


async def test_sv_is_at_most_ten_digits_and_changes_with_every_announcement(
    make_device: Callable[..., RunningDevice],
    home: PrivateKey,
    zeroconf: RecordingZeroconf,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A serial that starts at the top of its range wraps instead of growing an eleventh digit, and each
    announcement (a new state or the same one again) carries a new `sv`."""
    monkeypatch.setattr("autoadd_device.advertise.secrets.randbelow", lambda limit: limit - 2)
    running = make_device([home])
    device = ReferenceDevice(running.folder, clock=lambda: 0.0)
    advertiser = Advertiser(["127.0.0.1"])
    await advertiser.register(device, 8080)
    device.factory_reset()
    await advertiser.update(device)
    await advertiser.update(device)
    await advertiser.close()

    serials = [record["sv"] for record in zeroconf.records]
    assert serials == ["9999999999", "0", "1"]
    assert all(re.fullmatch(r"[0-9]{1,10}", sv) for sv in serials)

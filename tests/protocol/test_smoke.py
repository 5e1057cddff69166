"""One full onboarding through the core, registrar and device side by side."""

from custom_components.autoadd.protocol.handshake import RegistrarHandshake
from tests.factory import NOW, NOW_TS, Manufacturer, fixed_key


def test_full_onboarding() -> None:
    maker = Manufacturer.create()
    device = maker.make_device()
    home = fixed_key("home")
    device.links.append(maker.invoice(device, [home]))
    responder = device.responder()

    session = RegistrarHandshake(home, issued_at=NOW_TS)
    bundle = responder.answer_hello(session.hello, device.chain(), now=0.0)
    proven = session.read_proof(bundle, roots=[maker.root], now=NOW)
    assert proven.device_id == device.device_id
    note = session.make_note(signer=home, issued_at=NOW_TS, config={"name": "lamp"})
    accepted = responder.accept_note(note, device.chain(), now=1.0)
    session.read_receipt(accepted.receipt)
    assert session.done
    assert accepted.config == {"name": "lamp"}

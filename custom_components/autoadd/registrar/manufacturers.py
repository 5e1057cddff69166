"""The manufacturers this home trusts: adding a root, revoking one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509

from custom_components.autoadd.protocol.errors import UntrustedManufacturerError, WrongManufacturerRootError

from .failures import COUNTERFEIT, raise_counterfeit
from .ports import StepError
from .state import TrustedRoot

if TYPE_CHECKING:
    from .core import Registrar

REVOKED = "revoked_manufacturer"


class UnknownManufacturerError(UntrustedManufacturerError):
    """The device proved itself under a root it offered, which waits for the owner's approval (local to
    the registrar, never sent: new_manufacturers.py)."""

    code = "unknown_manufacturer"


class RejectedManufacturerError(UntrustedManufacturerError):
    """The device's manufacturer root is one the owner rejected when a device offered it (local)."""

    code = "manufacturer_rejected"


#: Refusals a newly trusted root may answer (tried again when next seen).
_ROOT_CODES = frozenset(
    {
        UntrustedManufacturerError.code,
        WrongManufacturerRootError.code,
        UnknownManufacturerError.code,
        RejectedManufacturerError.code,
    }
)


def add_root(registrar: Registrar, cert: x509.Certificate, name: str) -> None:
    """Trust a manufacturer root; devices refused as from an unknown manufacturer are tried when next seen."""
    root = TrustedRoot.from_certificate(cert, name)
    state = registrar.state
    if any(known.fingerprint == root.fingerprint for known in state.roots):
        raise StepError("already_trusted")
    # A chain refused as claiming a trusted root (wrong_manufacturer_root) names that root's subject: only
    # a root with the same subject (a manufacturer's second root) can answer it.
    same_subject = any(
        known.subject.public_bytes() == cert.subject.public_bytes() for known in registrar.roots
    )
    state.roots.append(root)
    state.revoked_roots.pop(root.fingerprint, None)
    state.rejected_roots.pop(root.fingerprint, None)  # the owner changed their mind
    if state.waiting_roots.pop(root.fingerprint, None) is not None:  # added by hand while it waited
        registrar.owner.clear_issue("manufacturer", root.fingerprint)
    for record in state.devices.values():
        if record.refusal is not None and record.refusal.code in _ROOT_CODES:
            if record.refusal.code == WrongManufacturerRootError.code and not same_subject:
                continue
            record.refusal = None
            if COUNTERFEIT in record.flags:  # the root it named may be this one: its next proof tells
                record.flags.remove(COUNTERFEIT)
            registrar.changed(record.device_id)
        if record.manufacturer_root == root.fingerprint and REVOKED in record.flags:
            record.flags.remove(REVOKED)
            registrar.changed(record.device_id)
    raise_counterfeit(registrar)
    registrar.persistence.schedule_save()


def remove_root(registrar: Registrar, digest: str) -> None:
    """Revoke a manufacturer root: its new devices are refused, the ones it vouches for flagged."""
    state = registrar.state
    for root in [root for root in state.roots if root.fingerprint == digest]:
        state.roots.remove(root)
        state.revoked_roots[digest] = {"name": root.name, "at": registrar.now()}
    for record in state.devices.values():
        if record.manufacturer_root == digest and REVOKED not in record.flags and record.is_member:
            record.flags.append(REVOKED)
            registrar.tell(record, [("revoked", {"manufacturer_root": digest})])
            registrar.changed(record.device_id)
    registrar.persistence.schedule_save()

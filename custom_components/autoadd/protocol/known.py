"""Verifying again what was verified before: only what changed is checked, with the same verdict.

A known device comes back with the same IDevID chain and the same invoice chain, perhaps with links
appended. Re-checking every signature of a 64-link chain costs 60-odd signature verifications to learn
what a byte comparison says: these bytes were verified, against these roots. `Known` is what one full
verification established; `verify_idevid_again` and `verify_chain_again` reuse it where the input is
byte-for-byte what was verified, and fall back to the full check otherwise.

They decide exactly what the full check decides, error code and detail included, because every check
the full path makes is one of:
- a function of the bytes and the roots only (parsing, signatures, hash links, owners, certificate
  extensions and issuers): the same bytes and roots give the same answer, so it is not made again;
- a function of the time: certificate validity at `now` (the IDevID chain and its root) and an invoice
  issued in the future. These are made again, in the order the full path makes them;
- a function of the device identity (the invoice names it): made again against the identity at hand.
New links are verified in full, one by one, from the verified prefix (`chain.extend`).
tests/protocol/test_known.py checks the equivalence on random and mutated chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import datetime as dt

from cryptography import x509

from .certificates import certificate_hash, within_validity
from .chain import CLOCK_SKEW, VerifiedChain, extend, issue_time, verify_chain
from .const import MAX_CHAIN_LINKS, MAX_CHAIN_SIZE
from .errors import (
    IDevIDMismatchError,
    ManufacturerMismatchError,
    TooLargeError,
    UntrustedManufacturerError,
)
from .idevid import DeviceIdentity, verify_idevid

type RootsKey = tuple[bytes, ...]


def roots_key(roots: Sequence[x509.Certificate]) -> RootsKey:
    """What a verification depended on in `roots`: their DER hashes, in order (the first that issued a
    chain's top is the one it chains to)."""
    return tuple(certificate_hash(root) for root in roots)


@dataclass(frozen=True, slots=True)
class Known:
    """What one full verification of a device's IDevID chain and invoice chain established."""

    idevid: tuple[bytes, ...]
    identity: DeviceIdentity
    chain: VerifiedChain
    roots: RootsKey


def verify_idevid_again(
    chain: Sequence[bytes], roots: Sequence[x509.Certificate], now: dt.datetime, known: Known | None
) -> DeviceIdentity:
    """`idevid.verify_idevid`, reusing `known` when the chain and roots are the ones it verified."""
    if known is None or tuple(chain) != known.idevid or roots_key(roots) != known.roots:
        return verify_idevid(chain, roots, now)
    identity = known.identity
    certificates = [identity.certificate, *_intermediates(known)]
    for position, cert in enumerate(certificates):
        within_validity(cert, now, f"IDevID certificate {position}")
    within_validity(identity.issuer.root, now, "IDevID root")
    return identity


def _intermediates(known: Known) -> list[x509.Certificate]:
    """The IDevID chain's certificates after the leaf, as verified (parsed again: they are few and cheap
    to parse, and only their validity dates are read)."""
    return [x509.load_der_x509_certificate(der) for der in known.idevid[1:]]


def verify_chain_again(
    links: Sequence[bytes],
    *,
    roots: Sequence[x509.Certificate],
    now: dt.datetime,
    device: DeviceIdentity,
    known: Known | None,
) -> VerifiedChain:
    """`chain.verify_chain` with roots and a device, reusing `known` when `links` start with the links
    it verified against the same roots: only the time and the device are checked again for those, and
    the rest is verified link by link."""
    prefix = known.chain.links if known is not None else ()
    if (
        known is None
        or len(links) < len(prefix)
        or tuple(links[: len(prefix)]) != prefix
        or roots_key(roots) != known.roots
    ):
        return verify_chain(links, roots=roots, now=now, device=device)
    if len(links) > MAX_CHAIN_LINKS:
        raise TooLargeError(f"the chain has {len(links)} links; at most {MAX_CHAIN_LINKS} are allowed")
    if sum(len(link) for link in links if isinstance(link, bytes)) > MAX_CHAIN_SIZE:
        raise TooLargeError(f"the chain is over {MAX_CHAIN_SIZE} bytes")
    chain = known.chain
    invoice = chain.history[0]
    when = issue_time(invoice.issued_at)
    if when - CLOCK_SKEW > now:
        raise UntrustedManufacturerError(f"the invoice is issued in the future ({when:%Y-%m-%d})", index=0)
    if invoice.device_id != device.device_id:
        raise IDevIDMismatchError("the invoice names another device identifier", index=0)
    if chain.idevid_hash != device.certificate_hash:
        raise IDevIDMismatchError("the invoice names another IDevID certificate", index=0)
    if (
        chain.manufacturer is not None
        and chain.manufacturer.root_fingerprint != device.issuer.root_fingerprint
    ):
        raise ManufacturerMismatchError(
            "the invoice and the IDevID chain to different manufacturer roots", index=0
        )
    return extend(chain, links[len(prefix) :])

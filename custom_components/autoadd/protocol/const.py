"""The contract's numbers: version, content types, map labels and limits (docs/protocol.md mirrors these)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

PROTOCOL_VERSION: Final = 1
NONCE_SIZE: Final = 32
HASH_SIZE: Final = 32


class ContentType(StrEnum):
    """COSE content type (protected header 3): one per message kind, so no signature serves two purposes."""

    INVOICE = "application/autoadd-invoice+cbor"
    LINK = "application/autoadd-link+cbor"
    HELLO = "application/autoadd-hello+cbor"
    PROOF = "application/autoadd-proof+cbor"
    NOTE = "application/autoadd-note+cbor"
    RECEIPT = "application/autoadd-receipt+cbor"


class Label:
    """Integer map keys shared by every payload (docs/protocol.md, "Map labels")."""

    VERSION: Final = 1
    DEVICE_ID: Final = 2
    IDEVID_HASH: Final = 3
    OWNERS: Final = 4
    ISSUED_AT: Final = 5
    MODEL: Final = 6
    ORDER_REF: Final = 7
    PREVIOUS: Final = 8
    REASON: Final = 9
    SEQUENCE: Final = 10
    REGISTRAR_NONCE: Final = 11
    REGISTRAR_KEY: Final = 12
    DEVICE_NONCE: Final = 13
    CHAIN_HEAD: Final = 14
    REGISTRAR_FINGERPRINT: Final = 15
    LINKS: Final = 16
    CONFIG: Final = 17
    NOTE_HASH: Final = 18
    CHAIN_LENGTH: Final = 19
    SHARE: Final = 20
    CONFIRMATION: Final = 21


class LinkReason(StrEnum):
    """Why a link n > 0 was added."""

    ROTATE = "rotate"
    HANDOVER = "handover"
    #: Link 1 of unassigned stock: the device names its first owners after a claim code run (§14.9).
    CLAIM = "claim"


# --- Limits ---------------------------------------------------------------------------------------------
MAX_OWNERS: Final = 8
MAX_LINK_SIZE: Final = 16 * 1024
MAX_CHAIN_LINKS: Final = 64
MAX_CHAIN_SIZE: Final = 128 * 1024
#: A chain in array form (a file, a /links request body): its links plus room for the array framing.
MAX_CHAIN_ARRAY_SIZE: Final = MAX_CHAIN_SIZE + 1024
MAX_MESSAGE_SIZE: Final = 8 * 1024
MAX_CONFIG_SIZE: Final = 4 * 1024
MAX_OWNER_KEY_SIZE: Final = 128
#: A proof bundle carries the device's certificates and chain: its limit is theirs plus room for the proof.
MAX_BUNDLE_SIZE: Final = MAX_CHAIN_SIZE + 4 * 4096 + MAX_MESSAGE_SIZE

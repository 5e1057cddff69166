"""The AutoAdd protocol core: artifacts, chain verification and the handshake, with no I/O.

Pure Python over `cryptography`, `cbor2` and `cwt`; nothing here imports Home Assistant, so the reference
device and the vendor tool use exactly the code the registrar uses. docs/protocol.md is its contract.
"""

from .chain import (
    ChainHead,
    VerifiedChain,
    compare_with_known,
    decode_chain,
    encode_chain,
    extend,
    issue_invoice,
    issue_link,
    read_invoice,
    read_link,
    verify_chain,
)
from .const import PROTOCOL_VERSION, ContentType, LinkReason
from .errors import ERRORS_BY_CODE, AutoAddError
from .handshake import DeviceResponder, Hello, ProvenDevice, RegistrarHandshake, read_hello
from .home_key import format_home_key, parse_home_key
from .idevid import DeviceIdentity, device_id_for, verify_idevid
from .keys import KeyType, PrivateKey, PublicKey, fingerprint, generate_private_key

__all__ = [
    "ERRORS_BY_CODE",
    "PROTOCOL_VERSION",
    "AutoAddError",
    "ChainHead",
    "ContentType",
    "DeviceIdentity",
    "DeviceResponder",
    "Hello",
    "KeyType",
    "LinkReason",
    "PrivateKey",
    "ProvenDevice",
    "PublicKey",
    "RegistrarHandshake",
    "VerifiedChain",
    "compare_with_known",
    "decode_chain",
    "device_id_for",
    "encode_chain",
    "extend",
    "fingerprint",
    "format_home_key",
    "generate_private_key",
    "issue_invoice",
    "issue_link",
    "parse_home_key",
    "read_hello",
    "read_invoice",
    "read_link",
    "verify_chain",
    "verify_idevid",
]

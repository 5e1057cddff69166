"""The `cpace` library (0.1.0) against the CPACE-X25519-SHA512 test vectors of draft-irtf-cfrg-cpace.

Vector values are copied from draft-irtf-cfrg-cpace-21 (23 April 2026), as found in
https://github.com/cfrg/draft-irtf-cfrg-cpace at tag draft-irtf-cfrg-cpace-21 (commit 8fb4056), file
draft-irtf-cfrg-cpace.md; the same values are in that repository's testvectors.json ("G_25519",
"X25519_points"). Section numbers are those of the rendered draft.

The draft gives no known-answer values for mac_key, Ta or Tb: section 10.4 only describes the
construction and suggests a MAC "such as HMAC". The tags are checked against that construction with
HMAC-SHA-512, computed here from the ISK vector, which is the MAC this library uses.
"""

from __future__ import annotations

import hashlib
import hmac

import cpace
from cpace import CPace, CPaceError, CPaceRole
import pytest

# --- draft-irtf-cfrg-cpace-21, Appendix A.1.2 / A.1.4: prepend_len and lv_cat --------------------------

LV_CAT_1234_5_EMPTY_678 = bytes.fromhex("043132333401350003363738")

# --- draft-irtf-cfrg-cpace-21, Appendix B.1.1: calculate_generator with group X25519 ---------------------

PRS = b"Password"
CI = bytes.fromhex("0b415f696e69746961746f720b425f726573706f6e646572")  # b'\x0bA_initiator\x0bB_responder'
SID = bytes.fromhex("7e4b4791d6a8ef019b936c79fb7f2c57")
ZPAD_LENGTH = 109
GENERATOR_STRING = bytes.fromhex(  # 170 bytes
    "0843506163653235350850617373776f72646d000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000180b415f696e69746961746f"
    "720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f"
    "2c57"
)
GENERATOR_STRING_HASH = bytes.fromhex("03998087bdb1a2617bbe25ef5a7c18cd4f84f902328701790958755ee4aed1d3")
DECODED_FIELD_ELEMENT = bytes.fromhex(  # the hash with bit #255 cleared (decodeUCoordinate)
    "03998087bdb1a2617bbe25ef5a7c18cd4f84f902328701790958755ee4aed153"
)
G = bytes.fromhex("d04bf6d41f6a289632a2e929fa29bebd51092512a7829fdde7d314b62f05a73f")

# --- Appendix B.1.2 / B.1.3: messages from A and B (scalars little endian) ------------------------------

ADA = b"ADa"
YA_SCALAR = bytes.fromhex("21b4f4bd9e64ed355c3eb676a28ebedaf6d8f17bdc365995b319097153044080")
YA = bytes.fromhex("1d13c89278cdadd826f6d8d7f887701430f8380ddc17611cdd6dc989ce0c9f32")
ADB = b"ADb"
YB_SCALAR = bytes.fromhex("848b0779ff415f0af4ea14df9dd1d3c29ac41d836c7808896c4eba19c51ac40a")
YB = bytes.fromhex("248cccf6d5cdc3646f0ad593f9e6cef4e69d4945f8372e623512ecea32185623")

# --- Appendix B.1.4: secret point K; B.1.5: ISK initiator/responder; B.1.7: sid_output -------------------

K = bytes.fromhex("5b067effbdc0b2a0e1d907b21ebb25cfedb96a852179a847c37e43ee71322c6b")
ISK_IR = bytes.fromhex(
    "6e19b875f7a561d6b3ca3dbb9ef42ac55de3e717881018204b8922b4"
    "d5e53bb2aa82c300bea7b65d2b671da71922ddf6472301b79bc270ad"
    "fa8bf413285f2263"
)
SID_OUTPUT_IR = bytes.fromhex(  # H.hash(b"CPaceSidOutput" + transcript_ir(Ya, ADa, Yb, ADb))
    "cbc73f62589bbc96ab6a95ec2363df621e93bc3b0cea83ba6b9571d0"
    "05fa8f5d2d08f7165622777fa484c02a9e6b20a84ee2dbebae8c53be"
    "757dcfc0eebdeb5f"
)

# --- Appendix B.1.10: G_X25519.scalar_mult_vfy, low order points ---------------------------------------
# (u, q = scalar_mult_vfy(LOW_ORDER_SCALAR, u)); u0..u5 and u7 MUST abort when received from A or B.
# u6 and u8..ub have bit #255 set and would give the neutral element if that bit were not cleared.

LOW_ORDER_SCALAR = bytes.fromhex("af46e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449aff")
_ZERO = "00" * 32
LOW_ORDER_VECTORS: dict[str, tuple[str, str]] = {
    "u0": ("0000000000000000000000000000000000000000000000000000000000000000", _ZERO),
    "u1": ("0100000000000000000000000000000000000000000000000000000000000000", _ZERO),
    "u2": ("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", _ZERO),
    "u3": ("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", _ZERO),
    "u4": ("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", _ZERO),
    "u5": ("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", _ZERO),
    "u6": (
        "daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "d8e2c776bbacd510d09fd9278b7edcd25fc5ae9adfba3b6e040e8d3b71b21806",
    ),
    "u7": ("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", _ZERO),
    "u8": (
        "dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "c85c655ebe8be44ba9c0ffde69f2fe10194458d137f09bbff725ce58803cdb38",
    ),
    "u9": (
        "d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "db64dafa9b8fdd136914e61461935fe92aa372cb056314e1231bc4ec12417456",
    ),
    "ua": (
        "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
        "e062dcd5376d58297be2618c7498f55baa07d7e03184e8aada20bca28888bf7a",
    ),
    "ub": (
        "4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
        "993c6ad11c4c29da9a56f7691fd0ff8d732e49de6250b6c2e80003ff4629a175",
    ),
}
MUST_ABORT = ["u0", "u1", "u2", "u3", "u4", "u5", "u7"]
MUST_NOT_ABORT = ["u6", "u8", "u9", "ua", "ub"]

# --- RFC 7748 section 5 X25519, as an independent reference for the scalar handling ---------------------

_P = 2**255 - 19
_A24 = 121665


def _clamp(scalar: bytes) -> bytes:
    """decodeScalar25519 of RFC 7748, returned as bytes."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def _x25519_reference(scalar: bytes, u: bytes, *, clamp: bool = True) -> bytes:
    """RFC 7748 Montgomery ladder; ``clamp=False`` uses all 256 scalar bits as given."""
    k = int.from_bytes(_clamp(scalar) if clamp else scalar, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)  # decodeUCoordinate clears bit #255
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in reversed(range(256)):
        k_t = (k >> t) & 1
        swap ^= k_t
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = k_t
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3, z3 = (da + cb) ** 2 % _P, x1 * (da - cb) ** 2 % _P
        x2, z2 = aa * bb % _P, e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


# --- helpers --------------------------------------------------------------------------------------------


def _vector_side(role: CPaceRole) -> CPace:
    """One side built from the draft's fixed scalar and public share."""
    if role is CPaceRole.INITIATOR:
        return CPace(role=role, sid=SID, ad=ADA, scalar=YA_SCALAR, public_share=YA)
    return CPace(role=role, sid=SID, ad=ADB, scalar=YB_SCALAR, public_share=YB)


def _vector_pair() -> tuple[CPace, CPace]:
    """Both sides of the draft's run, after exchanging their messages."""
    a, b = _vector_side(CPaceRole.INITIATOR), _vector_side(CPaceRole.RESPONDER)
    a.derive(YB, ADB)
    b.derive(YA, ADA)
    return a, b


def _draft_tags(isk: bytes) -> tuple[bytes, bytes]:
    """Ta, Tb per section 10.4: mac_key = H(b"CPaceMac" || sid || ISK), T = MAC(mac_key, lv_cat(Y, AD))."""
    mac_key = hashlib.sha512(b"CPaceMac" + SID + isk).digest()
    # lv_cat(Y, AD): every part here is shorter than 128 bytes, so its length prefix is one byte.
    ta = hmac.new(mac_key, bytes([len(YA)]) + YA + bytes([len(ADA)]) + ADA, hashlib.sha512).digest()
    tb = hmac.new(mac_key, bytes([len(YB)]) + YB + bytes([len(ADB)]) + ADB, hashlib.sha512).digest()
    return ta, tb


def _flip_bit(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _started_pair(prs_a: bytes, prs_b: bytes) -> tuple[CPace, CPace]:
    sid = b"fresh-session-id"
    a = CPace.start(role=CPaceRole.INITIATOR, prs=prs_a, sid=sid, ci=CI, ad=ADA)
    b = CPace.start(role=CPaceRole.RESPONDER, prs=prs_b, sid=sid, ci=CI, ad=ADB)
    a.derive(b.public_share, ADB)
    b.derive(a.public_share, ADA)
    return a, b


# --- string utilities (Appendix A.1) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", bytes.fromhex("00")),
        (b"1234", bytes.fromhex("0431323334")),
        (bytes(range(127)), bytes.fromhex("7f") + bytes(range(127))),
        (bytes(range(128)), bytes.fromhex("8001") + bytes(range(128))),
    ],
    ids=["empty", "1234", "127-bytes", "128-bytes"],
)
def test_prepend_len_matches_draft(data: bytes, expected: bytes) -> None:
    """prepend_len is LEB128 length || data (A.1.2), including the two-byte length from 128 on."""
    assert cpace._prepend_len(data) == expected


def test_lv_cat_matches_draft() -> None:
    """lv_cat(b"1234", b"5", b"", b"678") from A.1.4."""
    assert cpace._lv_cat(b"1234", b"5", b"", b"678") == LV_CAT_1234_5_EMPTY_678


# --- generator (B.1.1): the password-dependent part -----------------------------------------------------


def test_generator_string_matches_draft() -> None:
    """generator_string(DSI, PRS, CI, sid, 128) with 109 bytes of zero padding."""
    gen_str = cpace._generator_string(PRS, CI, SID)
    assert gen_str == GENERATOR_STRING
    assert len(gen_str) == 170
    assert gen_str[1 + 8 + 1 + len(PRS) :][: ZPAD_LENGTH + 1] == bytes([ZPAD_LENGTH]) + bytes(ZPAD_LENGTH)


def test_generator_intermediates_match_draft() -> None:
    """SHA-512 of the generator string, truncated to 32 bytes, decoded with bit #255 cleared, Elligator2."""
    gen_hash = hashlib.sha512(GENERATOR_STRING).digest()[:32]
    assert gen_hash == GENERATOR_STRING_HASH
    decoded = cpace._decode_u(gen_hash)
    assert decoded == int.from_bytes(DECODED_FIELD_ELEMENT, "little")
    assert cpace._elligator2(decoded) == G


def test_calculate_generator_matches_draft() -> None:
    """The generator g for PRS b"Password", the CI and the sid of B.1.1."""
    assert cpace._calculate_generator(PRS, CI, SID) == G


@pytest.mark.parametrize(
    ("prs", "ci", "sid"),
    [(b"Passwort", CI, SID), (PRS, CI[:-1], SID), (PRS, CI, _flip_bit(SID))],
    ids=["prs", "ci", "sid"],
)
def test_generator_depends_on_every_input(prs: bytes, ci: bytes, sid: bytes) -> None:
    """Changing the password, CI or sid changes g."""
    assert cpace._calculate_generator(prs, ci, sid) != G


def test_generator_string_for_long_prs_has_no_padding() -> None:
    """A PRS filling the first hash block gets len_zpad = 0 and a two-byte LEB128 length (A.2)."""
    prs = bytes(range(200))
    expected = b"\x08CPace255" + b"\xc8\x01" + prs + b"\x00" + bytes([len(CI)]) + CI + bytes([len(SID)]) + SID
    assert cpace._generator_string(prs, CI, SID) == expected


# --- public shares and K (B.1.2 - B.1.4), including the scalar clamping ---------------------------------


def test_public_shares_match_draft() -> None:
    """Ya = X25519(ya, g) and Yb = X25519(yb, g)."""
    assert cpace._scalar_mult_vfy(YA_SCALAR, G) == YA
    assert cpace._scalar_mult_vfy(YB_SCALAR, G) == YB


def test_secret_point_k_matches_draft() -> None:
    """K = scalar_mult_vfy(ya, Yb) = scalar_mult_vfy(yb, Ya)."""
    assert cpace._scalar_mult_vfy(YA_SCALAR, YB) == K
    assert cpace._scalar_mult_vfy(YB_SCALAR, YA) == K


def test_draft_scalars_are_clamped_as_rfc7748_x25519() -> None:
    """The draft's X25519 clamps the scalars (ya has bit #255 set), and so does the library."""
    assert YA_SCALAR[31] & 0x80  # clamping is not a no-op for this vector
    assert _x25519_reference(YA_SCALAR, G) == YA
    assert _x25519_reference(YB_SCALAR, G) == YB
    assert _x25519_reference(YA_SCALAR, YB) == K
    assert _x25519_reference(YA_SCALAR, G, clamp=False) != YA  # the unclamped scalar gives another point
    assert cpace._scalar_mult_vfy(_clamp(YA_SCALAR), G) == YA
    assert cpace._scalar_mult_vfy(_clamp(YB_SCALAR), G) == YB


# --- ISK, sid_output and confirmation tags (B.1.5, B.1.7, section 10.4) ----------------------------------


def test_isk_matches_draft_for_both_sides() -> None:
    """Both sides derive ISK_IR = H(lv_cat(b"CPace255_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb))."""
    a, b = _vector_pair()
    assert a.isk == ISK_IR
    assert b.isk == ISK_IR


def test_sid_output_matches_draft() -> None:
    """sid_output = H(b"CPaceSidOutput" || transcript_ir(Ya, ADa, Yb, ADb)) on both sides."""
    a, b = _vector_pair()
    assert a.sid_output == SID_OUTPUT_IR
    assert b.sid_output == SID_OUTPUT_IR


def test_tags_match_draft_construction() -> None:
    """A's tag is Ta over lv_cat(Ya, ADa) and B's tag is Tb over lv_cat(Yb, ADb), with HMAC-SHA-512."""
    a, b = _vector_pair()
    ta, tb = _draft_tags(ISK_IR)
    assert a.tag() == ta
    assert b.tag() == tb
    assert ta != tb


def test_tags_cross_verify() -> None:
    """Each side accepts the other's tag."""
    a, b = _vector_pair()
    assert a.verify(b.tag())
    assert b.verify(a.tag())


@pytest.mark.parametrize("index", [0, 31, 63])
def test_flipped_bit_tag_is_refused(index: int) -> None:
    """A tag with one bit flipped fails verification on either side."""
    a, b = _vector_pair()
    assert not a.verify(_flip_bit(b.tag(), index))
    assert not b.verify(_flip_bit(a.tag(), index))


def test_truncated_or_own_tag_is_refused() -> None:
    """A truncated tag, an empty tag, or a side's own tag sent back to it is refused."""
    a, b = _vector_pair()
    assert not a.verify(b.tag()[:32])
    assert not a.verify(b"")
    assert not a.verify(a.tag())
    assert not b.verify(b.tag())


# --- invalid peer shares (B.1.10) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOW_ORDER_VECTORS))
def test_scalar_mult_vfy_low_order_vectors(name: str) -> None:
    """scalar_mult_vfy(s, uX) gives qX; the library reports the neutral element (all zero) as None."""
    u_hex, q_hex = LOW_ORDER_VECTORS[name]
    u, q = bytes.fromhex(u_hex), bytes.fromhex(q_hex)
    assert _x25519_reference(LOW_ORDER_SCALAR, u) == q
    expected = None if q == bytes(32) else q
    assert cpace._scalar_mult_vfy(LOW_ORDER_SCALAR, u) == expected


@pytest.mark.parametrize("role", list(CPaceRole), ids=lambda role: role.name.lower())
@pytest.mark.parametrize("name", MUST_ABORT)
def test_derive_aborts_on_low_order_share(name: str, role: CPaceRole) -> None:
    """u0..u5 and u7 in the peer's message MUST abort the run."""
    side = _vector_side(role)
    with pytest.raises(CPaceError, match="low-order"):
        side.derive(bytes.fromhex(LOW_ORDER_VECTORS[name][0]), b"AD")


@pytest.mark.parametrize("name", MUST_NOT_ABORT)
def test_derive_masks_bit_255_instead_of_aborting(name: str) -> None:
    """u6 and u8..ub are not low order once bit #255 is cleared: the run goes on (to a mismatching ISK)."""
    side = _vector_side(CPaceRole.INITIATOR)
    side.derive(bytes.fromhex(LOW_ORDER_VECTORS[name][0]), ADB)
    assert side.isk not in (ISK_IR, bytes(64))


@pytest.mark.parametrize("length", [0, 1, 31, 33, 56, 64])
def test_derive_refuses_share_of_wrong_length(length: int) -> None:
    """A peer share that is not 32 bytes is refused before any scalar multiplication."""
    side = _vector_side(CPaceRole.RESPONDER)
    with pytest.raises(CPaceError, match="32 bytes"):
        side.derive((YA * 2)[:length], ADA)


# --- behaviour without fixed scalars --------------------------------------------------------------------


def test_started_runs_agree_and_confirm() -> None:
    """Two runs from start() with the same password agree on ISK and accept each other's tags."""
    a, b = _started_pair(PRS, PRS)
    assert a.isk == b.isk
    assert a.verify(b.tag())
    assert b.verify(a.tag())


def test_wrong_password_fails_confirmation() -> None:
    """With different passwords the ISKs differ and neither tag verifies."""
    a, b = _started_pair(PRS, b"Passwort")
    assert a.isk != b.isk
    assert not a.verify(b.tag())
    assert not b.verify(a.tag())


def test_reflected_message_is_refused() -> None:
    """A side that receives its own share and AD back refuses its own tag as the peer's."""
    a = CPace.start(role=CPaceRole.INITIATOR, prs=PRS, sid=SID, ci=CI, ad=ADA)
    a.derive(a.public_share, ADA)
    assert not a.verify(a.tag())


def test_out_of_order_use_raises() -> None:
    """ISK and tags need derive() first, and derive() runs only once."""
    side = _vector_side(CPaceRole.INITIATOR)
    with pytest.raises(CPaceError):
        _ = side.isk
    with pytest.raises(CPaceError):
        side.tag()
    with pytest.raises(CPaceError):
        side.verify(b"")
    side.derive(YB, ADB)
    with pytest.raises(CPaceError, match="once"):
        side.derive(YB, ADB)

"""§14.7, the optional root offer: `GET /autoadd/v1/root` answers 404 (`not_found`, the CBOR error map) or
the manufacturer's root as a CBOR byte string, a root (O1-O5) under which the device's IDevID chain and
chain verify, so that a registrar that does not trust the manufacturer yet can ask its owner."""

from __future__ import annotations

import datetime as dt

from custom_components.autoadd.protocol.certificates import read_root_offer
from custom_components.autoadd.protocol.chain import chain_links, verify_chain
from custom_components.autoadd.protocol.encoding import loads
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.idevid import verify_idevid
from custom_components.autoadd.protocol.transport import MEDIA_TYPE, NOT_FOUND, PATH_ROOT

from .http import DeviceHttp
from .messages import Probe
from .results import Result, describe_answer, error_code_of, failed, passed, skipped

TITLE = "GET /root offers a root the device's IDevID chain and chain verify under, or answers 404"


async def root_check(http: DeviceHttp, probe: Probe) -> Result:
    """O1-O5, then the proof bundle's certificate chain and chain verify with the offer as the only root."""
    answer = await http.get(PATH_ROOT)
    if answer.status == 404 and error_code_of(answer) == NOT_FOUND:
        return skipped("O1-O5", TITLE, "the device offers no root (allowed)")
    if answer.status != 200 or answer.content_type != MEDIA_TYPE:
        return failed("O1-O5", TITLE, f"expected 200 {MEDIA_TYPE} or 404, got {describe_answer(answer)}")
    try:
        root = read_root_offer(answer.body)
    except AutoAddError as err:
        return failed("O1-O5", TITLE, f"the offer is refused: {err.code}")
    now = dt.datetime.now(dt.UTC)
    try:
        bundle = loads(probe.bundle, what="proof bundle", max_size=len(probe.bundle))
        identity = verify_idevid(bundle[2], [root], now)
        verify_chain(chain_links(bundle[3]), roots=[root], now=now, device=identity)
    except AutoAddError as err:
        return failed("O1-O5", TITLE, f"the device's chains do not verify under the offered root: {err.code}")
    return passed("O1-O5", TITLE)

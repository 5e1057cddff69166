"""`scripts/conformance`: the command line around `runner.run`, one printed line per check.

Exit status: 0 when no check failed, 1 when one did, 2 when the command line or a key file is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
import sys
from typing import TextIO

from custom_components.autoadd.protocol.certificates import load_pem_certificates
from custom_components.autoadd.protocol.claim_code import parse_claim_code
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.keys import private_key_from_pem

from .checks_claim import ClaimOptions
from .http import DeviceUrlError, device_origin
from .runner import RunOptions, all_passed, run

_DESCRIPTION = """\
Check an AutoAdd device against docs/protocol.md over HTTP: the hello rules (§7.5, H1-H5), the note
rules (§7.8, N1-N12), the session table (§8.4), the transport rules (§9, T1-T9), the root offer
(§14.7), claim codes (§14.9) and, with --root, the proof it returns (§7.6, P1-P14). Prints one line
per check, PASS, FAIL or SKIP; exits 0 when nothing failed. Only the device you name is contacted.
Without --onboard, --claim-code and --claim nothing on the device changes (it only opens and drops
sessions)."""

_EPILOG = """\
--onboard runs a full hello, proof, note, receipt with --owner-key and --root: it CHANGES the device's
state, recording that key as the owner imprint and replacing its configuration with
{"autoadd_conformance": "onboarded"}. Run it only on a device you own and may reconfigure.
--claim-code tries a wrong code on unassigned stock (the device counts it: after three, it waits before
the next); --claim with --owner-key then claims the device for that key, for good (§14.9)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/conformance",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", required=True, help="the device's URL, http://HOST:PORT")
    parser.add_argument(
        "--owner-key", type=Path, help="PEM private key of a current owner in the device's chain"
    )
    parser.add_argument("--root", type=Path, help="PEM certificate(s) of the manufacturer root(s)")
    parser.add_argument(
        "--onboard", action="store_true", help="run the full handshake (changes the device; needs both keys)"
    )
    parser.add_argument(
        "--claim-code",
        help="the claim code of unassigned stock: a wrong code is tried (counted by the device)",
    )
    parser.add_argument(
        "--claim",
        action="store_true",
        help="claim unassigned stock for --owner-key with --claim-code (changes the device for good)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per line instead")
    return parser


def _options(args: argparse.Namespace) -> RunOptions:
    """The run's options from the command line; ValueError (shown to the user) when a file is unusable."""
    device_origin(args.device)
    owner = roots = None
    try:
        if args.owner_key is not None:
            owner = private_key_from_pem(args.owner_key.read_bytes())
        if args.root is not None:
            roots = load_pem_certificates(args.root.read_bytes())
    except OSError as err:
        raise ValueError(f"cannot read {err.filename}: {err.strerror}") from err
    except AutoAddError as err:
        raise ValueError(f"an unusable key or certificate file ({err.code})") from err
    code = None
    if args.claim_code is not None:
        try:
            code = parse_claim_code(args.claim_code)
        except AutoAddError as err:
            raise ValueError(f"--claim-code: {err.detail}") from err
    return RunOptions(args.device, owner, roots, args.onboard, ClaimOptions(code, owner, args.claim))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Parse `argv`, run the checks, print them to `out` (stdout); the exit status."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        options = _options(args)
    except (ValueError, DeviceUrlError) as err:
        print(f"conformance: {err}", file=sys.stderr)
        return 2
    results = asyncio.run(run(options))
    for result in results:
        print(result.json() if args.json else result.line(), file=out)
    return 0 if all_passed(results) else 1

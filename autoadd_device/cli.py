"""autoadd-device: run one or more AutoAdd reference devices.

    autoadd-device DEVICE_DIR                      one device, on 127.0.0.1, any free port
    autoadd-device DEVICES --count 50 --port 8400  the first 50 device directories under DEVICES
    autoadd-device DEVICE_DIR --factory-reset      forget the owner and configuration, keep the chain

Each device serves the protocol over HTTP and announces `_autoadd._tcp.local.` over mDNS.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
import logging
from pathlib import Path
import signal
import sys
import time

from custom_components.autoadd.protocol.claim_code import ClaimCode, parse_claim_code
from custom_components.autoadd.protocol.errors import AutoAddError

from .advertise import Advertiser
from .device import ReferenceDevice
from .files import IDEVID_KEY, DeviceFileError
from .limits import BURST, RATE, ServingLimits
from .server import make_app
from .serving import DeviceServer

_LOGGER = logging.getLogger("autoadd_device")
#: Devices whose mDNS names are probed at the same time.
MAX_PROBING = 50


def find_device_dirs(paths: Sequence[Path]) -> list[Path]:
    """Device directories among `paths`: each path is one, or a folder of them (taken in name order)."""
    found: list[Path] = []
    for path in paths:
        if (path / IDEVID_KEY).exists():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if (p / IDEVID_KEY).exists()))
        else:
            raise DeviceFileError(path, "not a device directory (no idevid.key) nor a folder of them")
    return found


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="autoadd-device", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", type=Path, nargs="+", help="device directories, or folders holding them")
    parser.add_argument("--count", type=int, help="run only the first N devices found (default: all)")
    parser.add_argument(
        "--address",
        action="append",
        help="IP address to listen on and to announce; repeat for several (default 127.0.0.1)",
    )
    parser.add_argument(
        "--interface",
        action="append",
        help="interface address mDNS uses (default: the --address values); 'all' for every interface",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port of the first device, the next get +1, +2... (default: any free port)",
    )
    parser.add_argument("--no-mdns", action="store_true", help="do not announce over mDNS (HTTP only)")
    parser.add_argument(
        "--rate",
        type=float,
        default=RATE,
        help=f"requests per second each device accepts from one client (default {RATE:g})",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=BURST,
        help=f"requests each device accepts at once from one client (default {BURST})",
    )
    parser.add_argument(
        "--claim-code",
        help="the claim code (AACC1-...) of a device sold with no owner; for one device only",
    )
    parser.add_argument(
        "--factory-reset", action="store_true", help="reset the devices (keep their chains) and exit"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO"
    )
    return parser


async def run(args: argparse.Namespace, dirs: Sequence[Path], stop: asyncio.Event) -> None:
    """Start the devices in `dirs`, serve until `stop` is set, then withdraw everything."""
    addresses: list[str] = args.address or ["127.0.0.1"]
    advertiser: Advertiser | None = None
    if not args.no_mdns:
        interfaces = None if args.interface == ["all"] else (args.interface or addresses)
        advertiser = Advertiser(addresses, interfaces)
    servers: list[DeviceServer] = []
    limits = ServingLimits(rate=args.rate, burst=args.burst)
    # Registering a name probes the network for about a second: many devices probe at once, not in turn.
    probing = asyncio.Semaphore(MAX_PROBING)

    async def start(index: int, folder: Path) -> None:
        device = ReferenceDevice(folder, clock=time.monotonic, claim_code=_claim_code(args.claim_code))
        if advertiser is not None:
            adv = advertiser

            def changed(device: ReferenceDevice = device, adv: Advertiser = adv) -> None:
                adv.changed(device)

            device.on_change = changed
        server = DeviceServer(make_app(device, limits=limits))
        bound = await server.start(addresses, args.port + index if args.port else 0)
        servers.append(server)
        if advertiser is not None:
            async with probing:
                await advertiser.register(device, bound)
        _LOGGER.info(
            "%s [%s] listening on %s port %d (%s)",
            device.name,
            device.device_id.hex()[:12],
            ",".join(addresses),
            bound,
            "claimed" if device.claimed else "unclaimed",
        )

    try:
        await asyncio.gather(*(start(index, folder) for index, folder in enumerate(dirs)))
        print(f"autoadd-device: {len(servers)} device(s) running", flush=True)
        await stop.wait()
    finally:
        if advertiser is not None:
            await advertiser.close()
        for server in servers:
            await server.stop()


def _claim_code(text: str | None) -> ClaimCode | None:
    if text is None:
        return None
    try:
        return parse_claim_code(text)
    except AutoAddError as err:
        print(f"autoadd-device: error: --claim-code: {err.detail}", file=sys.stderr)
        raise SystemExit(2) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; errors name the file at fault and exit 1."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    try:
        dirs = find_device_dirs(args.paths)[: args.count]
        if not dirs:
            raise DeviceFileError(args.paths[0], "no device directories found")
        if args.claim_code is not None and len(dirs) != 1:
            raise DeviceFileError(args.paths[0], "--claim-code is for one device; name its directory")
        _claim_code(args.claim_code)  # a bad code stops here, before anything starts
        if args.factory_reset:
            for folder in dirs:
                ReferenceDevice(
                    folder, clock=time.monotonic, claim_code=_claim_code(args.claim_code)
                ).factory_reset()
            return 0

        async def _main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run(args, dirs, stop)

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_main())
    except DeviceFileError as err:
        print(f"autoadd-device: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"autoadd-device: error: {err}", file=sys.stderr)
        return 1
    return 0

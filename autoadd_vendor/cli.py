"""autoadd-vendor: the manufacturer's side of AutoAdd.

    autoadd-vendor init --vendor DIR --name "Acme"            root CA and invoice signer
    autoadd-vendor provision --vendor DIR --out DEVICES --model "Lamp 1" --count 3
    autoadd-vendor invoice --vendor DIR DEVICE_DIR --home AAHK1-...   (one --home per owner, up to 8)
    autoadd-vendor invoice --vendor DIR DEVICE_DIR --unassigned       (no owner: a claim code instead)
    autoadd-vendor inspect FILE [--root root.pem]
    autoadd-vendor home-key --out home.key                    a home key pair and its home key string
                            [--recovery-out recovery.txt]     ... and a recovery key (AAHK2 string)

Nothing is left half-written: every file is written atomically, and a command that fails writes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import datetime as dt
from pathlib import Path
import sys

from cryptography import x509
import segno

from autoadd_device.claims import write_claim_code
from autoadd_device.files import (
    IDEVID_CHAIN,
    INVOICE,
    DeviceFileError,
    write_atomic,
    write_identity,
    write_invoice,
    write_root,
)
from custom_components.autoadd.protocol.certificates import (
    certificate_hash,
    certificate_to_pem,
    load_pem_certificates,
)
from custom_components.autoadd.protocol.chain import issue_invoice
from custom_components.autoadd.protocol.claim_code import format_claim_code, new_claim_code
from custom_components.autoadd.protocol.errors import AutoAddError
from custom_components.autoadd.protocol.home_key import format_home_key, parse_home_keys
from custom_components.autoadd.protocol.idevid import device_id_for
from custom_components.autoadd.protocol.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    generate_private_key,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_pem,
)
from custom_components.autoadd.protocol.manufacturer import (
    make_device_ca_certificate,
    make_idevid_certificate,
    make_root_certificate,
    make_signer_certificate,
)
from custom_components.autoadd.protocol.recovery_key import format_recovery_key

from .describe import describe

ROOT_KEY, ROOT_CERT, SIGNER_KEY, SIGNER_CERT = "root.key", "root.pem", "signer.key", "signer.pem"
DEVICE_CA_KEY, DEVICE_CA_CERT = "device-ca.key", "device-ca.pem"


class VendorError(Exception):
    """A failure to report to the user: names the file or field at fault."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _read_key(path: Path) -> PrivateKey:
    try:
        return private_key_from_pem(path.read_bytes())
    except OSError as err:
        raise VendorError(f"{path}: cannot be read: {err.strerror}") from err
    except AutoAddError as err:
        raise VendorError(f"{path}: {err.detail}") from err


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return load_pem_certificates(path.read_bytes())[0]
    except OSError as err:
        raise VendorError(f"{path}: cannot be read: {err.strerror}") from err
    except AutoAddError as err:
        raise VendorError(f"{path}: {err.detail}") from err


def _refuse_existing(paths: Sequence[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise VendorError(f"{', '.join(existing)} already exist(s); pass --force to replace")


def cmd_init(args: argparse.Namespace) -> None:
    """Create (or import keys for) a manufacturer root CA and an invoice-signing certificate."""
    folder: Path = args.vendor
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        folder / name
        for name in (ROOT_KEY, ROOT_CERT, SIGNER_KEY, SIGNER_CERT, DEVICE_CA_KEY, DEVICE_CA_CERT)
    ]
    _refuse_existing(paths, args.force)
    key_type = KeyType(args.key_type)
    root_key = _read_key(args.root_key) if args.root_key else generate_private_key(key_type)
    signer_key = _read_key(args.signer_key) if args.signer_key else generate_private_key(key_type)
    now = _now()
    root = make_root_certificate(root_key, args.name, now=now, serial=x509.random_serial_number())
    signer = make_signer_certificate(
        root_key, root, signer_key.public_key(), now=now, serial=x509.random_serial_number()
    )
    if args.device_ca:
        ca_key = generate_private_key(key_type)
        ca = make_device_ca_certificate(
            root_key, root, ca_key.public_key(), now=now, serial=x509.random_serial_number()
        )
        write_atomic(folder / DEVICE_CA_KEY, private_key_to_pem(ca_key), mode=0o600)
        write_atomic(folder / DEVICE_CA_CERT, certificate_to_pem(ca))
    else:
        for path in (folder / DEVICE_CA_KEY, folder / DEVICE_CA_CERT):
            path.unlink(missing_ok=True)
    write_atomic(folder / ROOT_KEY, private_key_to_pem(root_key), mode=0o600)
    write_atomic(folder / SIGNER_KEY, private_key_to_pem(signer_key), mode=0o600)
    write_atomic(folder / ROOT_CERT, certificate_to_pem(root))
    write_atomic(folder / SIGNER_CERT, certificate_to_pem(signer))
    print(f"manufacturer {args.name!r} in {folder}: {ROOT_CERT} is the root owners trust")


def cmd_provision(args: argparse.Namespace) -> None:
    """Create device directories with fresh IDevID keys and certificates."""
    if (args.vendor / DEVICE_CA_KEY).exists():
        issuer_key, issuer = _read_key(args.vendor / DEVICE_CA_KEY), _read_cert(args.vendor / DEVICE_CA_CERT)
        intermediates = [issuer]
    else:
        issuer_key, issuer = _read_key(args.vendor / ROOT_KEY), _read_cert(args.vendor / ROOT_CERT)
        intermediates = []
    args.out.mkdir(parents=True, exist_ok=True)
    number = 1
    for _ in range(args.count):
        while (args.out / f"{args.serial_prefix}{number:04d}").exists():
            number += 1
        serial = f"{args.serial_prefix}{number:04d}"
        folder = args.out / serial
        key = generate_private_key(KeyType(args.key_type))
        cert = make_idevid_certificate(
            issuer_key,
            issuer,
            key.public_key(),
            serial_number=serial,
            model=args.model,
            now=_now(),
            serial=x509.random_serial_number(),
        )
        staging = args.out / f".{serial}.partial"
        write_identity(staging, key, [cert, *intermediates])
        if args.offer_root:
            write_root(staging, _read_cert(args.vendor / ROOT_CERT))
        staging.rename(folder)
        print(f"{folder}  device id {device_id_for(key.public_key()).hex()}")


def _home_keys(text: str) -> tuple[PublicKey, ...]:
    """The keys a home key string names: the home key, and the home's recovery key if it has one."""
    try:
        return parse_home_keys(text)
    except AutoAddError as err:
        raise VendorError(f"--home {text!r}: {err.detail}") from err


def cmd_invoice(args: argparse.Namespace) -> None:
    """Issue a device's invoice to the buyer's home key string(s), or to no one with a claim code."""
    if bool(args.home) == args.unassigned:
        raise VendorError("give --home (one per owner) or --unassigned, not both")
    owners = [key for text in args.home or () for key in _home_keys(text)]
    signer_key = _read_key(args.vendor / SIGNER_KEY)
    signer = _read_cert(args.vendor / SIGNER_CERT)
    cert_path = args.device / IDEVID_CHAIN
    device_cert = _read_cert(cert_path)
    _refuse_existing([args.device / INVOICE], args.force)
    try:
        device_key = device_cert.public_key()
        invoice = issue_invoice(
            signer=signer_key,
            signer_chain=[signer],
            device_id=device_id_for(device_key),  # type: ignore[arg-type]
            idevid_hash=certificate_hash(device_cert),
            owners=owners,
            issued_at=int(_now().timestamp()),
            model=args.model,
            order_ref=args.order,
        )
    except AutoAddError as err:
        raise VendorError(f"{cert_path}: {err.detail}") from err
    write_invoice(args.device, [invoice])
    if args.unassigned:
        _ship_claim_code(args, device_id_for(device_key))  # type: ignore[arg-type]
        return
    print(f"{args.device / INVOICE}: invoice to {len(owners)} owner(s)")


def _ship_claim_code(args: argparse.Namespace, device_id: bytes) -> None:
    """Unassigned stock: a fresh claim code in the device directory, and its label (text and QR) to print
    on the device and its box."""
    text = format_claim_code(new_claim_code(device_id))
    write_claim_code(args.device, text)
    label = args.label or args.device.with_name(f"{args.device.name}.claim.svg")
    segno.make(text, error="m").save(label, kind="svg", scale=4, border=2)
    print(f"{args.device / INVOICE}: invoice to no owner (unassigned stock)")
    print(f"claim code {text}: print it on the device and its box ({label} holds its QR code)")


def cmd_inspect(args: argparse.Namespace) -> None:
    """Print any artifact in readable form."""
    roots = load_pem_certificates(args.root.read_bytes()) if args.root else None
    try:
        data = args.file.read_bytes()
    except OSError as err:
        raise VendorError(f"{args.file}: cannot be read: {err.strerror}") from err
    print(describe(data, roots=roots, now=_now()))


def cmd_home_key(args: argparse.Namespace) -> None:
    """Make (or read) a home key and print its home key string."""
    if args.key_file:
        data = args.key_file.read_bytes()
        try:
            public = (
                public_key_from_pem(data)
                if b"PUBLIC KEY" in data
                else private_key_from_pem(data).public_key()
            )
        except AutoAddError as err:
            raise VendorError(f"{args.key_file}: {err.detail}") from err
    else:
        if args.recovery_out is not None and args.recovery_out.resolve() == args.out.resolve():
            raise VendorError("--recovery-out must name another file than --out")
        _refuse_existing([args.out, *([args.recovery_out] if args.recovery_out else [])], args.force)
        key = generate_private_key(KeyType(args.key_type))
        write_atomic(args.out, private_key_to_pem(key), mode=0o600)
        public = key.public_key()
    recovery = None
    if args.recovery_out:
        _refuse_existing([args.recovery_out], args.force)  # checked again with --key-file
        recovery_key = generate_private_key(KeyType(args.key_type))
        write_atomic(args.recovery_out, (format_recovery_key(recovery_key) + "\n").encode(), mode=0o600)
        recovery = recovery_key.public_key()
    print(format_home_key(public, recovery))


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="autoadd-vendor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    key_types = [t.value for t in KeyType]

    init = sub.add_parser("init", help="create a manufacturer root CA and invoice-signing key")
    init.add_argument(
        "--vendor", type=Path, required=True, help="folder for the manufacturer's keys and certificates"
    )
    init.add_argument("--name", required=True, help="manufacturer name (the root's organisation)")
    init.add_argument(
        "--key-type", choices=key_types, default="ed25519", help="type of new keys (default ed25519)"
    )
    init.add_argument(
        "--root-key", type=Path, help="import this PEM private key as the root key (e.g. openssl genpkey)"
    )
    init.add_argument(
        "--signer-key", type=Path, help="import this PEM private key as the invoice-signing key"
    )
    init.add_argument(
        "--device-ca",
        action="store_true",
        help="also create an intermediate Device CA that issues the IDevIDs",
    )
    init.add_argument("--force", action="store_true", help="replace an existing manufacturer in --vendor")
    init.set_defaults(run=cmd_init)

    prov = sub.add_parser("provision", help="create device directories with fresh IDevIDs")
    prov.add_argument("--vendor", type=Path, required=True, help="the manufacturer folder made by init")
    prov.add_argument("--out", type=Path, required=True, help="folder to create the device directories in")
    prov.add_argument("--model", required=True, help="model name written into each IDevID certificate")
    prov.add_argument("--serial-prefix", default="SN", help="serial numbers are PREFIX0001, PREFIX0002, ...")
    prov.add_argument("--count", type=int, default=1, help="how many devices (default 1)")
    prov.add_argument(
        "--key-type", choices=key_types, default="ed25519", help="IDevID key type (default ed25519)"
    )
    prov.add_argument(
        "--offer-root",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ship root.pem with each device, offered to homes that do not trust this manufacturer yet, "
        "whose owners are then asked (default: yes)",
    )
    prov.set_defaults(run=cmd_provision)

    inv = sub.add_parser("invoice", help="issue a device's invoice to one or more home key strings")
    inv.add_argument("device", type=Path, help="the device directory (made by provision)")
    inv.add_argument("--vendor", type=Path, required=True, help="the manufacturer folder made by init")
    inv.add_argument("--home", action="append", help="the buyer's home key string; repeat for co-owners")
    inv.add_argument(
        "--unassigned",
        action="store_true",
        help="sell with no owner: write a claim code into the device directory and print it (§14.9)",
    )
    inv.add_argument("--label", type=Path, help="where the claim code's QR label goes (an SVG)")
    inv.add_argument("--model", help="model name recorded in the invoice")
    inv.add_argument("--order", help="order reference recorded in the invoice")
    inv.add_argument("--force", action="store_true", help="replace an existing invoice.cbor")
    inv.set_defaults(run=cmd_invoice)

    ins = sub.add_parser("inspect", help="print an invoice chain, note, message or certificate")
    ins.add_argument("file", type=Path, help="a .cbor artifact or a PEM certificate file")
    ins.add_argument("--root", type=Path, help="PEM root(s) to verify against")
    ins.set_defaults(run=cmd_inspect)

    home = sub.add_parser("home-key", help="make a home key pair and print its home key string")
    home.add_argument("--out", type=Path, default=Path("home.key"), help="where to write the new private key")
    home.add_argument("--key-type", choices=key_types, default="ed25519", help="key type (default ed25519)")
    home.add_argument("--key-file", type=Path, help="print the string for this existing PEM key instead")
    home.add_argument("--force", action="store_true", help="replace an existing --out file")
    home.add_argument(
        "--recovery-out",
        type=Path,
        help="also make a recovery key, write its recovery key string (AARK1-...) here, and print the home "
        "key string naming both keys (AAHK2-...)",
    )
    home.set_defaults(run=cmd_home_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors name the file or field at fault and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (VendorError, DeviceFileError) as err:
        print(f"autoadd-vendor: error: {err}", file=sys.stderr)
        return 1
    return 0

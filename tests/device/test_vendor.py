"""autoadd-vendor: a manufacturer's complete session, standard files that openssl reads, clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import shutil
import subprocess

import pytest

from autoadd_device.device import ReferenceDevice
from autoadd_vendor.cli import main
from custom_components.autoadd.protocol.certificates import certificate_to_der, load_pem_certificates
from custom_components.autoadd.protocol.chain import decode_chain, verify_chain
from custom_components.autoadd.protocol.claim_code import parse_claim_code
from custom_components.autoadd.protocol.home_key import parse_home_key, parse_home_keys
from custom_components.autoadd.protocol.idevid import verify_idevid
from custom_components.autoadd.protocol.keys import fingerprint, format_fingerprint
from custom_components.autoadd.protocol.recovery_key import parse_recovery_key

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=False)


@pytest.fixture
def vendor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    folder = tmp_path / "acme"
    assert run(["init", "--vendor", str(folder), "--name", "Acme", "--device-ca"], capsys)[0] == 0
    return folder


def test_complete_session(vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init, provision, home-key, invoice, inspect: the device directory then runs as a reference device."""
    devices = tmp_path / "devices"
    code, out, _ = run(
        ["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1", "--count", "2"],
        capsys,
    )
    assert code == 0
    assert sorted(p.name for p in devices.iterdir()) == ["SN0001", "SN0002"]
    code, home_string, _ = run(["home-key", "--out", str(tmp_path / "home.key")], capsys)
    assert code == 0
    home = parse_home_key(home_string.strip())
    code, out, _ = run(
        [
            "invoice",
            "--vendor",
            str(vendor),
            str(devices / "SN0001"),
            "--home",
            home_string.strip(),
            "--order",
            "ORDER-1",
        ],
        capsys,
    )
    assert code == 0
    code, out, _ = run(
        ["inspect", str(devices / "SN0001" / "invoice.cbor"), "--root", str(vendor / "root.pem")], capsys
    )
    assert code == 0
    assert "verifies against the given root: yes" in out
    assert f"current owners: {format_fingerprint(fingerprint(home))}\n" in out  # the 8 groups shown in HA
    assert "ORDER-1" in out

    root = load_pem_certificates((vendor / "root.pem").read_bytes())
    now = dt.datetime.now(dt.UTC)
    certs = load_pem_certificates((devices / "SN0001" / "idevid.pem").read_bytes())
    identity = verify_idevid([certificate_to_der(c) for c in certs], root, now)
    chain = verify_chain(
        decode_chain((devices / "SN0001" / "invoice.cbor").read_bytes()), roots=root, now=now, device=identity
    )
    assert chain.head.is_owner(home)
    device = ReferenceDevice(devices / "SN0001", clock=lambda: 0.0)
    assert device.device_id == identity.device_id
    assert device.manufacturer == "Acme"


@needs_openssl
def test_openssl_reads_and_verifies_the_idevid(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`openssl x509 -text` reads the IDevID; `openssl verify` accepts it through the Device CA."""
    devices = tmp_path / "devices"
    run(["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1"], capsys)
    device_pem = devices / "SN0001" / "idevid.pem"
    certs = load_pem_certificates(device_pem.read_bytes())
    assert len(certs) == 2
    leaf, intermediate = tmp_path / "leaf.pem", tmp_path / "intermediates.pem"
    leaf.write_bytes(
        device_pem.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    )
    intermediate.write_bytes((vendor / "device-ca.pem").read_bytes())
    text = openssl("x509", "-text", "-noout", "-in", str(leaf))
    assert text.returncode == 0, text.stderr
    assert "serialNumber=SN0001" in text.stdout.replace(" = ", "=")
    assert "ED25519" in text.stdout
    verify = openssl(
        "verify", "-CAfile", str(vendor / "root.pem"), "-untrusted", str(intermediate), str(leaf)
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.strip().endswith("OK")
    stranger = openssl("verify", "-CAfile", str(vendor / "signer.pem"), str(leaf))
    assert stranger.returncode != 0


@needs_openssl
@pytest.mark.parametrize(
    ("algorithm", "options"),
    [("ED25519", []), ("EC", ["-pkeyopt", "ec_paramgen_curve:P-256"])],
)
def test_openssl_keys_import(
    algorithm: str, options: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys made by `openssl genpkey` serve as home keys and as manufacturer keys."""
    key = tmp_path / "key.pem"
    assert openssl("genpkey", "-algorithm", algorithm, *options, "-out", str(key)).returncode == 0
    code, out, _ = run(["home-key", "--key-file", str(key)], capsys)
    assert code == 0
    parse_home_key(out.strip())
    public = tmp_path / "pub.pem"
    assert openssl("pkey", "-in", str(key), "-pubout", "-out", str(public)).returncode == 0
    assert run(["home-key", "--key-file", str(public)], capsys)[1] == out
    code, _, err = run(
        [
            "init",
            "--vendor",
            str(tmp_path / "m"),
            "--name",
            "M",
            "--root-key",
            str(key),
            "--signer-key",
            str(key),
        ],
        capsys,
    )
    assert code == 0, err
    verify = openssl(
        "verify", "-CAfile", str(tmp_path / "m" / "root.pem"), str(tmp_path / "m" / "signer.pem")
    )
    assert verify.returncode == 0, verify.stderr


@needs_openssl
def test_rsa_key_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An RSA key is not an AutoAdd key: the error names the file, and nothing is written."""
    key = tmp_path / "rsa.pem"
    assert (
        openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)
        ).returncode
        == 0
    )
    code, _, err = run(
        ["init", "--vendor", str(tmp_path / "m"), "--name", "M", "--root-key", str(key)], capsys
    )
    assert code == 1
    assert str(key) in err
    assert not (tmp_path / "m" / "root.pem").exists()


def test_bad_home_key_string_writes_no_invoice(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped home key string is named in the error and no invoice is written."""
    devices = tmp_path / "devices"
    run(["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1"], capsys)
    code, home_string, _ = run(["home-key", "--out", str(tmp_path / "home.key")], capsys)
    typo = home_string.strip()[:-1] + ("A" if home_string.strip()[-1] != "A" else "B")
    code, _, err = run(["invoice", "--vendor", str(vendor), str(devices / "SN0001"), "--home", typo], capsys)
    assert code == 1
    assert "--home" in err
    assert "checksum" in err
    assert not (devices / "SN0001" / "invoice.cbor").exists()


def test_missing_vendor_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Provisioning without a manufacturer names the missing file."""
    code, _, err = run(
        ["provision", "--vendor", str(tmp_path / "none"), "--out", str(tmp_path / "d"), "--model", "X"],
        capsys,
    )
    assert code == 1
    assert "root.key" in err


def test_existing_files_are_not_replaced(vendor: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init refuses to overwrite a manufacturer unless told to."""
    before = (vendor / "root.pem").read_bytes()
    code, _, err = run(["init", "--vendor", str(vendor), "--name", "Other"], capsys)
    assert code == 1
    assert "--force" in err
    assert (vendor / "root.pem").read_bytes() == before


def test_inspect_reports_a_chain_that_does_not_verify(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inspect against another manufacturer's root says the chain does not verify, and why."""
    devices = tmp_path / "devices"
    run(["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1"], capsys)
    _, home_string, _ = run(["home-key", "--out", str(tmp_path / "home.key")], capsys)
    run(["invoice", "--vendor", str(vendor), str(devices / "SN0001"), "--home", home_string.strip()], capsys)
    run(["init", "--vendor", str(tmp_path / "other"), "--name", "Other"], capsys)
    _, out, _ = run(
        ["inspect", str(devices / "SN0001" / "invoice.cbor"), "--root", str(tmp_path / "other" / "root.pem")],
        capsys,
    )
    assert "verification FAILED: untrusted_manufacturer" in out
    _, out, _ = run(["inspect", str(devices / "SN0001" / "idevid.pem")], capsys)
    assert "serialNumber=SN0001" in out.replace("2.5.4.5", "serialNumber")


@pytest.mark.parametrize("tool", ["autoadd_vendor", "autoadd_device"])
def test_help_explains_every_option(tool: str) -> None:
    """--help prints the usage and a line for each option."""
    import sys

    result = subprocess.run(
        [sys.executable, "-m", tool, "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0
    assert "usage:" in result.stdout
    if tool == "autoadd_device":
        for option in (
            "--count",
            "--address",
            "--interface",
            "--port",
            "--no-mdns",
            "--rate",
            "--burst",
            "--factory-reset",
            "--log-level",
        ):
            assert option in result.stdout


def test_provision_ships_the_root_unless_told_not_to(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each device directory gets the manufacturer's root.pem to offer (§14.7); --no-offer-root leaves it
    out."""
    base = ["provision", "--vendor", str(vendor), "--model", "Lamp 1"]
    assert run([*base, "--out", str(tmp_path / "with")], capsys)[0] == 0
    assert run([*base, "--out", str(tmp_path / "without"), "--no-offer-root"], capsys)[0] == 0
    shipped = tmp_path / "with" / "SN0001" / "root.pem"
    assert shipped.read_bytes() == (vendor / "root.pem").read_bytes()
    assert not (tmp_path / "without" / "SN0001" / "root.pem").exists()


def test_a_home_key_with_a_recovery_key_invoices_both(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """home-key --recovery-out prints the AAHK2 string naming both keys; invoice --home with it names
    both as owners (§5, §5.1); the recovery key string file reads back as the recovery key."""
    devices = tmp_path / "devices"
    assert (
        run(["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1"], capsys)[0]
        == 0
    )
    code, out, _ = run(
        ["home-key", "--out", str(tmp_path / "home.key"), "--recovery-out", str(tmp_path / "rk.txt")], capsys
    )
    assert code == 0
    text = out.strip()
    assert text.startswith("AAHK2-")
    home, recovery = parse_home_keys(text)
    assert parse_recovery_key((tmp_path / "rk.txt").read_text()).public_key() == recovery
    assert (tmp_path / "rk.txt").stat().st_mode & 0o777 == 0o600
    assert run(["invoice", "--vendor", str(vendor), str(devices / "SN0001"), "--home", text], capsys)[0] == 0
    links = decode_chain((devices / "SN0001" / "invoice.cbor").read_bytes())
    head = verify_chain(links, roots=None, now=dt.datetime.now(dt.UTC)).head
    assert head.owner_fingerprints == (fingerprint(home), fingerprint(recovery))


def test_home_key_and_recovery_key_files_must_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both files are checked before either is written: one path for both is refused, nothing written."""
    same = tmp_path / "keys.txt"
    code, _, err = run(["home-key", "--out", str(same), "--recovery-out", str(same)], capsys)
    assert code != 0
    assert "another file" in err
    assert not same.exists()


def test_unassigned_stock_ships_a_claim_code(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """invoice --unassigned: no owner, a claim code in the device directory (0600) and a QR label to print;
    the device starts with it and the code is printed for the box."""
    devices = tmp_path / "devices"
    run(["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1"], capsys)
    folder = devices / "SN0001"
    code, out, _ = run(["invoice", "--vendor", str(vendor), str(folder), "--unassigned", "--force"], capsys)
    assert code == 0
    text = (folder / "claim_code").read_text().strip()
    assert f"claim code {text}" in out
    assert (folder / "claim_code").stat().st_mode & 0o777 == 0o600
    assert (devices / "SN0001.claim.svg").read_text().startswith("<?xml")
    device = ReferenceDevice(folder, clock=lambda: 0.0)
    assert device.chain.head.owners == ()
    assert device.claims is not None
    assert parse_claim_code(text).is_for(device.device_id)


def test_unassigned_or_homes_not_both(
    vendor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = tmp_path / "devices"
    run(["provision", "--vendor", str(vendor), "--out", str(devices), "--model", "Lamp 1"], capsys)
    code, home_string, _ = run(["home-key", "--out", str(tmp_path / "home.key")], capsys)
    args = ["invoice", "--vendor", str(vendor), str(devices / "SN0001"), "--force"]
    for extra in ([], ["--unassigned", "--home", home_string.strip()]):
        code, _, err = run([*args, *extra], capsys)
        assert code != 0
        assert "give --home (one per owner) or --unassigned, not both" in err

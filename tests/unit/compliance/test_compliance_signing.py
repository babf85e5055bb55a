"""Signed reports: `audit run --sign-*`, `audit sign` and `audit verify` on real PDFs (pyHanko).

The test PKI follows the pki_ca role (EC P-256 root, issuing CA with pathlen 0) and issues a
document-signing leaf (digitalSignature + nonRepudiation); keys live only in tmp_path.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dcops.cli import app
from dcops.cli.failures import run
from dcops.compliance import Evidence
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, split
from dcops.compliance.manifest import item_hash

ROOT = Path(__file__).resolve().parents[3]
HOST_KEY = "ssh-ed25519 SHA256:3f5yQ0YlQnP0nuv2kYV0Bd8rVW9yG4qzD1Uu0Rk2Yq8"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dong Nai"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool,
          pathlen: int | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(digital_signature=not ca, content_commitment=not ca,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=397))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True)
            .add_extension(usage, critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _pki(folder: Path, province: str) -> dict[str, Path]:
    """Root, issuing CA and a signer's key and certificate, as PEM files in `folder`."""
    folder.mkdir(parents=True)
    root_key, issuing_key, leaf_key = (ec.generate_private_key(ec.SECP256R1())
                                       for _ in range(3))
    certs = {"root": _cert(f"{province} Root CA", root_key, f"{province} Root CA", root_key,
                           ca=True, pathlen=1),
             "issuing": _cert(f"{province} Issuing CA", issuing_key, f"{province} Root CA",
                              root_key, ca=True, pathlen=0),
             "leaf": _cert("Nguyen Van A", leaf_key, f"{province} Issuing CA", issuing_key,
                           ca=False)}
    paths = {}
    for name, cert in certs.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"] = folder / "leaf.key"
    paths["key"].write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


def _dcops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(app, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A signed report from recorded evidence of two hosts, and the PKI that signed it."""
    base = tmp_path_factory.mktemp("signed")
    pki = _pki(base / "pki", "Dong Nai")
    hardened = (Path(__file__).parent / "data" / "hardened.txt").read_text(encoding="utf-8")
    ev = Evidence()
    for host in ("lab-app1", "lab-db1"):
        sections = split(hardened)
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n,
                                host_key=HOST_KEY) for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections)
    recorded = base / "recorded.json"
    recorded.write_text(json.dumps(ev.to_dict()), encoding="utf-8")
    out = base / "out"
    code = run(app, ["audit", "run", "-i", str(ROOT / "inventories" / "lab"), "--from-evidence",
                     str(recorded), "--out", str(out), "--prepared-by", "Nguyễn Văn A",
                     "--approved-by", "Trần Thị B, Giám đốc Sở", "--sign-key", str(pki["key"]),
                     "--sign-cert", str(pki["leaf"]), "--sign-chain", str(pki["issuing"])])
    assert code == 0
    return {**pki, "out": out}


@pytest.fixture
def report(signed: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the signed report's folder, free to tamper with."""
    shutil.copytree(signed["out"], tmp_path / "out")
    return tmp_path / "out"


def test_signed_report_verifies(signed: dict[str, Path], report: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _dcops(capsys, "audit", "verify", str(report / "report.pdf"),
                          "--ca", str(signed["root"]))
    assert code == 0, out
    assert "đạt / verified" in out and "FAIL" not in out
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    items = {i["id"]: i["sha256"] for i in manifest["evidence"]["items"]}
    records = json.loads((report / "evidence.json").read_text(encoding="utf-8"))["records"]
    assert list(items) == [r["id"] for r in records] and "ssh:lab-app1:sshd" in items
    html = (report / "report.html").read_text(encoding="utf-8")
    assert manifest["manifest_sha256"] in html
    assert "Người lập" in html and "Approved by" in html and "Trần Thị B, Giám đốc Sở" in html
    assert manifest["approval"]["reviewed_by"] == ""  # a blank signature line


def test_a_flipped_pdf_byte_fails_the_signature(signed: dict[str, Path], report: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pdf = report / "report.pdf"
    data = bytearray(pdf.read_bytes())
    at = data.index(b"WeasyPrint")  # the Producer, inside the signed revision
    data[at] ^= 0x01
    pdf.write_bytes(bytes(data))
    code, out, _ = _dcops(capsys, "audit", "verify", str(pdf), "--ca", str(signed["root"]))
    assert code == 1
    assert "FAIL Toàn vẹn chữ ký / Signature intact" in out
    assert "đạt / verified" not in out


def test_bytes_appended_after_signing_fail_the_coverage(
        signed: dict[str, Path], report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pdf = report / "report.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n% appended after signing\n")
    code, out, _ = _dcops(capsys, "audit", "verify", str(pdf), "--ca", str(signed["root"]))
    assert code == 1 and "FAIL Phạm vi chữ ký / Signature covers the whole file" in out


def test_an_edited_evidence_output_is_named(signed: dict[str, Path], report: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = report / "evidence.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    record = next(r for r in doc["records"] if r["id"] == "ssh:lab-db1:sshd")
    record["output"] = record["output"].replace("permitrootlogin no", "permitrootlogin yes")
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    code, out, _ = _dcops(capsys, "audit", "verify", str(report / "report.pdf"),
                          "--ca", str(signed["root"]))
    assert code == 1
    fails = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert fails == ["FAIL evidence:ssh:lab-db1:sshd: SHA-256 differs from the manifest's "
                     "(command, output, host, time or host key changed)"]


def test_a_changed_finding_fails(signed: dict[str, Path], report: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = report / "findings.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"not_met"', '"met"', 1),
                    encoding="utf-8")
    code, out, _ = _dcops(capsys, "audit", "verify", str(report / "report.pdf"),
                          "--ca", str(signed["root"]))
    assert code == 1 and "FAIL findings.json: SHA-256 differs" in out


def test_a_manifest_beside_the_pdf_cannot_replace_the_signed_one(
        signed: dict[str, Path], report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = report / "manifest.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["findings"]["sha256"] = "0" * 64
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, _ = _dcops(capsys, "audit", "verify", str(report / "report.pdf"),
                          "--ca", str(signed["root"]))
    assert code == 1 and "differs from the embedded (signed) manifest" in out


def test_another_provinces_ca_fails(report: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    other = _pki(tmp_path / "other", "Binh Duong")
    code, out, _ = _dcops(capsys, "audit", "verify", str(report / "report.pdf"),
                          "--ca", str(other["root"]))
    assert code == 1 and "FAIL Chuỗi chứng thư / Certificate chains to --ca" in out


def test_a_missing_file_is_one_line_and_exit_2(signed: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    nope = str(tmp_path / "nope.pem")
    for argv in (["audit", "verify", str(tmp_path / "nope.pdf")],
                 ["audit", "verify", str(signed["out"] / "report.pdf"), "--ca", nope],
                 ["audit", "run", "-i", str(ROOT / "inventories" / "lab"), "--no-ssh",
                  "--out", str(tmp_path / "never"), "--sign-key", nope,
                  "--sign-cert", str(signed["leaf"])]):
        code, out, err = _dcops(capsys, *argv)
        assert code == 2, argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "nope." in lines[0]
        assert "Traceback" not in out + err
    assert not (tmp_path / "never").exists()  # refused before any work


def test_without_a_ca_the_chain_is_said_unchecked(signed: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _dcops(capsys, "audit", "verify", str(signed["out"] / "report.pdf"))
    assert code == 0 and "NOT checked against a CA" in out


def test_unsigned_report_fails_until_signed(signed: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "unsigned"
    code, _, _ = _dcops(capsys, "audit", "run", "-i", str(ROOT / "inventories" / "lab"),
                        "--from-evidence", str(signed["out"] / "evidence.json"),
                        "--out", str(out))
    assert code == 0
    pdf = out / "report.pdf"
    code, text, _ = _dcops(capsys, "audit", "verify", str(pdf), "--ca", str(signed["root"]))
    assert code == 1 and "the PDF carries no signature" in text
    code, _, err = _dcops(capsys, "audit", "sign", str(pdf), "--sign-key", str(signed["key"]),
                          "--sign-cert", str(signed["root"]))
    assert code == 1 and "does not belong to --sign-cert" in err  # the wrong certificate
    code, _, _ = _dcops(capsys, "audit", "sign", str(pdf), "--sign-key", str(signed["key"]),
                        "--sign-cert", str(signed["leaf"]), "--sign-chain",
                        str(signed["issuing"]))
    assert code == 0
    code, text, _ = _dcops(capsys, "audit", "verify", str(pdf), "--ca", str(signed["root"]))
    assert code == 0, text
    code, _, err = _dcops(capsys, "audit", "sign", str(pdf), "--sign-key", str(signed["key"]),
                          "--sign-cert", str(signed["leaf"]))
    assert code == 1 and "already signed" in err


def test_item_hash_covers_the_host_key(signed: dict[str, Path]) -> None:
    from dataclasses import replace

    doc = json.loads((signed["out"] / "evidence.json").read_text(encoding="utf-8"))
    record = Evidence.from_dict(doc).records["ssh:lab-app1:sshd"]
    assert record.host_key == HOST_KEY
    assert item_hash(replace(record, host_key="ssh-ed25519 SHA256:other")) != item_hash(record)


def test_a_signed_report_covers_its_crosscheck(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`audit crosscheck` then a signed `audit run` into the same folder: verify holds, and an
    edited crosscheck.json is named."""
    pki = _pki(tmp_path / "pki", "Dong Nai")
    bare = (Path(__file__).parent / "data" / "bare.txt").read_text(encoding="utf-8")
    ev = Evidence()
    sections = split(bare)
    records = {n: ev.record("ssh", "lab-app1", "lab-app1", SECTIONS[n], o, rc=rc, name=n,
                            host_key=HOST_KEY) for n, (o, rc) in sections.items()}
    parse_host(ev, "lab-app1", records, sections)
    recorded, out = tmp_path / "recorded.json", tmp_path / "out"
    recorded.write_text(json.dumps(ev.to_dict()), encoding="utf-8")
    inv = str(ROOT / "inventories" / "lab")
    results = Path(__file__).parent / "data" / "crosscheck" / "oscap-bare-bookworm.xml"
    assert run(app, ["audit", "crosscheck", "-i", inv, "--from-evidence", str(recorded),
                     "--out", str(out), "--hosts", "lab-app1", "--scanner", "openscap",
                     "--no-iac", "--oscap-results", f"lab-app1={results}"]) == 0
    assert run(app, ["audit", "run", "-i", inv, "--from-evidence", str(out / "evidence.json"),
                     "--out", str(out), "--no-iac", "--system", "lgsp",
                     "--sign-key", str(pki["key"]), "--sign-cert", str(pki["leaf"]),
                     "--sign-chain", str(pki["issuing"])]) == 0
    capsys.readouterr()
    code, text, _ = _dcops(capsys, "audit", "verify", str(out / "report.pdf"),
                           "--ca", str(pki["root"]))
    assert code == 0, text
    doc = json.loads((out / "crosscheck.json").read_text(encoding="utf-8"))
    doc["rows"][0]["verdict"] = "agree" if doc["rows"][0]["verdict"] != "agree" else "disagree"
    (out / "crosscheck.json").write_text(json.dumps(doc), encoding="utf-8")
    code, text, _ = _dcops(capsys, "audit", "verify", str(out / "report.pdf"),
                           "--ca", str(pki["root"]))
    assert code == 1
    assert "crosscheck.json" in text and "SHA-256 differs" in text, text

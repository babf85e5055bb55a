"""Anchors of the trail's head: cadence, forged and foreign anchors, the syslog copy, a PKI-issued
ECDSA certificate checked against its CA, and the CLI (`trail init`, `anchor`, `verify-audit`)."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from trail_helpers import det, tamper, trail_config
from typer.testing import CliRunner

from dcops.alerts import AlertStore, default_url
from dcops.alerts.anchor import make_lab_signer
from dcops.alerts.chain import rotate_key
from dcops.cli import app


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alerts.db'}"


def anchors_in(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cadence_every_n_records_forced_on_rotation_and_flushed_on_close(
        url: str, tmp_path: Path) -> None:
    s = AlertStore(url, trail=trail_config(tmp_path, anchor_every=3))
    for n in range(1, 8):
        s.accept([det(n)])
    assert [a["seq"] for a in anchors_in(tmp_path / "anchors.jsonl")] == [3, 6]
    rotate_key(s.engine, "adm")  # record 8, anchored at once
    assert [a["seq"] for a in anchors_in(tmp_path / "anchors.jsonl")] == [3, 6, 8]
    s.accept([det(9)])
    s.close()  # what this process wrote since the last anchor is anchored
    got = anchors_in(tmp_path / "anchors.jsonl")
    assert [a["seq"] for a in got] == [3, 6, 8, 9]
    assert {a["alg"] for a in got} == {"ed25519"} and got[0]["kind"] == "dcops.trail.anchor"
    again = AlertStore(url, trail=trail_config(tmp_path))
    try:
        r = again.verify_audit()
    finally:
        again.close()
    assert r.ok and (r.anchors_checked, r.last_anchor_seq, r.checked) == (4, 9, 9), r


@pytest.fixture
def anchored(url: str, tmp_path: Path) -> Iterator[AlertStore]:
    s = AlertStore(url, trail=trail_config(tmp_path))
    s.accept([det(1), det(2)])
    s.trail.anchor_now(s.engine)
    s.accept([det(3)])
    s.trail.anchor_now(s.engine)
    yield s
    s.close()


def test_altered_anchor_line_is_refused(anchored: AlertStore, tmp_path: Path) -> None:
    f = tmp_path / "anchors.jsonl"
    lines = f.read_text().splitlines()
    doc = json.loads(lines[1])
    doc["seq"] = 2  # claim a shorter trail was anchored
    f.write_text(lines[0] + "\n" + json.dumps(doc) + "\n")
    r = anchored.verify_audit()
    assert not r.ok and r.first_bad is None
    assert r.reason == f"{f}:2: the signature does not match (anchor forged or altered)"


def test_anchor_signed_by_a_key_outside_our_pki_is_refused(anchored: AlertStore,
                                                           tmp_path: Path) -> None:
    rogue = AlertStore(anchored.url, trail=trail_config(
        tmp_path / "rogue", key_file=tmp_path / "keys" / "trail.key",
        anchor_file=tmp_path / "anchors.jsonl"))
    try:
        rogue.trail.anchor_now(rogue.engine)
    finally:
        rogue.close()
    r = anchored.verify_audit()
    assert not r.ok and "anchors.jsonl:3: signed with certificate" in r.reason
    assert "not among the trusted anchor certificates" in r.reason


def test_syslog_copy_alone_detects_truncation(url: str, tmp_path: Path) -> None:
    """Anchors go to syslog over UDP (the standard SysLogHandler); the anchor file is then lost
    with the database, and the copy the syslog server kept still proves the truncation."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        port = rx.getsockname()[1]
        s = AlertStore(url, trail=trail_config(tmp_path, syslog=f"udp://127.0.0.1:{port}"))
        s.accept([det(1), det(2), det(3)])
        s.trail.anchor_now(s.engine)
        datagram = rx.recv(65535).decode()
    assert datagram.startswith("<86>dcops-trail-anchor: {")  # authpriv.info
    copy = tmp_path / "syslog-server.log"
    copy.write_text(f"Dec  2 03:00:00 soc1 {datagram[4:]}\nDec  2 03:00:01 soc1 sshd: other\n")
    (tmp_path / "anchors.jsonl").unlink()
    with s.engine.connect() as conn:
        h1 = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 1")).scalar_one()
    tamper(s.engine, "DELETE FROM audit_log WHERE seq > 1",
           "UPDATE audit_head SET seq = 1, hash = :h WHERE id = 1", h=h1)
    s.close()
    verifier = AlertStore(url, trail=trail_config(tmp_path, anchor_sources=(copy,)))
    try:
        r = verifier.verify_audit()
    finally:
        verifier.close()
    assert not r.ok and r.first_bad == 2
    assert f"{copy}:1" in r.reason and "records 2..3 (at least) were removed" in r.reason


def _pki(base: Path) -> tuple[Path, Path, Path, Path]:
    """A CA and an ECDSA P-256 certificate it issued (digitalSignature), as pki_cert issues."""
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("issuing-ca")).issuer_name(name("issuing-ca"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("soc1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=9))
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                         False), critical=False)
            .sign(ca_key, hashes.SHA256()))
    base.mkdir(parents=True, exist_ok=True)
    paths = base / "host.key", base / "host.crt", base / "chain.pem", base / "other-ca.pem"
    paths[0].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    make_lab_signer(base / "x.key", paths[3], "someone-else")
    return paths


def test_pki_ecdsa_certificate_checked_against_its_ca(url: str, tmp_path: Path) -> None:
    key, cert, chain, other = _pki(tmp_path / "pki-ca")
    s = AlertStore(url, trail=trail_config(tmp_path, anchor_key=key, anchor_cert=cert,
                                           anchor_ca=chain))
    try:
        s.accept([det(1)])
        s.trail.anchor_now(s.engine)
        r = s.verify_audit()
        assert r.ok and r.anchors_checked == 1, r
        assert anchors_in(tmp_path / "anchors.jsonl")[0]["alg"] == "ecdsa-sha256"
    finally:
        s.close()
    wrong = AlertStore(url, trail=trail_config(tmp_path, anchor_key=key, anchor_cert=cert,
                                               anchor_ca=other))
    try:
        r = wrong.verify_audit()
    finally:
        wrong.close()
    assert not r.ok and "not issued by the given CA" in r.reason


runner = CliRunner()


def test_cli_init_anchor_verify_rotate_and_truncation(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DCOPS_TRAIL_SYSLOG", "off")
    for var in ("DCOPS_DB_URL", "DCOPS_TRAIL_KEY", "DCOPS_TRAIL_KEY_FILE",
                "DCOPS_TRAIL_ANCHOR_KEY", "DCOPS_TRAIL_ANCHOR_CERT", "DCOPS_TRAIL_ANCHOR_FILE"):
        monkeypatch.delenv(var, raising=False)
    r = runner.invoke(app, ["alerts", "trail", "init", "--self-signed"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "trail.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "trail-anchor.key").stat().st_mode & 0o777 == 0o600
    from dcops.cli.alerts_trail import trail_config as cli_trail

    s = AlertStore(default_url(tmp_path), trail=cli_trail())
    s.accept([det(1), det(2), det(3)])
    s.close()  # anchors record 3
    r = runner.invoke(app, ["alerts", "trail", "rotate-key", "--reason", "test"])
    assert r.exit_code == 0, r.output
    assert "new key" in r.output
    r = runner.invoke(app, ["alerts", "anchor"])
    assert r.exit_code == 0 and "anchored record #4" in r.output, r.output
    r = runner.invoke(app, ["alerts", "verify-audit"])
    assert r.exit_code == 0, r.output
    assert "4 records verified" in r.output and "up to #4" in r.output
    s = AlertStore(default_url(tmp_path), trail=cli_trail())
    with s.engine.connect() as conn:
        h2 = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 2")).scalar_one()
    tamper(s.engine, "DELETE FROM audit_log WHERE seq > 2",
           "UPDATE audit_head SET seq = 2, hash = :h WHERE id = 1", h=h2)
    s.engine.dispose()
    r = runner.invoke(app, ["alerts", "verify-audit"])
    assert r.exit_code == 1
    assert "first bad record #3" in r.output and "were removed" in r.output
    r = runner.invoke(app, ["alerts", "verify-audit", "--json"])
    assert r.exit_code == 1
    assert json.loads(r.output[r.output.index("{"):])["first_bad"] == 3


@pytest.mark.parametrize("how", ["delete", "empty"])
def test_deleted_anchor_file_with_truncation_is_not_ok(anchored: AlertStore, tmp_path: Path,
                                                       how: str) -> None:
    """Review attack: drop the newest records, fix the head, delete (or empty) the anchor file.
    With anchoring configured that must not verify as a clean, merely unanchored trail."""
    tamper(anchored.engine, "DELETE FROM audit_log WHERE seq > 2")
    tamper(anchored.engine, "UPDATE audit_head SET seq = 2, hash = "
                            "(SELECT hash FROM audit_log WHERE seq = 2)")
    f = tmp_path / "anchors.jsonl"
    if how == "delete":
        f.unlink()
    else:
        f.write_text("")
    r = anchored.verify_audit()
    assert not r.ok and "anchor file" in r.reason and "missing or holds no anchor" in r.reason, r

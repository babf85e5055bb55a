"""Certificate probe against real local TLS servers: expiry, failures, events, metrics, CLI."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.collectors import tls_probe
from dcops.collectors.tls_probe import Target, action, events, parse_target, probe_all
from dcops.detect.engine import Engine
from dcops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
HOUR = timedelta(hours=1)


@dataclass
class Pki:
    """A CA and leaf certificates written as PEM files in a tmp dir."""

    dir: Path
    ca_key: ec.EllipticCurvePrivateKey = field(init=False)
    ca: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DCOPS Test Issuing CA")])
        now = datetime.now(UTC)
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=400))
                   .not_valid_after(now + timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                False, False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                       self.ca_key.public_key()), critical=False)
                   .sign(self.ca_key, hashes.SHA256()))
        self.ca_file.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def leaf(self, cn: str, not_after: timedelta, *, self_signed: bool = False,
             ) -> tuple[Path, Path, x509.Certificate]:
        """Write cert and key for `cn` (SANs: cn, localhost, 127.0.0.1); return their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(subject if self_signed else self.ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(min(now - timedelta(days=30), now + not_after - HOUR))
             .not_valid_after(now + not_after)
             .add_extension(x509.SubjectAlternativeName([
                 x509.DNSName(cn), x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
             .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False))
        if not self_signed:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.ca_key.public_key()), critical=False)
        cert = b.sign(key if self_signed else self.ca_key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{cn}.crt", self.dir / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path, cert


class Server:
    """A TCP server in a thread: TLS with a certificate, or plain TCP sending a banner."""

    def __init__(self, cert: Path | None = None, key: Path | None = None) -> None:
        self.ctx = None
        self.server_names: list[str | None] = []
        if cert and key:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
            self.ctx.sni_callback = lambda _s, name, _c: self.server_names.append(name)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                if self.ctx is None:
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")
                    conn.recv(4096)
                else:
                    with self.ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)  # until the client closes
            except OSError:  # clients that refuse our certificate abort the handshake
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@dataclass
class Lab:
    pki: Pki
    expiring: Server
    valid: Server
    expired: Server
    self_signed: Server
    plain: Server
    closed_port: int
    certs: dict[str, x509.Certificate]

    def target(self, server: Server, name: str = "", sni: str = "") -> Target:
        return Target("127.0.0.1", server.port, sni, name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    made = {n: pki.leaf(n, d, self_signed=n == "selfsigned.test")
            for n, d in [("expiring.test", timedelta(days=5) + HOUR),
                         ("valid.test", timedelta(days=200) + HOUR),
                         ("expired.test", -timedelta(days=2) - HOUR),
                         ("selfsigned.test", timedelta(days=90) + HOUR)]}
    servers = {n: Server(c, k) for n, (c, k, _) in made.items()}
    plain = Server()
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    yield Lab(pki, servers["expiring.test"], servers["valid.test"], servers["expired.test"],
              servers["selfsigned.test"], plain, closed,
              {n: cert for n, (_, _, cert) in made.items()})
    for srv in [*servers.values(), plain]:
        srv.close()


def _by_target(results: list[tls_probe.ProbeResult]) -> dict[str, tls_probe.ProbeResult]:
    return {r.target: r for r in results}


def test_days_left_actions_and_verification(lab: Lab) -> None:
    ts = {n: lab.target(s, n) for n, s in [("expiring", lab.expiring), ("valid", lab.valid),
                                           ("expired", lab.expired),
                                           ("self", lab.self_signed)]}
    results = probe_all(list(ts.values()), timeout=5, ca_file=lab.pki.ca_file)
    r = {n: _by_target(results)[t.spec] for n, t in ts.items()}
    assert all(x.ok for x in r.values()), [x.error for x in r.values()]
    exp = r["expiring"].cert
    assert exp is not None
    assert exp.days_left == 5 and exp.subject_cn == "expiring.test"
    assert exp.issuer_cn == "DCOPS Test Issuing CA"
    assert exp.serial == f"{lab.certs['expiring.test'].serial_number:X}"
    assert set(exp.sans) == {"expiring.test", "localhost", "127.0.0.1"}
    assert exp.not_after == lab.certs["expiring.test"].not_valid_after_utc
    assert r["valid"].cert is not None and r["valid"].cert.days_left == 200
    assert r["expired"].cert is not None and r["expired"].cert.days_left == -3
    assert {n: action(x, x.cert) for n, x in r.items()} == {
        "expiring": "certificate-expiring", "valid": "certificate-valid",
        "expired": "certificate-expired", "self": "certificate-valid"}
    assert action(r["expiring"], r["expiring"].cert, warn_days=5) == "certificate-valid"
    # verification against --ca-file: valid and expiring chain to the CA and match 127.0.0.1
    assert r["valid"].verified is True and r["expiring"].verified is True
    assert r["expired"].verified is False and "expired" in r["expired"].verify_error
    assert r["self"].verified is False and r["self"].verify_error
    # against the system bundle the test CA is unknown: read anyway, not verified
    (sys_r,) = probe_all([ts["valid"]], timeout=5)
    assert sys_r.ok and sys_r.verified is False and sys_r.cert is not None


def test_sni_is_sent_and_hostname_checked(lab: Lab) -> None:
    (r,) = probe_all([parse_target(f"127.0.0.1:{lab.valid.port}@portal.example")],
                     ca_file=lab.pki.ca_file)
    assert "portal.example" in lab.valid.server_names
    assert r.ok and r.sni == "portal.example"
    assert r.verified is False and "portal.example" in r.verify_error  # not in the SANs
    (ok,) = probe_all([parse_target(f"localhost:{lab.valid.port}")], ca_file=lab.pki.ca_file)
    assert ok.verified is True


def test_bad_targets_fail_alone(lab: Lab, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    targets = [lab.target(lab.valid), Target("127.0.0.1", lab.closed_port),
               lab.target(lab.plain), lab.target(lab.expiring)]
    cert_file = lab.pki.dir / "expiring.test.crt"
    results = probe_all(targets, [garbage, tmp_path / "missing.pem", cert_file], timeout=2,
                        ca_file=lab.pki.ca_file, file_host="syslog-01")
    assert len(results) == 7
    valid, refused, plain, expiring, bad, missing, good_file = results
    assert valid.ok and expiring.ok and good_file.ok
    assert (refused.error_kind, plain.error_kind) == ("refused", "tls")
    assert "connection refused" in refused.error and "not a TLS service" in plain.error
    assert bad.error_kind == "parse" and str(garbage) in bad.error
    assert missing.error_kind == "file" and "cannot read" in missing.error
    assert all(action(r, r.cert) == "certificate-probe-failed"
               for r in (refused, plain, bad, missing))
    assert good_file.host == "syslog-01" and good_file.verified is True
    assert good_file.cert is not None and good_file.cert.days_left == 5
    assert tls_probe.needs_attention([valid]) is False
    assert tls_probe.needs_attention([valid, refused]) is True


def test_timeout_is_reported() -> None:
    srv = socket.create_server(("127.0.0.1", 0))  # listens, never answers the ClientHello
    try:
        (r,) = probe_all([Target("127.0.0.1", srv.getsockname()[1])], timeout=0.3)
    finally:
        srv.close()
    assert r.error_kind == "timeout" and "0.3s" in r.error


def test_file_bundle_reports_every_certificate(lab: Lab, tmp_path: Path) -> None:
    bundle = tmp_path / "fullchain.pem"
    bundle.write_bytes((lab.pki.dir / "valid.test.crt").read_bytes()
                       + lab.pki.ca_file.read_bytes())
    (r,) = probe_all([], [bundle], ca_file=lab.pki.ca_file)
    assert [c.subject_cn for c in r.certs] == ["valid.test", "DCOPS Test Issuing CA"]
    assert r.verified is True
    assert len(events([r])) == 2


def test_events_fields_and_stable_ids(lab: Lab) -> None:
    t = lab.target(lab.expiring, "portal-web-01")
    first = events(probe_all([t], ca_file=lab.pki.ca_file))
    again = events(probe_all([t], ca_file=lab.pki.ca_file))
    (e,) = first
    assert [x.id for x in again] == [e.id]  # same target, serial and day: same id
    f = e.fields
    assert e.source == "tls_probe"
    assert (e.logsource.product, e.logsource.service) == ("pki", "tls_probe")
    assert f["event.module"] == "tls_probe" and f["event.action"] == "certificate-expiring"
    assert f["host.name"] == "portal-web-01"
    assert f["server.address"] == "127.0.0.1" and f["server.port"] == lab.expiring.port
    assert f["tls.server.x509.subject.common_name"] == "expiring.test"
    assert f["tls.server.x509.issuer.common_name"] == "DCOPS Test Issuing CA"
    assert "127.0.0.1" in f["tls.server.x509.alternative_names"]
    assert f["tls.server.x509.serial_number"] == f"{lab.certs['expiring.test'].serial_number:X}"
    assert datetime.fromisoformat(f["tls.server.x509.not_after"]) == \
        lab.certs["expiring.test"].not_valid_after_utc
    assert "tls.server.x509.not_before" in f
    assert f["tls.server.days_left"] == 5 and f["tls.server.verified"] is True
    assert "expires in 5 days" in f["message"]
    # host.name defaults to the address; failures carry the reason
    (fail,) = events(probe_all([Target("127.0.0.1", lab.closed_port)]))
    assert fail.fields["event.action"] == "certificate-probe-failed"
    assert fail.fields["host.name"] == "127.0.0.1" and fail.fields["error.type"] == "refused"
    assert fail.fields["event.outcome"] == "failure" and "refused" in fail.fields["message"]
    file_ev = events(probe_all([], [lab.pki.dir / "expired.test.crt"]))[0]
    assert file_ev.fields["file.path"].endswith("expired.test.crt")
    assert file_ev.fields["event.action"] == "certificate-expired"
    assert "server.address" not in file_ev.fields


def test_events_through_detection(lab: Lab) -> None:
    engine = Engine.from_dirs([ROOT / "soc_rules"])
    evs = events(probe_all([lab.target(lab.expiring, "portal-web-01"),
                            lab.target(lab.valid, "lgsp-app-01"),
                            lab.target(lab.expired, "syslog-01")]))
    by_host: dict[str, set[str]] = {}
    for d in engine.process(evs):
        by_host.setdefault(d.host, set()).add(d.rule_title)
    assert by_host == {
        "portal-web-01": {"TLS Certificate Close To Expiry"},
        "syslog-01": {"TLS Certificate Close To Expiry", "TLS Certificate Expired"},
    }


def test_metrics_exposition(lab: Lab) -> None:
    m = tls_probe.TlsMetrics()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(m)
    results = probe_all([lab.target(lab.expiring, "portal-web-01"),
                         Target("127.0.0.1", lab.closed_port, name="dead")],
                        ca_file=lab.pki.ca_file)
    m.update(results)
    text = generate_latest(reg).decode()
    exp_t = f"127.0.0.1:{lab.expiring.port}"
    dead_t = f"127.0.0.1:{lab.closed_port}"
    cert = lab.certs["expiring.test"]
    line = (f'dcops_tls_cert_not_after_timestamp_seconds{{host="portal-web-01",'
            f'issuer_cn="DCOPS Test Issuing CA",serial="{cert.serial_number:X}",'
            f'subject_cn="expiring.test",target="{exp_t}"}} ')
    assert line in text
    assert float(text.split(line)[1].split("\n")[0]) == cert.not_valid_after_utc.timestamp()
    assert f'dcops_tls_probe_success{{host="portal-web-01",target="{exp_t}"}} 1.0' in text
    assert f'dcops_tls_probe_success{{host="dead",target="{dead_t}"}} 0.0' in text
    assert f'dcops_tls_cert_verified{{host="portal-web-01",target="{exp_t}"}} 1.0' in text
    assert f'dcops_tls_probe_duration_seconds{{host="dead",target="{dead_t}"}}' in text
    assert 'dcops_tls_cert_verified{host="dead"' not in text  # unknown, not "unverified"


def test_parse_target_and_targets_file(tmp_path: Path) -> None:
    assert parse_target("portal.gov.vn:8443@www.portal.gov.vn") == \
        Target("portal.gov.vn", 8443, "www.portal.gov.vn", "portal.gov.vn")
    assert parse_target("portal.gov.vn").port == 443
    assert parse_target("[::1]:443").spec == "[::1]:443"
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_target("portal.gov.vn:https")
    f = tmp_path / "targets.yml"
    f.write_text("- {name: portal-web-01, target: '10.10.20.11:443', sni: dichvucong.gov.vn}\n"
                 "- {name: lgsp, target: 'lgsp:8443'}\n")
    assert tls_probe.load_targets(f) == [
        Target("10.10.20.11", 443, "dichvucong.gov.vn", "portal-web-01"),
        Target("lgsp", 8443, "", "lgsp")]
    f.write_text("- {name: ok, target: 'a:443'}\n- {name: bad}\n")
    with pytest.raises(ConfigError, match=r"targets\.yml:2: entry 2") as ei:
        tls_probe.load_targets(f)
    assert ei.value.file == str(f)
    f.write_text("- {name: x, target: 'a:443', port: 1}\n")
    with pytest.raises(ConfigError, match="unknown keys port"):
        tls_probe.load_targets(f)
    f.write_text("- {name: x, target: 'a:99999'}\n")
    with pytest.raises(ConfigError, match=r"targets\.yml:1: entry 1 target"):
        tls_probe.load_targets(f)
    f.write_text("targets: {}\n")
    with pytest.raises(ConfigError, match="expected a list"):
        tls_probe.load_targets(f)


def _cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["collect", "certs", *args], env={"COLUMNS": "250"})
    return r.exit_code, r.output


def test_cli_once_table_json_and_exit_code(lab: Lab, tmp_path: Path) -> None:
    ca = str(lab.pki.ca_file)
    code, out = _cli("--target", f"127.0.0.1:{lab.valid.port}", "--ca-file", ca, "--once",
                     "--no-spool")
    assert code == 0, out
    assert "số ngày còn lại / days left" in out.lower() and "valid.test" in out
    assert "200" in out
    code, out = _cli("--target", f"127.0.0.1:{lab.valid.port}", "--target",
                     f"127.0.0.1:{lab.expiring.port}", "--ca-file", ca, "--once", "--no-spool")
    assert code == 1 and "expiring / sắp hết hạn" in out, out
    code, out = _cli("--target", f"127.0.0.1:{lab.valid.port}", "--warn-days", "365",
                     "--once", "--no-spool", "--json")
    assert code == 1
    (row,) = json.loads(out)
    assert row["action"] == "certificate-expiring" and row["days_left"] == 200
    code, out = _cli("--target", f"127.0.0.1:{lab.closed_port}", "--once", "--no-spool")
    assert code == 1 and "connection refused" in out
    targets = tmp_path / "t.yml"
    targets.write_text("- {name: portal}\n")
    code, out = _cli("--targets-file", str(targets), "--once", "--no-spool")
    assert code == 1 and isinstance(CliRunner().invoke(app, [
        "collect", "certs", "--targets-file", str(targets), "--once"]).exception, ConfigError)


@pytest.mark.slow  # loads pySigma and waits for the detection thread twice (~6 s)
def test_cli_spool_and_detect(lab: Lab, tmp_path: Path) -> None:
    from dcops.alerts import AlertStore
    from dcops.pipeline import SqliteSpool

    spool, db = tmp_path / "spool.db", f"sqlite:///{tmp_path / 'alerts.db'}"
    args = ["--target", f"127.0.0.1:{lab.expiring.port}", "--target",
            f"127.0.0.1:{lab.valid.port}", "--once", "--spool", str(spool), "--detect",
            "--rules", str(ROOT / "soc_rules"), "--db", db]
    assert _cli(*args)[0] == 1
    assert _cli(*args)[0] == 1  # the same day again: no new events
    sp = SqliteSpool(spool)
    try:
        stored = [e for _, e in sp.fetch_after(0, 100)]
    finally:
        sp.close()
    assert len({e.id for e in stored}) == len(stored) == 2
    store = AlertStore(db)
    try:
        titles = [a.rule_title for a in store.query()]
    finally:
        store.close()
    assert titles == ["TLS Certificate Close To Expiry"]

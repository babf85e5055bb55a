"""`dcops collect syslog` TLS with certificates issued by the project's own PKI roles.

The issuing task files of the pki_ca role (root, intermediate, crl, publish) and of pki_cert
(certificate: key, request, signed by the issuing CA) run with ansible-playbook against this
machine (connection local), every path pointed into a temporary directory: a root and an issuing
CA, a server certificate for localhost/127.0.0.1 and a client certificate for a forwarder. The
other task files are left out because they change the machine itself (the apt index, the system
trust store, pki_ca's CRL re-sign timer in /etc/systemd); the full chain is assembled as pki_cert's
trust.yml writes it (host certificate, then the issuing CA). rsyslog (GnuTLS) then verifies the
server against the PKI chain, and with mutual TLS the server accepts the PKI client and refuses
and counts the others.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from soc_rsyslog import feed_until, free_port, rsyslog_module, rsyslogd

from dcops.pipeline import SqliteSpool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="rsyslog not installed"),
    pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger missing"),
]

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@dataclass
class ProjectPki:
    chain: Path  # issuing CA then root (pki_ca's chain.pem)
    root: Path
    server_fullchain: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def project_pki(tmp_path_factory: pytest.TempPathFactory) -> ProjectPki:
    if os.geteuid() != 0:
        pytest.skip("the PKI roles install files owned by root")
    d = tmp_path_factory.mktemp("project-pki")
    inv = d / "inventory.yml"
    inv.write_text(
        textwrap.dedent(f"""
        all:
          hosts:
            localhost:
              ansible_connection: local
              ansible_host: 127.0.0.1
              pki_cert_cert_dir: {d}/server
              pki_cert_key_path: {d}/server/host.key
            fwd-client:
              ansible_connection: local
              pki_cert_cert_dir: {d}/client
              pki_cert_key_path: {d}/client/host.key
          vars:
            ansible_python_interpreter: {sys.executable}
            pki_ca_dir: {d}/ca
            pki_ca_publish_dir: {d}/public
            pki_ca_controller_dir: {d}/controller
            pki_cert_controller_dir: {d}/controller
            pki_cert_ca_host: localhost
            pki_cert_ca_dir: {d}/ca
        """)
    )
    play = d / "pki.yml"
    play.write_text(
        textwrap.dedent("""
        - name: The province's CA (the issuing task files of pki_ca)
          hosts: localhost
          gather_facts: false
          tasks:
            - {name: Root CA, ansible.builtin.import_role: {name: pki_ca, tasks_from: root.yml}}
            - name: Issuing CA
              ansible.builtin.import_role: {name: pki_ca, tasks_from: intermediate.yml}
            - {name: CRL, ansible.builtin.import_role: {name: pki_ca, tasks_from: crl.yml}}
            - name: Publish
              ansible.builtin.import_role: {name: pki_ca, tasks_from: publish.yml}
        - name: Host certificates (pki_cert's key, request and signing by the issuing CA)
          hosts: all
          gather_facts: false
          tasks:
            - name: Key and certificate
              ansible.builtin.import_role: {name: pki_cert, tasks_from: certificate.yml}
        """)
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(REPO / "playbooks" / "roles"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"),
    )
    r = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inv), str(play)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    fullchain = d / "server" / "fullchain.pem"
    fullchain.write_text(
        (d / "server" / "host.crt").read_text() + (d / "controller" / "issuing-ca.crt").read_text()
    )
    return ProjectPki(
        chain=d / "controller" / "chain.pem",
        root=d / "controller" / "root-ca.crt",
        server_fullchain=fullchain,
        server_key=d / "server" / "host.key",
        client_cert=d / "client" / "host.crt",
        client_key=d / "client" / "host.key",
    )


@dataclass
class Collector:
    proc: subprocess.Popen[str]
    port: int
    spool: Path

    def messages(self) -> list[str]:
        sp = SqliteSpool(self.spool)
        try:
            return [str(e.fields.get("message")) for _, e in sp.fetch("t", 1_000_000)]
        finally:
            sp.close()

    def stop(self) -> dict[str, int]:
        """SIGTERM, then the stats the CLI prints on its way out."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        line = next(ln for ln in err.splitlines() if ln.startswith("syslog: stopped; "))
        stats: dict[str, int] = ast.literal_eval(line.removeprefix("syslog: stopped; "))
        return stats


@contextmanager
def collector(tmp_path: Path, *tls_args: str) -> Iterator[Collector]:
    """`dcops collect syslog` on a TLS port only, until the block ends (stopped by the test)."""
    port = free_port(socket.SOCK_STREAM)
    spool = tmp_path / "spool.db"
    proc = subprocess.Popen(
        [
            str(BIN / "dcops"),
            "collect",
            "syslog",
            "--udp-port=-1",
            "--tcp-port=-1",
            f"--tls-port={port}",
            *tls_args,
            "--spool",
            str(spool),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"), COLUMNS="1000"),
    )
    c = Collector(proc, port, spool)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "listening" in first, first + proc.stderr.read()
        yield c
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def _gtls_conf(tmp_path: Path, port: int, ca: Path, in_port: int, client: str = "") -> str:
    assert rsyslog_module("lmnsd_gtls.so") is not None, "rsyslog-gnutls is not installed"
    return f"""
global(workDirectory="{tmp_path}" defaultNetstreamDriverCAFile="{ca}" {client})
module(load="imudp")
ruleset(name="fwd_tls") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost")
}}
input(type="imudp" address="127.0.0.1" port="{in_port}" ruleset="fwd_tls")
"""


def test_rsyslog_verifies_the_collector_against_the_pki_chain(
    project_pki: ProjectPki, tmp_path: Path
) -> None:
    args = [
        "--tls-cert",
        str(project_pki.server_fullchain),
        "--tls-key",
        str(project_pki.server_key),
    ]
    with collector(tmp_path, *args) as c:
        # The full chain is served: a client trusting only the PKI root verifies the name too.
        ctx = ssl.create_default_context(cafile=str(project_pki.root))
        with (
            socket.create_connection(("127.0.0.1", c.port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            s.sendall(
                b"<38>Nov 22 05:00:00 web1 sshd[1]: Accepted password for ops from "
                b"10.0.0.2 port 5 ssh2 via-python\n"
            )
            s.unwrap()
        in_port = free_port()
        conf = _gtls_conf(tmp_path, c.port, project_pki.chain, in_port)
        with rsyslogd(conf, tmp_path):
            assert feed_until(
                in_port, "via-gtls", lambda: any("via-gtls" in m for m in c.messages())
            ), "rsyslog did not deliver over TLS"
        stats = c.stop()
    msgs = c.messages()
    assert any("via-python" in m for m in msgs) and any("via-gtls" in m for m in msgs), msgs
    assert stats["tls_accepted"] >= 2 and stats.get("tls_refused", 0) == 0, stats


def _client_without_pki_cert(
    port: int, ca: Path, cert: tuple[Path, Path] | None, marker: str
) -> None:
    """A TLS client that trusts the collector but has no (or a self-signed) certificate."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3: the client's handshake ends before the server checked its certificate;
                # the refusal arrives as an alert on the next read.
                s.sendall(f"<38>Nov 22 05:00:00 web1 sshd[1]: {marker}\n".encode())
                assert s.recv(100) == b"", "the collector answered a client it should refuse"
        except (ssl.SSLError, ConnectionError):
            pass


def test_mutual_tls_accepts_pki_clients_and_counts_the_rest(
    project_pki: ProjectPki, tmp_path: Path
) -> None:
    selfsigned = (tmp_path / "self.crt", tmp_path / "self.key")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(selfsigned[1]),
            "-out",
            str(selfsigned[0]),
            "-subj",
            "/O=dcops/CN=fwd-client",
            "-days",
            "2",
            "-addext",
            "extendedKeyUsage=clientAuth",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    args = [
        "--tls-cert",
        str(project_pki.server_fullchain),
        "--tls-key",
        str(project_pki.server_key),
        "--tls-ca",
        str(project_pki.chain),
        "--require-client-cert",
    ]
    with collector(tmp_path, *args) as c:
        _client_without_pki_cert(c.port, project_pki.chain, None, "no-cert")
        _client_without_pki_cert(c.port, project_pki.chain, selfsigned, "self-signed")
        in_port = free_port()
        client = (
            f'defaultNetstreamDriverCertFile="{project_pki.client_cert}" '
            f'defaultNetstreamDriverKeyFile="{project_pki.client_key}"'
        )
        conf = _gtls_conf(tmp_path, c.port, project_pki.chain, in_port, client)
        with rsyslogd(conf, tmp_path):
            assert feed_until(
                in_port, "via-mtls", lambda: any("via-mtls" in m for m in c.messages())
            ), "the PKI client was not accepted"
        stats = c.stop()
    msgs = c.messages()
    assert not any("no-cert" in m or "self-signed" in m for m in msgs), msgs
    assert stats["tls_refused"] == 2, stats
    assert stats["tls_accepted"] >= 1, stats


def test_mutual_tls_without_a_ca_is_refused(project_pki: ProjectPki, tmp_path: Path) -> None:
    r = subprocess.run(
        [
            str(BIN / "dcops"),
            "collect",
            "syslog",
            "--udp-port=-1",
            "--tcp-port=-1",
            f"--tls-port={free_port(socket.SOCK_STREAM)}",
            "--tls-cert",
            str(project_pki.server_fullchain),
            "--tls-key",
            str(project_pki.server_key),
            "--require-client-cert",
            "--spool",
            str(tmp_path / "spool.db"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env=dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"), COLUMNS="1000"),
    )
    assert r.returncode != 0
    assert "--tls-ca" in r.stderr, r.stderr

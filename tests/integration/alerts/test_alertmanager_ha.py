"""Alertmanager HA as the monitoring_server role deploys it: two real Alertmanagers gossiping with
`--cluster.peer`, each on a host of its own (a network namespace per host, as lab hosts are), their
arguments rendered by the role from an inventory with one monitoring host per DC.

Both get every alert, as each Prometheus sends to all Alertmanagers. A webhook receiver in the
controller namespace counts notifications: one alert notified once by the pair (not twice), and an
alert whose first Alertmanager is stopped before it notifies still notified once (not zero).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "pipeline"))  # namespace helpers of the bus cluster
sys.path.insert(0, str(HERE.parents[2] / "unit" / "iac"))  # role rendering
from natscluster import _ip, in_netns  # noqa: E402
from role_render import ROOT, render  # noqa: E402

pytestmark = pytest.mark.integration
T = TypeVar("T")
SUBNET = "10.251.0"  # inside the test's own namespaces only
HOOK_PORT = 9480
TOKEN = "ha-test-webhook-token-0123456789"
PEER_TIMEOUT = 3  # seconds, monitoring_server_alertmanager_cluster_peer_timeout for the test
GROUP_WAIT = 10  # the house route for critical DC alerts (monitoring/alertmanager/alertmanager.yml)


@dataclass
class Hook:
    """Notifications received: (alertname, status, sender address)."""

    got: list[tuple[str, str, str]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> list[tuple[str, str, str]]:
        with self.lock:
            return [g for g in self.got if g[0] == name and g[1] == "firing"]


def _handler(hook: Hook) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    hook.bad.append(f"no bearer token from {self.client_address[0]}")
                else:
                    for alert in json.loads(body)["alerts"]:
                        hook.got.append((alert["labels"]["alertname"], alert["status"],
                                         self.client_address[0]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return H


@dataclass
class Pair:
    root: Path
    tag: str = field(default_factory=lambda: f"am{secrets.token_hex(3)}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=lambda: {"soc1": f"{SUBNET}.21",
                                                           "soc2": f"{SUBNET}.22"})

    @property
    def ctl(self) -> str:
        return f"{self.tag}c"

    def network(self) -> None:
        _ip("netns", "add", self.ctl)
        _ip("-n", self.ctl, "link", "set", "lo", "up")
        _ip("-n", self.ctl, "link", "add", "br-mon", "type", "bridge")
        _ip("-n", self.ctl, "addr", "add", f"{SUBNET}.1/24", "dev", "br-mon")
        _ip("-n", self.ctl, "link", "set", "br-mon", "up")
        for i, (host, addr) in enumerate(self.hosts.items()):
            ns = f"{self.tag}{host}"
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.ctl, "link", "add", f"vm{i}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("-n", self.ctl, "link", "set", f"vm{i}", "master", "br-mon", "up")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def run(self, fn: Callable[[], T]) -> T:
        """Call `fn` in a thread of the controller namespace (where both hosts are reachable)."""
        return in_netns(self.ctl, fn)

    def start(self, host: str, args: list[str], config: Path) -> None:
        data = self.root / host / "data"
        data.mkdir(parents=True, exist_ok=True)
        log = (self.root / host / "alertmanager.log").open("ab")
        self.procs[host] = subprocess.Popen(
            ["ip", "netns", "exec", f"{self.tag}{host}", "setpriv", "--pdeathsig", "KILL", "--",
             "prometheus-alertmanager", f"--config.file={config}", f"--storage.path={data}", *args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def api(self, host: str, path: str, body: object = None) -> Any:
        def call() -> Any:
            req = urllib.request.Request(
                f"http://{self.hosts[host]}:9093/api/v2/{path}",
                data=None if body is None else json.dumps(body).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                text = r.read().decode()
                return json.loads(text) if text else None

        return self.run(call)

    def log(self, host: str) -> str:
        return (self.root / host / "alertmanager.log").read_text(errors="replace")[-3000:]

    def stop(self, host: str) -> None:
        """SIGTERM, as `systemctl stop prometheus-alertmanager` sends."""
        proc = self.procs[host]
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(20)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for ns in [f"{self.tag}{h}" for h in self.hosts] + [self.ctl]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the monitoring hosts' network namespaces need root and iproute2")
    if shutil.which("prometheus-alertmanager") is None:
        pytest.fail("prometheus-alertmanager is not installed (scripts/apt-packages.txt)")
    p = Pair(tmp_path / "hosts")
    try:
        p.network()
        yield p
    finally:
        p.close()


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError):
            got = check()
            if got:
                return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _alert(name: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{"labels": {"alertname": name, "severity": "critical", "site": "primary-dc",
                        "device": "dc1-core-sw1"},
             "annotations": {"summary": f"{name} (HA test)"},
             "startsAt": (now - timedelta(seconds=5)).isoformat()}]


def _house_config(tmp: Path) -> Path:
    """monitoring/alertmanager/alertmanager.yml with only the webhook URL and token file moved."""
    token = tmp / "webhook-token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    text = (ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8080/api/v1/alertmanager/webhook",
                        f"http://{SUBNET}.1:{HOOK_PORT}/hook")
    text = text.replace("/etc/prometheus/dcops-webhook-token", str(token))
    config = tmp / "alertmanager.yml"
    config.write_text(text, encoding="utf-8")
    return config


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _certificates(tls: Path, hosts: dict[str, str]) -> None:
    """What pki_cert gives each host (a CA, a host certificate with its IP, serverAuth and
    clientAuth), laid out as the role copies it (monitoring_server_alertmanager_cluster_tls_dir)."""
    tls.mkdir()
    ca_key, ca = tls / "ca.key", tls / "ca.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", ca_key, "-out", ca, "-subj", "/CN=dcops test issuing CA", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for host, addr in hosts.items():
        d = tls / host
        d.mkdir()
        (d / "ext").write_text(f"subjectAltName=DNS:{host},IP:{addr}\n"
                               "extendedKeyUsage=serverAuth,clientAuth\n", encoding="utf-8")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", d / "host.key", "-out", d / "host.csr", "-subj", f"/CN={host}")
        _openssl("x509", "-req", "-in", d / "host.csr", "-CA", ca, "-CAkey", ca_key,
                 "-CAcreateserial", "-out", d / "host.crt", "-days", "2", "-extfile", d / "ext")
        shutil.copy(ca, d / "ca.pem")


@pytest.mark.parametrize("tls", [False, True], ids=["gossip", "gossip-mtls"])
def test_alertmanager_pair_notifies_once_even_when_one_stops(pair: Pair, tmp_path: Path,
                                                             tls: bool) -> None:
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "primary_dc": {"hosts": {"soc1": {"ansible_host": pair.hosts["soc1"]}}},
        "backup_dc": {"hosts": {"soc2": {"ansible_host": pair.hosts["soc2"]}}},
        "monitoring": {"hosts": {"soc1": {}, "soc2": {}}}}}}), encoding="utf-8")
    extra: dict[str, object] = {
        "monitoring_server_alertmanager_cluster_peer_timeout": f"{PEER_TIMEOUT}s"}
    templates = ["etc/default/prometheus-alertmanager.j2", "etc/prometheus/prometheus.yml.j2"]
    if tls:  # the role's mutual TLS for the gossip (--cluster.tls-config)
        _certificates(tmp_path / "tls", pair.hosts)
        extra |= {"monitoring_server_alertmanager_cluster_tls": True,
                  "monitoring_server_alertmanager_cluster_tls_dir":
                      f"{tmp_path / 'tls'}/{{{{ inventory_hostname }}}}"}
        templates.append("etc/prometheus/cluster-tls/cluster-tls.yml.j2")
    rendered = render(inv, "monitoring_server", templates, "monitoring", tmp_path / "rendered",
                      extra)
    if tls:
        for host in pair.hosts:
            (tmp_path / "tls" / host / "cluster-tls.yml").write_text(
                rendered[host]["cluster-tls.yml"], encoding="utf-8")
    for host in pair.hosts:
        prom = yaml.safe_load(rendered[host]["prometheus.yml"])
        assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
            f"{pair.hosts['soc1']}:9093", f"{pair.hosts['soc2']}:9093"]

    hook = Hook()
    server = pair.run(lambda: http.server.ThreadingHTTPServer((f"{SUBNET}.1", HOOK_PORT),
                                                              _handler(hook)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = _house_config(tmp_path)
        for host in pair.hosts:
            [line] = [x for x in rendered[host]["prometheus-alertmanager"].splitlines()
                      if x.startswith("ARGS=")]
            args = shlex.split(shlex.split(line.removeprefix("ARGS="))[0])
            assert any(a.startswith("--cluster.peer=") for a in args), args
            assert any(a.startswith("--cluster.tls-config=") for a in args) is tls, args
            pair.start(host, args, config)

        def settled() -> dict[str, Any] | None:
            status = {h: pair.api(h, "status")["cluster"] for h in pair.hosts}
            ok = all(s["status"] == "ready" and len(s["peers"]) == 2 for s in status.values())
            return status if ok else None

        status = _wait("both Alertmanagers ready with 2 peers", settled, 90)
        # Alertmanager orders members by peer name: the first notifies at once, the second only
        # if the first has not (in its gossiped notification log) after the peer timeout.
        names = {h: s["name"] for h, s in status.items()}
        first, second = sorted(pair.hosts, key=lambda h: names[h])

        t0 = time.monotonic()
        for host in pair.hosts:  # as each Prometheus does: every alert to every Alertmanager
            pair.api(host, "alerts", _alert("HaDedupTest"))
        _wait("a notification of HaDedupTest", lambda: hook.count("HaDedupTest"), GROUP_WAIT + 20)
        time.sleep(2 * PEER_TIMEOUT + 3)  # past the time the second member would have sent
        dedup = hook.count("HaDedupTest")
        dedup_after = time.monotonic() - t0

        for host in pair.hosts:
            pair.api(host, "alerts", _alert("HaFailoverTest"))
        time.sleep(2)  # mid-alert: both hold it in group_wait, neither has notified
        assert hook.count("HaFailoverTest") == []
        pair.stop(first)
        t1 = time.monotonic()
        _wait("a notification of HaFailoverTest from the survivor",
              lambda: hook.count("HaFailoverTest"), GROUP_WAIT + PEER_TIMEOUT + 20)
        failover_after = time.monotonic() - t1
        time.sleep(2 * PEER_TIMEOUT + 3)
        failover = hook.count("HaFailoverTest")
    finally:
        server.shutdown()
        server.server_close()

    if tls:
        log = (pair.root / second / "alertmanager.log").read_text(errors="replace")
        assert "using TLS for gossip" in log
    print(f"\nAlertmanager pair ({'mutual TLS' if tls else 'plain'} gossip) "
          f"{first}({pair.hosts[first]}) + {second}({pair.hosts[second]}), "
          f"peer timeout {PEER_TIMEOUT}s, group_wait {GROUP_WAIT}s:"
          f"\n  HaDedupTest, both running: {len(dedup)} notification(s) from "
          f"{[g[2] for g in dedup]} (checked {dedup_after:.1f}s after the alert)"
          f"\n  HaFailoverTest, {first} stopped mid-alert: {len(failover)} notification(s) from "
          f"{[g[2] for g in failover]} ({failover_after:.1f}s after the stop)")
    assert hook.bad == []
    assert len(dedup) == 1, (dedup, pair.log(first), pair.log(second))
    assert dedup[0][2] == pair.hosts[first]
    assert len(failover) == 1, (failover, pair.log(second))
    assert failover[0][2] == pair.hosts[second]

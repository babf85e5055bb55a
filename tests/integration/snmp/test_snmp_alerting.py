"""A real interface goes down: snmpd, dcops poller, Prometheus rule, Alertmanager, webhook.

Alertmanager runs the house monitoring/alertmanager/alertmanager.yml with only its receiver URLs
pointed at the test's webhook (and its bearer-token secrets file at the test's), so its routing by
severity and site (and its timings) is what delivers: a warning in a DC, a critical in a DC and a
critical at a ward office each reach their own receiver, each with the token.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from snmp_it_helpers import free_tcp_port, need, stop, v2c_device, wait_http

from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import Poller
from dcops.collectors.snmp.profiles import load_profiles
from dcops.collectors.snmp.service import MetricsServer, PollService
from dcops.lab.snmp import Snmpd, free_udp_ports
from dcops.model.event import Event

pytestmark = pytest.mark.integration
MON = Path(__file__).parents[3] / "monitoring"


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    token = "snmp-alerting-test-token-0123456789"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)  # as dcops serve answers without the token
            self.end_headers()
            return
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair in this namespace: taking the peer down makes `a` admin up / oper down."""
    need("ip")
    if os.geteuid() != 0:
        pytest.skip("needs root to create a veth pair")
    a, b = f"dcs{os.getpid() % 100000}a", f"dcs{os.getpid() % 100000}b"
    made = subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a veth pair here: {made.stderr.strip()}")
    try:
        for n in (a, b):
            subprocess.run(["ip", "link", "set", n, "up"], check=True)
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], check=False)


def _query(prom: str, q: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        return list(json.load(r)["data"]["result"])


def _until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_interface_down_alert_reaches_webhook(veth: tuple[str, str], tmp_path: Path) -> None:
    need("snmpd", "prometheus", "prometheus-alertmanager")
    ifname, peer = veth
    received: list[dict[str, Any]] = []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Hook,), {"received": received}))
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    procs: list[subprocess.Popen[bytes]] = []
    events: list[Event] = []

    class ListSink:
        def publish(self, evs: Any) -> None:
            events.extend(evs)

    agent = Snmpd(tmp_path / "snmpd", free_udp_ports(1), community="lab-public").start()
    profiles = load_profiles(MON / "snmp" / "profiles.yml")
    holes = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for h in holes:  # devices that never answer
        h.bind(("127.0.0.1", 0))
    poller = Poller([v2c_device("lab-sw1", agent.ports[0]),
                     v2c_device("dead-core", holes[0].getsockname()[1]),
                     v2c_device("dead-rtr", holes[1].getsockname()[1], site="bien-hoa")],
                    profiles, allow_v2c=True, timeout=0.5, retries=0)
    metrics = SnmpMetrics(profiles, {"primary-dc": "primary_dc", "bien-hoa": "commune"})
    reg = CollectorRegistry(auto_describe=False)  # served as `dcops collect snmp` serves it:
    server = MetricsServer(reg, "127.0.0.1", 0, texts=[metrics.text])  # the text it wrote
    loop = asyncio.new_event_loop()
    halt = asyncio.Event()
    async def collect() -> None:
        try:
            await PollService(poller, metrics, ListSink()).run(1.0, halt)
        finally:
            poller.close()

    collector = threading.Thread(target=loop.run_until_complete, args=(collect(),), daemon=True)
    collector.start()
    try:
        am_port, prom_port = free_tcp_port(), free_tcp_port()
        am_cfg = tmp_path / "am.yml"
        house = yaml.safe_load((MON / "alertmanager" / "alertmanager.yml").read_text())
        hook_url = f"http://127.0.0.1:{hook.server_port}/api/v1/alertmanager/webhook"
        token_file = tmp_path / "dcops-webhook-token"
        token_file.write_text(_Hook.token + "\n")
        for recv in house["receivers"]:
            for wh in recv.get("webhook_configs", []):
                # the only changes to the house file: the URL and the token's secrets file
                wh["url"] = hook_url
                wh["http_config"]["authorization"]["credentials_file"] = str(token_file)
        am_cfg.write_text(yaml.safe_dump(house))
        procs.append(subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={am_cfg}",
             f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("wb")))
        # the house rules with every `for` shortened (promtool tests cover the real windows)
        rules = yaml.safe_load((MON / "prometheus" / "rules" / "noc.rules.yml").read_text())
        for g in rules["groups"]:
            for r in g["rules"]:
                r["for"] = "1s"
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "dcops-snmp", "honor_labels": True,
                                "static_configs": [
                                    {"targets": [f"127.0.0.1:{server.port}"]}]}]}))
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prom.log").open("wb")))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{prom}/-/ready")
        wait_http(f"http://127.0.0.1:{am_port}/-/ready")
        up = f'snmp_if_oper_status{{device="lab-sw1",ifName="{ifname}"}} == 1'
        _until("the interface scraped as up", lambda: _query(prom, up), 30)

        subprocess.run(["ip", "link", "set", peer, "down"], check=True)

        def fired(alertname: str, **labels: str) -> list[tuple[str, dict[str, Any]]]:
            return [(msg["receiver"], a) for msg in received for a in msg["alerts"]
                    if a["labels"].get("alertname") == alertname and a["status"] == "firing"
                    and all(a["labels"].get(k) == v for k, v in labels.items())]

        # house route: critical + a ward (commune site) -> dcops-commune-critical (group_wait 10s)
        (recv, alert), *_ = _until("DeviceUnreachable of the ward router", lambda: fired(
            "DeviceUnreachable", device="dead-rtr"), 60)
        assert recv == "dcops-commune-critical"
        assert (alert["labels"]["site"], alert["labels"]["severity"]) == ("bien-hoa", "critical")
        # critical + primary-dc -> dcops-dc-critical
        (recv, alert), *_ = _until("DeviceUnreachable of the DC router", lambda: fired(
            "DeviceUnreachable", device="dead-core"), 60)
        assert recv == "dcops-dc-critical"
        assert alert["labels"]["site"] == "primary-dc"
        # warning + primary-dc -> dcops-dc (house group_wait 30s)
        (recv, alert), *_ = _until("InterfaceDown at the webhook", lambda: fired(
            "InterfaceDown", ifName=ifname), 90)
        assert recv == "dcops-dc"
        assert alert["labels"]["severity"] == "warning"
        assert (alert["labels"]["site"], alert["labels"]["device"]) == ("primary-dc", "lab-sw1")
        assert alert["annotations"]["runbook_url"].endswith("/InterfaceDown")
        assert any(e.fields["event.action"] == "interface-down"
                   and e.fields["interface.name"] == ifname for e in events)
        assert not [r for r, _ in fired("DeviceUnreachable") + fired("InterfaceDown")
                    if r == "dcops-noc"]  # nothing fell through to the default route

        # the house group_interval is 5m, so the resolved webhook would come minutes later:
        # check that Alertmanager itself has the alert resolved (no longer active)
        am_alerts = f"http://127.0.0.1:{am_port}/api/v2/alerts?" + urllib.parse.urlencode(
            {"filter": 'alertname="InterfaceDown"', "active": "true"})

        def resolved() -> bool:
            with urllib.request.urlopen(am_alerts, timeout=5) as r:
                return not [a for a in json.load(r) if a["labels"].get("ifName") == ifname]

        assert not resolved(), "Alertmanager lists the firing InterfaceDown"
        subprocess.run(["ip", "link", "set", peer, "up"], check=True)
        _until("InterfaceDown no longer firing in Prometheus", lambda: not _query(
            prom, f'ALERTS{{alertname="InterfaceDown",ifName="{ifname}"}}'), 60)
        _until("InterfaceDown resolved in Alertmanager", resolved, 60)
    finally:
        loop.call_soon_threadsafe(halt.set)
        collector.join(10)
        loop.close()
        for p in procs:
            stop(p)
        server.close()
        hook.shutdown()
        agent.stop()
        for h in holes:
            h.close()

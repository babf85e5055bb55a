"""The NOC view in Chromium against a real Prometheus scraping the dcops SNMP poller.

A real net-snmp snmpd answers for ``lab-sw1`` (primary DC); ``dead-rtr`` (the router of a ward
office, Phường Biên Hòa) is
a UDP port nobody answers on. The dcops poller polls both every second and exports /metrics, the
``prometheus`` binary scrapes it every second, and the console reads Prometheus' HTTP API. The
engineer sees lab-sw1 up and dead-rtr down on /noc, the same colours on /noc/map, lab-sw1's
interfaces, CPU and open alert on its page; then snmpd stops and lab-sw1 turns down.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from prometheus_client import CollectorRegistry

from dcops.alerts import AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import Poller
from dcops.collectors.snmp.profiles import load_profiles
from dcops.collectors.snmp.service import MetricsServer, PollService
from dcops.lab.snmp import Snmpd, Snmpsim, free_udp_ports
from dcops.model.site import (
    Device,
    Secret,
    Settings,
    Site,
    SiteKind,
    SiteModel,
    SnmpCredentials,
)
from dcops.triage import create_app
from dcops.triage.noc import NocSource
from dcops.triage.prometheus import PrometheusClient

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
MON = Path(__file__).parents[2] / "monitoring"
#: a Catalyst 9300's recorded tables (ENTITY-SENSOR and CISCO-ENVMON temperatures, CISCO-PROCESS
#: CPU), answered by snmpsim: what snmpd in a container cannot give
C9300 = Path(__file__).parents[1] / "integration" / "snmp" / "data" / "cisco-c9300.snmprec"
COMMUNITY = "lab-public"
ENGINEER = ("eng", "engineer-pass-1")


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _prom_value(prom: str, query: str) -> float | None:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    import json

    with urllib.request.urlopen(url, timeout=5) as r:
        result = json.load(r)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class NocLab:
    base: str
    prom: str
    agent: Snmpd


def _device(name: str, port: int, site: str, device_class: str,
            uplinks: tuple[str, ...] = (), profile: str = "net_snmp",
            community: str = COMMUNITY) -> Device:
    cred = SnmpCredentials("2c", port, community=Secret(community))
    return Device(name, "127.0.0.1", site, device_class, profile, cred, wan_uplinks=uplinks)


@pytest.fixture
def noc_lab(tmp_path: Path) -> Iterator[NocLab]:
    """snmpd + the dcops poller + a real Prometheus + the console with a NOC source."""
    for tool in ("snmpd", "prometheus"):
        if shutil.which(tool) is None:  # a NOC test that cannot run fails (no skip)
            pytest.fail(f"{tool} not installed (scripts/apt-packages.txt)")
    agent = Snmpd(tmp_path / "snmpd", free_udp_ports(1), community=COMMUNITY).start()
    sim = Snmpsim(tmp_path / "snmpsim", free_udp_ports(1)[0], {"c9300": C9300}).start()
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))  # a device that never answers
    devices = [_device("lab-sw1", agent.ports[0], "primary-dc", "core_switch"),
               _device("dead-rtr", hole.getsockname()[1], "bien-hoa", "commune_router",
                       ("GigabitEthernet0/0/0",)),
               _device("lab-c9300", sim.port, "backup-dc", "core_switch", (), "cisco_switch",
                       "c9300")]
    sites = [Site("primary-dc", SiteKind.PRIMARY_DC, "Primary DC", "TTDL chính"),
             Site("backup-dc", SiteKind.BACKUP_DC, "Backup DC", "TTDL dự phòng"),
             Site("bien-hoa", SiteKind.COMMUNE, "Bien Hoa Ward", "Phường Biên Hòa",
                  admin_code="26068", admin_type="phường"),
             Site("tam-phuoc", SiteKind.COMMUNE, "Tam Phuoc Ward", "Phường Tam Phước",
                  admin_type="phường"),
             Site("phu-lap", SiteKind.COMMUNE, "Phu Lap Commune", "Xã Phú Lập")]  # type by name
    model = SiteModel(Settings(), sites={s.name: s for s in sites},
                      devices={d.name: d for d in devices})
    profiles = load_profiles(MON / "snmp" / "profiles.yml")
    poller = Poller(devices, profiles, allow_v2c=True, timeout=0.5, retries=0)
    metrics = SnmpMetrics(profiles, {s.name: s.kind.value for s in sites})
    reg = CollectorRegistry(auto_describe=False)  # served as `dcops collect snmp` serves it:
    exporter = MetricsServer(reg, "127.0.0.1", 0, texts=[metrics.text])  # the text it wrote
    loop = asyncio.new_event_loop()
    halt = asyncio.Event()

    class NoSink:
        def publish(self, evs: Any) -> None:
            del evs

    async def collect() -> None:
        try:
            await PollService(poller, metrics, NoSink()).run(1.0, halt)
        finally:
            poller.close()

    collector = threading.Thread(target=loop.run_until_complete, args=(collect(),), daemon=True)
    collector.start()
    procs: list[subprocess.Popen[bytes]] = []
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        prom_port = _free_tcp_port()
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "dcops-snmp", "honor_labels": True,
                                "static_configs": [
                                    {"targets": [f"127.0.0.1:{exporter.port}"]}]}]}))
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prom.log").open("wb")))
        prom = f"http://127.0.0.1:{prom_port}"
        _until("Prometheus ready", lambda: _ok(f"{prom}/-/ready"), 30)
        _until("lab-sw1 scraped up", lambda: _prom_value(
            prom, 'dcops_snmp_up{device="lab-sw1"}') == 1, 60)
        _until("dead-rtr scraped down", lambda: _prom_value(
            prom, 'dcops_snmp_up{device="dead-rtr"}') == 0, 60)
        _until("lab-c9300 temperature scraped", lambda: _prom_value(
            prom, 'max(snmp_temperature_celsius{device="lab-c9300"})') is not None, 60)

        Users(store.engine).add(ENGINEER[0], ENGINEER[1], "engineer", "setup")
        backend = StoreBackend(store)
        backend.ingest_webhook({"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "InterfaceDown", "severity": "warning",
                                            "instance": f"127.0.0.1:{exporter.port}",
                                            "device": "lab-sw1", "site": "primary-dc",
                                            "ifName": "lo"},
             "annotations": {"summary": "Interface lo down on lab-sw1"},
             "startsAt": "2026-11-18T08:00:00Z", "fingerprint": "e2e-noc"}]})
        port = _free_tcp_port()
        app = create_app(backend, "e2e-noc-secret",
                         noc_source=NocSource(PrometheusClient(prom, cache_seconds=1), model))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        _until("console started", lambda: server is not None and server.started, 20)
        yield NocLab(f"http://127.0.0.1:{port}", prom, agent)
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        loop.call_soon_threadsafe(halt.set)
        collector.join(10)
        loop.close()
        for p in procs:
            _stop(p)
        exporter.close()
        agent.stop()
        sim.stop()
        hole.close()
        store.close()


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def _state(page: Any, device: str) -> str:
    return str(page.get_attribute(f'tr[data-device="{device}"]', "data-state"))


def test_noc_view_shows_real_device_state(noc_lab: NocLab, page: Any) -> None:
    base = noc_lab.base
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/noc")
    assert page.url.startswith(f"{base}/login")
    page.fill("#username", ENGINEER[0])
    page.fill("#password", ENGINEER[1])
    page.click("#login")
    page.wait_for_url(f"{base}/noc")
    assert page.inner_text("#whoami").startswith("eng")

    # /noc: grouped sites, down first, bilingual
    assert not page.is_visible("#noc-error"), page.inner_text("#noc-error")
    assert _state(page, "lab-sw1") == "up"
    assert _state(page, "dead-rtr") == "down"
    sw = page.locator('tr[data-device="lab-sw1"]')
    assert "Lên / Up" in sw.inner_text()
    cells = sw.locator("td").all_inner_texts()
    assert cells[8].startswith("20")  # last poll, local time
    # the Catalyst's CPU (CISCO-PROCESS) and hottest sensor (ENTITY-SENSOR 71.5 °C)
    c9300 = page.locator('tr[data-device="lab-c9300"]').locator("td").all_inner_texts()
    assert (c9300[0], c9300[5], c9300[6]) == ("Lên / Up", "23", "71.5"), c9300
    assert "Xuống / Down" in page.locator('tr[data-device="dead-rtr"]').inner_text()
    assert page.locator("details.group").count() == 4  # 2 DCs, the wards, the communes
    communes = page.locator('details[data-group^="communes:"]')
    assert communes.count() == 2
    assert "Wards / Phường" in communes.first.inner_text()
    assert "Communes / Xã" in communes.nth(1).inner_text()
    assert "Trạng thái" in page.content() and "Thiết bị" in page.content()
    # down first: dead-rtr's group is open
    wards = page.locator('details[data-group="communes:wards"]')
    assert wards.get_attribute("open") is not None
    assert wards.locator("[data-sites-down]").get_attribute("data-sites-down") == "1"
    assert page.locator('details[data-group="communes:communes"]').get_attribute("open") is None
    # the filter: a ward by its Vietnamese name, then by state
    page.fill('#noc-filter input[name="q"]', "Biên Hòa")
    page.click("#noc-filter button")
    page.wait_for_url(re.compile(r"/noc\?q=Bi"))
    assert page.locator("tr[data-device]").all_inner_texts()[0].startswith("Xuống / Down")
    assert page.locator("tr[data-device]").count() == 1
    page.goto(f"{base}/noc")

    # /noc/map: coloured by class; the CSS applies under the console's CSP
    page.click("text=WAN map / Sơ đồ mạng WAN")
    page.wait_for_url(f"{base}/noc/map")
    assert page.get_attribute("#node-lab-sw1", "class") == "noc-node state-up"
    assert page.get_attribute('[id="node-group:communes:wards"]', "class") \
        == "noc-node state-down"
    assert page.get_attribute('[id="link-site:primary-dc--group:communes:wards"]', "class") \
        == "noc-link state-down"
    fills = page.evaluate("""() => ['node-lab-sw1', 'node-group:communes:wards'].map(
        id => getComputedStyle(document.getElementById(id).querySelector('rect')).fill)""")
    assert fills == ["rgb(200, 230, 201)", "rgb(255, 205, 210)"]
    assert page.is_visible("#legend")

    # the device page, reached from the map
    page.click("#node-lab-sw1")
    page.wait_for_url(f"{base}/noc/device/lab-sw1")
    assert page.get_attribute("#device-state", "data-state") == "up"
    assert page.locator('#interfaces tr[data-if="lo"]').count() == 1
    assert page.inner_text("#last-poll").startswith("20")
    assert page.locator("#device-alerts tr[data-alert-id]").count() == 1
    assert "Interface lo down on lab-sw1" in page.inner_text("#device-alerts")
    page.click("#alerts-link")
    page.wait_for_url("**/alerts?host=lab-sw1&status=all")
    assert page.locator("#queue tbody tr[data-alert-id]").count() == 1
    page.goto(f"{base}/noc/device/lab-c9300")
    assert page.inner_text("#cpu") == "cpmCPUTotalIndex=19: 23"
    temps = page.inner_text("#temperature")
    assert "Switch 1 - HotSpot Temp Sensor: 71.5" in temps and "Nhiệt độ" in page.content()

    # the device's agent stops: the poller marks it down, Prometheus scrapes that, the page says so
    noc_lab.agent.stop()
    _until("lab-sw1 down in Prometheus", lambda: _prom_value(
        noc_lab.prom, 'dcops_snmp_up{device="lab-sw1"}') == 0, 60)
    time.sleep(1.2)  # the console's cache (1 s here)

    def shows_down() -> bool:
        page.goto(f"{base}/noc")
        return _state(page, "lab-sw1") == "down"

    _until("lab-sw1 down on /noc", shows_down, 20)
    page.goto(f"{base}/noc/map")
    assert page.get_attribute("#node-lab-sw1", "class") == "noc-node state-down"
    page.goto(f"{base}/noc/device/lab-sw1")
    assert page.get_attribute("#device-state", "data-state") == "down"
    assert not csp_errors, csp_errors

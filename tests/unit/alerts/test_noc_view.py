"""The console's NOC view against a local HTTP server that answers as Prometheus' /api/v1/query.

The fake follows the API contract (GET /api/v1/query?query=..., 200 with
``{"status":"success","data":{"resultType":"vector","result":[...]}}``, 400 with
``{"status":"error","errorType":..,"error":..}``); each test gives it the vectors to answer, or a
broken answer (bad JSON, wrong shape, oversized) to check that the page shows a banner, not a 500.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from dcops.alerts import AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.alerts.config import load_config
from dcops.cli.serve import noc_source
from dcops.errors import ConfigError
from dcops.model.site import Device, Settings, Site, SiteKind, SiteModel
from dcops.triage import create_app
from dcops.triage.noc import OVERVIEW_QUERIES, NocSource, device_queries
from dcops.triage.prometheus import (
    PrometheusClient,
    PrometheusError,
    label_value,
    parse_vector,
    validate_url,
)

NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def vec(*series: tuple[dict[str, str], float]) -> dict[str, Any]:
    """An instant-vector answer as Prometheus writes it (values as strings)."""
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [NOW, "NaN" if math.isnan(v) else repr(float(v))]}
        for m, v in series]}}


@dataclass
class FakePrometheus:
    """What the fake answers: per query a document, else an empty vector; `raw` overrides all."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: tuple[int, bytes] | None = None
    seen: list[str] = field(default_factory=list)


@pytest.fixture
def prom() -> Iterator[tuple[str, FakePrometheus]]:
    fake = FakePrometheus()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/api/v1/query":
                self.send_error(404)
                return
            q = urllib.parse.parse_qs(url.query).get("query", [""])[0]
            fake.seen.append(q)
            if fake.raw is not None:
                status, body = fake.raw
            elif not q:
                status, body = 400, json.dumps({"status": "error", "errorType": "bad_data",
                                                "error": "query missing"}).encode()
            else:
                status, body = 200, json.dumps(fake.answers.get(q, vec())).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", fake
    finally:
        server.shutdown()
        server.server_close()


def model() -> SiteModel:
    """Both DCs, a legacy district site and three communes of that parent, one device each (DCs
    two)."""
    sites = {s.name: s for s in (
        Site("primary-dc", SiteKind.PRIMARY_DC, "Primary", "TTDL chính"),
        Site("backup-dc", SiteKind.BACKUP_DC, "Backup", "TTDL dự phòng"),
        Site("bien-hoa", SiteKind.DISTRICT, "Bien Hoa", "Biên Hòa"),
        *(Site(f"xa-{i}", SiteKind.COMMUNE, f"Xa {i}", f"Xã {i}", parent="bien-hoa")
          for i in range(3)))}
    devs = [Device("dc1-core", "10.0.0.1", "primary-dc", "core_switch", "cisco_switch", None),
            Device("dc1-wan", "10.0.0.2", "primary-dc", "wan_router", "cisco_router", None,
                   wan_uplinks=("Gi0/0/0",)),
            Device("dc2-wan", "10.1.0.2", "backup-dc", "wan_router", "cisco_router", None,
                   wan_uplinks=("Gi0/0/0",)),
            Device("bh-rtr", "10.2.0.1", "bien-hoa", "district_router", "cisco_router", None,
                   wan_uplinks=("Gi0/0/0",)),
            *(Device(f"xa-{i}-rtr", f"10.3.0.{i}", f"xa-{i}", "commune_router", "cisco_router",
                     None, wan_uplinks=("Gi0/0/0",)) for i in range(3))]
    return SiteModel(Settings(), sites=sites, devices={d.name: d for d in devs})


def lab_answers() -> dict[str, dict[str, Any]]:
    """dc1-core up with errors, CPU and temperature; bh-rtr down; xa-1-rtr's WAN uplink down;
    dc2-wan never polled (unknown); a device Prometheus knows but the inventory does not."""
    def dev(name: str, site: str, **kw: str) -> dict[str, str]:
        return {"site": site, "device": name, **kw}

    up = vec((dev("dc1-core", "primary-dc"), 1), (dev("dc1-wan", "primary-dc"), 1),
             (dev("bh-rtr", "bien-hoa"), 0), (dev("xa-0-rtr", "xa-0"), 1),
             (dev("xa-1-rtr", "xa-1"), 1), (dev("xa-2-rtr", "xa-2"), 1),
             (dev("stray-sw", "somewhere"), 1))
    wan = [dev(n, s, ifName="Gi0/0/0") for n, s in (("dc1-wan", "primary-dc"), ("bh-rtr",
                                                                                  "bien-hoa"),
                                                   ("xa-0-rtr", "xa-0"), ("xa-1-rtr", "xa-1"),
                                                   ("xa-2-rtr", "xa-2"))]
    o = OVERVIEW_QUERIES
    d = device_queries("dc1-core")
    return {
        o["up"]: up,
        o["last"]: vec((dev("dc1-core", "primary-dc"), NOW - 30), (dev("bh-rtr", "bien-hoa"),
                                                                  NOW - 3600)),
        o["errors_in"]: vec((dev("dc1-core", "primary-dc"), 2.0)),
        o["errors_out"]: vec((dev("dc1-core", "primary-dc"), 0.5)),
        o["cpu"]: vec((dev("dc1-core", "primary-dc"), 37)),
        o["temp"]: vec((dev("dc1-core", "primary-dc"), 41.5)),
        o["wan"]: vec(*((w | {"site_kind": "x"}, 1) for w in wan)),
        o["wan_oper"]: vec(*((w, 2 if w["device"] == "xa-1-rtr" else 1) for w in wan
                             if w["device"] != "bh-rtr")),
        d["up"]: vec((dev("dc1-core", "primary-dc"), 1)),
        d["last"]: vec((dev("dc1-core", "primary-dc"), NOW - 30)),
        d["info"]: vec((dev("dc1-core", "primary-dc", sysName="DC1-CORE", vendor="cisco",
                            sysDescr="Cisco IOS XE", device_class="core_switch"), 1)),
        d["oper"]: vec((dev("dc1-core", "primary-dc", ifName="Gi1/0/1"), 1),
                       (dev("dc1-core", "primary-dc", ifName="Gi1/0/2"), 2)),
        d["admin"]: vec((dev("dc1-core", "primary-dc", ifName="Gi1/0/1"), 1),
                        (dev("dc1-core", "primary-dc", ifName="Gi1/0/2"), 1)),
        d["errors_in"]: vec(({"ifName": "Gi1/0/2"}, 2.0), ({"ifName": "Gi1/0/1"}, 0)),
        d["errors_out"]: vec(({"ifName": "Gi1/0/2"}, 0.5)),
        d["cpu"]: vec((dev("dc1-core", "primary-dc", cpmCPUTotalIndex="1"), 37)),
        d["temp"]: vec((dev("dc1-core", "primary-dc", sensor="Inlet Temp Sensor",
                            entPhysicalIndex="1008"), 41.5)),
    }


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users made once (argon2 is slow); each test gets a copy with its own alerts."""
    path = tmp_path_factory.mktemp("noc") / "alerts.db"
    s = AlertStore(f"sqlite:///{path}")
    users = Users(s.engine)
    for name, role in (("eng", "engineer"), ("ana", "analyst"), ("adm", "admin")):
        users.add(name, f"{name}-password", role, "setup")
    s.close()
    return path


@pytest.fixture
def store(tmp_path: Path, template_db: Path) -> Iterator[AlertStore]:
    import shutil

    shutil.copy(template_db, tmp_path / "alerts.db")
    shutil.copy(template_db.with_name("trail.key"), tmp_path / "trail.key")
    s = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    yield s
    s.close()


def console(store: AlertStore, source: NocSource | None, user: str = "eng") -> TestClient:
    c = TestClient(create_app(StoreBackend(store), "test-secret", noc_source=source,
                              timezone="Asia/Ho_Chi_Minh"), follow_redirects=False)
    page = c.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = c.post("/login", data={"username": user, "password": f"{user}-password",
                               "csrf_token": token.group(1), "next": "/noc"})
    assert r.status_code == 303, r.text
    return c


def rows_of(html: str) -> list[tuple[str, str]]:
    """(device, state) of the /noc tables, in page order."""
    return re.findall(r'<tr data-device="([^"]+)" data-state="([^"]+)">', html)


# --- the client --------------------------------------------------------------------------------

def test_client_reads_an_instant_vector_and_caches_it(prom: tuple[str, FakePrometheus]) -> None:
    url, fake = prom
    fake.answers["up"] = vec(({"job": "dcops-snmp", "instance": "127.0.0.1:9716"}, 1))
    c = PrometheusClient(url + "/", cache_seconds=60)
    assert c.url == url
    [s] = c.query("up")
    assert s.labels == {"job": "dcops-snmp", "instance": "127.0.0.1:9716"}
    assert (s.value, s.timestamp) == (1.0, NOW)
    c.query("up")
    assert c.requests == 1 and fake.seen == ["up"]
    assert PrometheusClient(url, cache_seconds=0).query("up")[0].value == 1.0


def test_unreachable_prometheus_is_named_with_the_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        with pytest.raises(PrometheusError, match=rf"Prometheus unreachable at "
                           rf"http://127.0.0.1:{port}: .*refused"):
            PrometheusClient(f"http://127.0.0.1:{port}", timeout=1).query("up")


@pytest.mark.parametrize(("raw", "reason"), [
    ((200, b"<html>not json"), "not JSON"),
    ((200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}'),
     "resultType vector"),
    ((200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":'
           b'{"a":1},"value":[1,"1"]}]}}'), "map of strings"),
    ((200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
           b'"value":[1,1]}]}}'), "value is not"),
    ((200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
           b'"value":[1,"x"]}]}}'), "not a number"),
    ((200, b"[]"), "not a JSON object"),
    ((400, b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}'),
     "refused the query: HTTP 400 .bad_data: parse error at char 3"),
    ((503, b"<html>down</html>"), "HTTP 503"),
])
def test_hostile_or_broken_answers_are_errors(prom: tuple[str, FakePrometheus],
                                              raw: tuple[int, bytes], reason: str) -> None:
    url, fake = prom
    fake.raw = raw
    with pytest.raises(PrometheusError, match=reason):
        PrometheusClient(url).query("up")


def test_oversized_answer_is_refused(prom: tuple[str, FakePrometheus]) -> None:
    url, fake = prom
    fake.answers["big"] = vec(*(({"device": f"d{i}" * 20}, 1) for i in range(2000)))
    with pytest.raises(PrometheusError, match="larger than 10000 bytes"):
        PrometheusClient(url, max_bytes=10_000).query("big")


def test_a_failure_is_cached_too(prom: tuple[str, FakePrometheus]) -> None:
    url, fake = prom
    fake.raw = (200, b"nope")
    c = PrometheusClient(url, cache_seconds=60)
    for _ in range(3):
        with pytest.raises(PrometheusError):
            c.query("up")
    assert c.requests == 1


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://prom:9090", "http:// or https://"), ("http://", "no host"),
    ("http://u:p@prom:9090", "credentials"), ("http://prom:99999", "out of range"),
    ("http://prom:9090/?x=1", "query string"), ("127.0.0.1:9090", "http://"),
])
def test_bad_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_url(url)


def test_parse_vector_keeps_nan_and_label_values_are_escaped() -> None:
    [s] = parse_vector(json.dumps(vec(({}, float("nan")))).encode())
    assert s.value != s.value
    assert label_value('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert 'device="x\\"}) or vector(1) #"' in device_queries('x"}) or vector(1) #')["up"]


# --- the pages ---------------------------------------------------------------------------------

def test_noc_page_groups_sites_and_lists_down_first(prom: tuple[str, FakePrometheus],
                                                    store: AlertStore) -> None:
    url, fake = prom
    fake.answers = lab_answers()
    src = NocSource(PrometheusClient(url), model())
    c = console(store, src)
    html = c.get("/noc").text
    assert 'id="noc-error"' not in html
    groups = re.findall(r'<details class="group" id="([^"]+)"', html)
    # communes first (the WAN edge since July 2025), then legacy district sites
    assert groups == ["primary-dc", "backup-dc", "communes:bien-hoa", "kind:district", "other"]
    rows = rows_of(html)
    assert ("dc1-core", "up") in rows and ("bh-rtr", "down") in rows
    assert ("dc2-wan", "unknown") in rows and ("stray-sw", "up") in rows
    # down first within a group; the commune group counts its three sites
    assert re.search(r'communes:bien-hoa".*?3 sites / địa điểm · 3 devices', html, re.S)
    assert 'data-total="down">Xuống / Down: 1' in html
    assert "Trạng thái" in html and "Lỗi cổng" in html and "Nhiệt độ" in html
    core = html[html.index('data-device="dc1-core"'):]
    core = core[:core.index("</tr>")]
    assert "2.50" in core and ">37<" in core and "41.5" in core
    assert "2026-11-18 18:06:10" in core  # NOW - 30 s in Asia/Ho_Chi_Minh
    assert 'data-wan="Gi0/0/0">Gi0/0/0: down' in html  # xa-1-rtr's uplink oper down
    communes = html[html.index('id="communes:bien-hoa"'):]
    assert communes.startswith('id="communes:bien-hoa" data-group="communes:bien-hoa" open>')
    assert 'data-wan-down="1"' in communes[:communes.index("</summary>")]
    assert len(fake.seen) == len(OVERVIEW_QUERIES)
    c.get("/noc")  # cached: no more queries
    assert len(fake.seen) == len(OVERVIEW_QUERIES)


def test_noc_map_colours_devices_and_links(prom: tuple[str, FakePrometheus],
                                           store: AlertStore) -> None:
    url, fake = prom
    fake.answers = lab_answers()
    c = console(store, NocSource(PrometheusClient(url), model()), user="ana")
    r = c.get("/noc/map")
    assert r.status_code == 200
    html = r.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="wan-map"' in html
    assert 'id="node-dc1-core" class="noc-node state-up"' in html
    assert 'id="node-dc2-wan" class="noc-node state-unknown"' in html
    assert 'id="node-site:bien-hoa" class="noc-node state-down"' in html
    assert 'id="node-group:communes:bien-hoa" class="noc-node state-up"' in html
    assert 'id="link-site:primary-dc--site:bien-hoa" class="noc-link state-down"' in html
    assert 'id="link-site:primary-dc--group:communes:bien-hoa" class="noc-link state-down"' \
        in html  # one commune's uplink is down
    assert 'id="link-site:primary-dc--site:backup-dc"' in html
    assert "<script" not in html  # colours are classes (CSP: no inline script)
    assert "Chú giải" in html and 'href="/noc/device/dc1-core"' in html
    assert "script-src" not in r.headers["content-security-policy"]


def test_device_page_shows_metrics_and_open_alerts(prom: tuple[str, FakePrometheus],
                                                   store: AlertStore) -> None:
    url, fake = prom
    fake.answers = lab_answers()
    backend = StoreBackend(store)
    # as Alertmanager posts it: host is the exporter's instance, the device a label
    backend.ingest_webhook({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "InterfaceDown", "severity": "warning",
                                        "instance": "127.0.0.1:9716", "device": "dc1-core",
                                        "site": "primary-dc", "ifName": "Gi1/0/2"},
         "annotations": {"summary": "Interface Gi1/0/2 down on dc1-core"},
         "startsAt": "2026-11-18T08:00:00Z", "fingerprint": "f-if"},
        {"status": "firing", "labels": {"alertname": "InterfaceDown", "severity": "warning",
                                        "instance": "127.0.0.1:9716", "device": "dc1-core2",
                                        "site": "primary-dc"},
         "annotations": {"summary": "Interface down on dc1-core2"},
         "startsAt": "2026-11-18T08:00:00Z", "fingerprint": "f-other"}]})
    c = console(store, NocSource(PrometheusClient(url), model()), user="adm")
    html = c.get("/noc/device/dc1-core").text
    assert 'id="device-state" data-state="up"' in html
    assert "DC1-CORE" in html and "Inlet Temp Sensor: 41.5" in html and "cpmCPUTotalIndex=1: 37" \
        in html
    assert html.index('data-if="Gi1/0/2"') < html.index('data-if="Gi1/0/1"')  # errors first
    assert "2026-11-18 18:06:10" in html
    alerts = re.findall(r'<tr data-alert-id="(\d+)">', html)
    assert len(alerts) == 1 and "Interface Gi1/0/2 down on dc1-core" in html
    assert 'href="/alerts?host=dc1-core&amp;status=all"' in html
    assert c.get("/noc/device/nowhere").status_code == 404
    r = c.get("/noc/device/" + urllib.parse.quote('x"}) or vector(1) #', safe=""))
    assert r.status_code == 404


def test_prometheus_down_is_a_banner_not_a_500(store: AlertStore) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        c = console(store, NocSource(PrometheusClient(url, timeout=1), model()))
        for path in ("/noc", "/noc/map", "/noc/device/dc1-core"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert f"Prometheus unreachable at {url}: " in r.text, path
        assert ("dc1-core", "unknown") in rows_of(c.get("/noc").text)


def test_noc_without_prometheus_says_how_to_configure(store: AlertStore) -> None:
    c = console(store, None)
    r = c.get("/noc")
    assert r.status_code == 200 and "--prometheus-url" in r.text
    assert 'href="/noc"' in c.get("/alerts").text  # the nav link


def test_noc_needs_a_login(store: AlertStore) -> None:
    c = TestClient(create_app(StoreBackend(store), "s", noc_source=None), follow_redirects=False)
    for path in ("/noc", "/noc/map", "/noc/device/x"):
        assert c.get(path).status_code == 303


def test_serve_option_and_config_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--prometheus-url") as exc:
        noc_source("ftp://x", "", "", None)
    assert "http:// or https://" in str(exc.value)
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text("noc:\n  prometheus_url: http://127.0.0.1:9090\n")
    assert load_config(cfg).prometheus_url == "http://127.0.0.1:9090"
    src = noc_source(None, "http://127.0.0.1:9090/", str(cfg), None)
    assert src is not None and src.prometheus.url == "http://127.0.0.1:9090"
    with pytest.raises(ConfigError, match=r"noc\.prometheus_url"):
        noc_source(None, "nope", str(cfg), None)
    cfg.write_text("noc: http://x\n")
    with pytest.raises(ConfigError, match="noc"):
        load_config(cfg)
    assert noc_source(None, "", "", None) is None




def test_names_from_prometheus_are_escaped_in_the_map_and_tables(
        prom: tuple[str, FakePrometheus], store: AlertStore) -> None:
    url, fake = prom
    evil = 'x"><script>alert(1)</script>'
    fake.answers = {OVERVIEW_QUERIES["up"]: vec(({"site": "s<b>", "device": evil}, 0))}
    c = console(store, NocSource(PrometheusClient(url), model()))
    for path in ("/noc", "/noc/map"):
        html = c.get(path).text
        assert "<script>" not in html and "s<b>" not in html, path
    assert "&lt;script&gt;" in c.get("/noc/map").text
    r = c.get("/noc/device/" + urllib.parse.quote(evil, safe=""))  # the fake knows no such query
    assert r.status_code == 404 and "<script>" not in r.text


# --- a province of today: ~100 parentless communes ---------------------------------------------

def province_model() -> SiteModel:
    """Both DCs and every commune-level unit of today's Đồng Nai (official list), a router each."""
    from dcops.inventory.divisions import communes, province

    sites = {"primary-dc": Site("primary-dc", SiteKind.PRIMARY_DC, "Primary", "TTDL chính")}
    for c in communes(province("Đồng Nai")):
        name = c.slug.split("_", 1)[1].replace("_", "-") + f"-{c.code}"
        sites[name] = Site(name, SiteKind.COMMUNE, f"{c.short_name} {c.type_en}", c.name,
                           admin_code=str(c.code), admin_type=c.type)
    devs = [Device(f"{s}-rtr1", "10.9.0.1", s, "commune_router", "cisco_router", None,
                   wan_uplinks=("Dialer0",)) for s in sites if s != "primary-dc"]
    return SiteModel(Settings(), sites=sites, devices={d.name: d for d in devs})


def province_answers(down: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Every router up except those named down."""
    m = province_model()
    return {OVERVIEW_QUERIES["up"]: vec(*(({"site": d.site, "device": d.name},
                                          0 if d.name in down else 1)
                                         for d in m.devices.values()))}


def test_ninety_five_communes_are_grouped_by_type_in_blocks_with_down_counts(
        prom: tuple[str, FakePrometheus], store: AlertStore) -> None:
    url, fake = prom
    down = ("tran-bien-26041-rtr1", "tan-phu-26116-rtr1")  # a ward and a commune cut off
    fake.answers = province_answers(down)
    m = province_model()
    assert len([s for s in m.sites.values() if s.kind is SiteKind.COMMUNE]) == 95
    html = console(store, NocSource(PrometheusClient(url), m)).get("/noc").text
    groups = re.findall(r'<details class="group" id="([^"]+)"', html)
    assert groups == ["primary-dc", "communes:wards", "communes:communes:1",
                      "communes:communes:2", "communes:communes:3"]
    sizes = [int(n) for n in re.findall(r"· (\d+) sites / địa điểm", html)]
    assert sizes[1:] == [23, 24, 24, 24] and sum(sizes[1:]) == 95  # no block above 25
    assert "Wards / Phường" in html and "Communes / Xã (An Phước - Lộc Hưng)" in html
    # the groups with a site down say how many and are open; the others stay closed
    opened = dict(re.findall(r'<details class="group" id="([^"]+)" data-group="[^"]+" (open)?>',
                             html))
    assert opened["communes:wards"] == "open" and opened["communes:communes:3"] == "open"
    assert opened["communes:communes:1"] == "" and opened["communes:communes:2"] == ""
    wards = html[html.index('id="communes:wards"'):]
    assert 'data-sites-down="1"' in wards[:wards.index("</summary>")]
    assert rows_of(wards)[0] == ("tran-bien-26041-rtr1", "down")  # down first
    svg = console(store, NocSource(PrometheusClient(url), m)).get("/noc/map").text
    assert len(re.findall(r'id="node-group:communes:', svg)) == 4  # one box per group
    assert 'id="node-group:communes:wards" class="noc-node state-down"' in svg


def test_noc_filter_by_name_code_and_state(prom: tuple[str, FakePrometheus],
                                          store: AlertStore) -> None:
    url, fake = prom
    fake.answers = province_answers(("tran-bien-26041-rtr1", "tan-phu-26116-rtr1"))
    c = console(store, NocSource(PrometheusClient(url), province_model()))
    for query in ("tran bien", "Trấn Biên", "26041"):  # folded name, Vietnamese, official code
        html = c.get("/noc", params={"q": query}).text
        assert rows_of(html) == [("tran-bien-26041-rtr1", "down")], query
        assert 'data-shown="1"' in html
    down = c.get("/noc", params={"state": "down"}).text
    assert sorted(rows_of(down)) == [("tan-phu-26116-rtr1", "down"),
                                     ("tran-bien-26041-rtr1", "down")]
    # a group title matches as a whole: "phường" lists every ward, "phuong" + up all but one
    assert len(rows_of(c.get("/noc", params={"q": "phường"}).text)) == 23
    assert len(rows_of(c.get("/noc", params={"q": "phuong", "state": "up"}).text)) == 22
    none = c.get("/noc", params={"q": "no such place"}).text
    assert rows_of(none) == [] and 'id="noc-none"' in none
    bad = c.get("/noc", params={"state": "sideways"})
    assert bad.status_code == 400 and "state: &#39;sideways&#39; is not one of up, down, unknown" \
        in bad.text
    long = c.get("/noc", params={"q": "x" * 101})
    assert long.status_code == 400 and "q: at most 100 characters" in long.text


def test_commune_type_from_the_model_else_the_name() -> None:
    from dcops.triage.nocgroups import commune_groups, commune_type

    def site(name: str, vi: str, admin_type: str = "", parent: str | None = None) -> Site:
        return Site(name, SiteKind.COMMUNE, name, vi, admin_type=admin_type, parent=parent)

    assert commune_type(site("a", "Trấn Biên", "phường")) == "phường"  # the model says
    assert commune_type(site("b", "Xã Phú Lập")) == "xã"  # else the name
    assert commune_type(site("c", "Đặc khu Côn Đảo")) == "đặc khu"
    assert commune_type(site("d", "Tân Phú")) == ""  # neither: the generic group
    sites = [site("a", "Trấn Biên", "phường"), site("b", "Xã Phú Lập"), site("d", "Tân Phú"),
             site("e", "Xã Gia Canh", parent="dinh-quan")]
    got = commune_groups(SiteModel(Settings(), sites={s.name: s for s in sites}))
    assert got == {"a": ("communes:wards", "Wards / Phường"),
                   "b": ("communes:communes", "Communes / Xã"),
                   "d": ("communes:other", "Communes and wards / Xã, phường"),
                   "e": ("communes:dinh-quan", "Communes and wards / Xã, phường (dinh-quan)")}


def test_alert_page_says_what_its_site_is(prom: tuple[str, FakePrometheus],
                                          store: AlertStore) -> None:
    url, _ = prom
    m = province_model()
    backend = StoreBackend(store)
    backend.ingest_webhook({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "WanLinkDown", "severity": "critical",
                                        "instance": "c", "device": "tran-bien-26041-rtr1",
                                        "site": "tran-bien-26041", "ifName": "Dialer0"},
         "annotations": {"summary": "WAN link of commune/ward site tran-bien-26041 down"},
         "startsAt": "2026-11-18T08:00:00Z", "fingerprint": "f-wan"},
        {"status": "firing", "labels": {"alertname": "WanLinkDown", "severity": "critical",
                                        "instance": "c", "device": "x", "site": "nowhere"},
         "annotations": {"summary": "a site the inventory does not know"},
         "startsAt": "2026-11-18T08:00:00Z", "fingerprint": "f-nowhere"}]})
    c = console(store, NocSource(PrometheusClient(url), m))
    pages = [c.get(f"/alerts/{i}").text for i in (1, 2)]  # a fresh store: the two alerts
    ward = next(p for p in pages if "tran-bien-26041" in p)
    site = ward[ward.index('id="alert-site"'):]
    assert site.startswith('id="alert-site">tran-bien-26041 <span class="vi">(Phường Trấn Biên: '
                           "ward / phường, code / mã 26041)</span>"), site[:200]
    other = next(p for p in pages if "nowhere" in p)
    assert 'id="alert-site">nowhere</dd>' in other  # unknown to the inventory: the name only

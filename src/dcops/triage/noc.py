"""The NOC view: sites, devices and WAN links with their state from Prometheus.

``/noc`` lists the devices grouped by site (both DCs, the communes and wards by type in alphabetical
blocks, legacy district sites; see :mod:`dcops.triage.nocgroups`), down first, filterable by text
and state; ``/noc/map`` colours the WAN map of :func:`dcops.iac.svg.wan_map`;
``/noc/device/{name}`` shows one device's interfaces, CPU, temperatures and open alerts. Every
page asks Prometheus a fixed, small set of instant queries (cached a few seconds by the client)
and shows a banner instead of failing when Prometheus cannot be asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dcops.iac.svg import MapNode, wan_map
from dcops.model.site import SiteModel
from dcops.triage.nocgroups import (
    DC_TITLES,
    KIND_TITLES,
    ORDER,
    STATE_ORDER,
    DeviceRow,
    SiteGroup,
    commune_groups,
    select,
    worst,
)
from dcops.triage.prometheus import PrometheusClient, PrometheusError, Sample, label_value
from dcops.triage.render import render
from dcops.triage.security import BadRequestError, NotFoundError, require
from dcops.triage.store_contract import OPEN_STATUSES, ConsoleBackend

#: The queries of /noc and /noc/map (by name); each answer is aggregated per device.
OVERVIEW_QUERIES = {
    "up": "dcops_snmp_up",
    "last": "dcops_snmp_last_success_timestamp_seconds",
    # in and out apart: rate() drops the name, so one selector of both would clash per interface
    "errors_in": "sum by (site, device) (rate(snmp_if_in_errors_total[5m]))",
    "errors_out": "sum by (site, device) (rate(snmp_if_out_errors_total[5m]))",
    "cpu": "max by (site, device) (snmp_cpu_load_percent)",
    "temp": "max by (site, device) (snmp_temperature_celsius)",
    "wan": "dcops_snmp_wan_uplink_info",
    "wan_oper": "snmp_if_oper_status and on (site, device, ifName) dcops_snmp_wan_uplink_info",
}
STATE_LABELS = {"up": "Lên / Up", "down": "Xuống / Down", "unknown": "Không rõ / Unknown"}
MAX_DEVICE_NAME = 200


@dataclass(frozen=True, slots=True)
class NocSource:
    """Where the NOC view's state comes from: Prometheus, and the site model when given."""

    prometheus: PrometheusClient
    model: SiteModel | None = None


def _source(request: Request) -> NocSource | None:
    src: NocSource | None = request.app.state.noc
    return src


def _key(s: Sample) -> tuple[str, str]:
    return s.labels.get("site", ""), s.labels.get("device", "")


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""


def overview(src: NocSource) -> tuple[dict[str, DeviceRow], str]:
    """Every device (inventory and Prometheus) with its state, and an error banner text."""
    rows: dict[str, DeviceRow] = {}
    if src.model is not None:
        for d in src.model.devices.values():
            rows[d.name] = DeviceRow(d.name, d.site, d.device_class)
            rows[d.name].wan = [(i, "unknown") for i in d.wan_uplinks]
    try:
        answers = {k: src.prometheus.query(q) for k, q in OVERVIEW_QUERIES.items()}
    except PrometheusError as exc:
        return rows, str(exc)

    def row(s: Sample) -> DeviceRow | None:
        site, name = _key(s)
        if not name:
            return None
        if name not in rows:
            rows[name] = DeviceRow(name, site)
        return rows[name]

    for s in answers["up"]:
        if (r := row(s)) is not None:
            r.state = "up" if s.value == 1 else "down"
    for s in answers["last"]:
        if (r := row(s)) is not None and s.value > 0:
            r.last_poll = _iso(s.value)
    for name, attr in (("cpu", "cpu"), ("temp", "temperature")):
        for s in answers[name]:
            if (r := row(s)) is not None:
                setattr(r, attr, s.value)
    for s in answers["errors_in"] + answers["errors_out"]:
        if (r := row(s)) is not None:
            r.if_errors = (r.if_errors or 0.0) + s.value
    _wan_uplinks(answers, row)
    return rows, ""


def _wan_uplinks(answers: dict[str, list[Sample]],
                 row: Callable[[Sample], DeviceRow | None]) -> None:
    """Each WAN uplink's state: its ifOperStatus, down with its device, else unknown."""
    oper = {(s.labels.get("device", ""), s.labels.get("ifName", "")): s.value
            for s in answers["wan_oper"]}
    for s in answers["wan"]:
        if (r := row(s)) is not None:
            ifname = s.labels.get("ifName", "")
            value = oper.get((r.name, ifname))
            if r.state == "down":
                state = "down"
            elif value is None or r.state != "up":
                state = "unknown"
            else:
                state = "up" if value == 1 else "down"
            r.wan = [(i, st) for i, st in r.wan if i != ifname] + [(ifname, state)]


def groups(src: NocSource, rows: dict[str, DeviceRow]) -> list[SiteGroup]:
    """DCs first, then the communes and wards (by type in alphabetical blocks, or per legacy
    parent), then legacy district sites, then sites not modelled."""
    model = src.model
    out: dict[str, SiteGroup] = {}
    communes = commune_groups(model) if model is not None else {}

    def group_of(site: str) -> SiteGroup:
        s = model.sites.get(site) if model is not None else None
        if s is None:
            return out.setdefault("other", SiteGroup(
                "other", "Other sites / Địa điểm khác (not in the inventory)", "other"))
        if s.kind in DC_TITLES:
            return out.setdefault(s.name, SiteGroup(
                s.name, f"{DC_TITLES[s.kind]}: {s.display_name_vi or s.name}", s.kind.value))
        if s.name in communes:
            key, title = communes[s.name]
            return out.setdefault(key, SiteGroup(key, title, "commune"))
        return out.setdefault(f"kind:{s.kind.value}", SiteGroup(
            f"kind:{s.kind.value}", KIND_TITLES.get(s.kind.value, s.kind.value), s.kind.value))

    if model is not None:
        for s in model.sites.values():
            group_of(s.name).sites.setdefault(s.name, [])
    for r in rows.values():
        group_of(r.site).sites.setdefault(r.site, []).append(r)
    position = {key: n for n, key in enumerate(dict.fromkeys(k for k, _ in communes.values()))}
    return sorted(out.values(), key=lambda g: (ORDER.get(g.kind, 5), position.get(g.key, 0),
                                               g.key))


#: Longest filter text accepted on /noc (a site name, an official code, a device name).
MAX_FILTER = 100


def _filter(request: Request) -> tuple[str, str]:
    """The ?q= text and ?state= of /noc, checked."""
    text = request.query_params.get("q", "").strip()
    state = request.query_params.get("state", "").strip()
    if len(text) > MAX_FILTER or "\x00" in text:
        raise BadRequestError(f"q: at most {MAX_FILTER} characters of text, no NUL / "
                              f"tối đa {MAX_FILTER} ký tự")
    if state and state not in STATE_LABELS:
        raise BadRequestError(f"state: {state[:20]!r} is not one of {', '.join(STATE_LABELS)} / "
                              "trạng thái không hợp lệ")
    return text, state


async def noc_page(request: Request) -> Response:
    """GET /noc: devices grouped by site with their state, down first; ?q= and ?state= filter."""
    require(request)
    text, state = _filter(request)
    src = _source(request)
    if src is None:
        return render(request, "noc.html", groups=[], error=_NOT_CONFIGURED, states=STATE_LABELS,
                      totals={}, prometheus="", q=text, state=state, shown=0)
    rows, error = await run_in_threadpool(overview, src)
    grouped = select(groups(src, rows), src.model, text, state)
    totals = {st: sum(1 for r in rows.values() if r.state == st) for st in STATE_LABELS}
    return render(request, "noc.html", groups=grouped, error=error, states=STATE_LABELS,
                  totals=totals, prometheus=src.prometheus.url, q=text, state=state,
                  shown=sum(len(g.devices) for g in grouped))


_NOT_CONFIGURED = ("No Prometheus configured / Chưa cấu hình Prometheus: start the console with "
                   "dcops serve --prometheus-url URL (or noc.prometheus_url in the config)")


def map_svg(src: NocSource, rows: dict[str, DeviceRow]) -> str:
    """The WAN map coloured by device and WAN link state (communes grouped per parent)."""
    grouped = groups(src, rows)
    dcs = []
    remotes: list[MapNode] = []
    links: list[tuple[str, str, str]] = []
    for g in grouped:
        if g.kind in ("primary_dc", "backup_dc"):
            devs = [MapNode(d.name, d.name, STATE_LABELS[d.state], d.state,
                            f"/noc/device/{quote(d.name, safe='')}") for d in g.devices]
            dcs.append((MapNode(f"site:{g.key}", g.title.split(": ")[0],
                                f"{g.key}: {g.count('up')} up / {g.count('down')} down / "
                                f"{g.count('unknown')} unknown", g.state), devs))
            continue
        if g.kind == "commune":  # ~100 communes per province: one box per group
            n = len(g.sites)
            remotes.append(MapNode(f"group:{g.key}", g.title.split(" / ")[1],
                                   f"{n} sites: {g.count('up')} up, {g.count('down')} down",
                                   g.state, "/noc#" + quote(g.key, safe="")))
            links.append(("", f"group:{g.key}", _wan_state(g.devices)))
            continue
        for site, devices in sorted(g.sites.items()):
            ordered = sorted(devices, key=lambda d: (STATE_ORDER[d.state], d.name))
            href = f"/noc/device/{quote(ordered[0].name, safe='')}" if len(ordered) == 1 \
                else "/noc#" + quote(g.key, safe="")
            remotes.append(MapNode(f"site:{site}", site or "-",
                                   ", ".join(d.name for d in ordered)[:34] or "no device",
                                   worst(d.state for d in ordered), href))
            links.append(("", f"site:{site}", _wan_state(ordered)))
    hub = dcs[0][0].key if dcs else ""
    links = [(hub, b, st) for _, b, st in links]
    if len(dcs) == 2:
        links.append((dcs[0][0].key, dcs[1][0].key, _wan_state(
            [d for g in grouped if g.kind in ("primary_dc", "backup_dc") for d in g.devices])))
    return wan_map(dcs, remotes, links, title="NOC")


def _wan_state(devices: list[DeviceRow]) -> str:
    """A WAN link's state from its sites' uplinks (their devices when no uplink is known)."""
    uplinks = [st for d in devices for _, st in d.wan]
    return worst(uplinks) if uplinks else worst(d.state for d in devices)


async def map_page(request: Request) -> Response:
    """GET /noc/map: the topology coloured live by device and WAN link state."""
    require(request)
    src = _source(request)
    if src is None:
        return render(request, "noc_map.html", svg="", error=_NOT_CONFIGURED, states=STATE_LABELS,
                      prometheus="")
    rows, error = await run_in_threadpool(overview, src)
    return render(request, "noc_map.html", svg=Markup(map_svg(src, rows)),  # noqa: S704
                  error=error, states=STATE_LABELS, prometheus=src.prometheus.url)


def device_queries(name: str) -> dict[str, str]:
    """The queries of one device's page (its name as an escaped label value)."""
    sel = f"device={label_value(name)}"
    return {
        "up": f"dcops_snmp_up{{{sel}}}",
        "last": f"dcops_snmp_last_success_timestamp_seconds{{{sel}}}",
        "info": f"snmp_device_info{{{sel}}}",
        "oper": f"snmp_if_oper_status{{{sel}}}",
        "admin": f"snmp_if_admin_status{{{sel}}}",
        "errors_in": f"sum by (ifName) (rate(snmp_if_in_errors_total{{{sel}}}[5m]))",
        "errors_out": f"sum by (ifName) (rate(snmp_if_out_errors_total{{{sel}}}[5m]))",
        "cpu": f"snmp_cpu_load_percent{{{sel}}}",
        "temp": f"snmp_temperature_celsius{{{sel}}}",
    }


#: Open alerts listed on a device's page (the queue link shows them all).
DEVICE_ALERTS = 100


def device_alerts(store: ConsoleBackend, name: str) -> list[Any]:
    """The device's open alerts: those whose host is the device (syslog, Sigma) and those whose
    ``device`` label is (Alertmanager's SNMP alerts, whose host is the exporter's instance)."""
    status = list(OPEN_STATUSES)
    found = {a.id: a for a in store.query(host=name, status=status, limit=DEVICE_ALERTS)}
    for a in store.query(text=name, status=status, limit=10 * DEVICE_ALERTS):
        if a.host == name or (a.labels or {}).get("device") == name:
            found.setdefault(a.id, a)
    return sorted(found.values(), key=lambda a: (a.last_seen, a.id), reverse=True)[:DEVICE_ALERTS]


def _sensor(s: Sample) -> str:
    return s.labels.get("sensor") or next(
        (f"{k}={v}" for k, v in sorted(s.labels.items()) if k.endswith("Index")), "-")


async def device_page(request: Request) -> Response:
    """GET /noc/device/{name}: interfaces, CPU, temperatures, last poll and open alerts."""
    require(request)
    name = request.path_params["name"]
    src = _source(request)
    model = src.model if src is not None else None
    known = model is not None and name in model.devices
    answers: dict[str, list[Sample]] = {}
    error = _NOT_CONFIGURED if src is None else ""
    if src is not None and len(name) <= MAX_DEVICE_NAME:
        try:
            answers = {k: await run_in_threadpool(src.prometheus.query, q)
                       for k, q in device_queries(name).items()}
        except PrometheusError as exc:
            error = str(exc)
    if not known and not answers.get("up") and not (error and len(name) <= MAX_DEVICE_NAME):
        raise NotFoundError(f"device {name[:MAX_DEVICE_NAME]!r} is neither in the inventory nor "
                            "in Prometheus / không có thiết bị này")
    dev = model.devices.get(name) if model is not None else None
    up = answers.get("up", [])
    state = ("up" if up[0].value == 1 else "down") if up else "unknown"
    site = dev.site if dev is not None else (up[0].labels.get("site", "") if up else "")
    last = max((s.value for s in answers.get("last", [])), default=0.0)
    interfaces: dict[str, dict[str, Any]] = defaultdict(dict)
    for key in ("oper", "admin", "errors_in", "errors_out"):
        for s in answers.get(key, []):
            if s.labels.get("ifName"):
                here = interfaces[s.labels["ifName"]]
                if key.startswith("errors"):
                    here["errors"] = here.get("errors", 0.0) + s.value
                else:
                    here[key] = s.value
    wan = set(dev.wan_uplinks) if dev is not None else set()
    info = answers.get("info", [])
    store: ConsoleBackend = request.app.state.backend
    alerts = await run_in_threadpool(device_alerts, store, name)
    return render(request, "noc_device.html", name=name, site=site, state=state,
                  states=STATE_LABELS, error=error, last_poll=_iso(last) if last > 0 else "",
                  info=info[0].labels if info else {}, device=dev, wan=wan,
                  interfaces=sorted(interfaces.items(), key=lambda kv: (
                      -(kv[1].get("errors") or 0), kv[0])),
                  cpu=sorted(answers.get("cpu", []), key=_sensor),
                  temps=sorted(answers.get("temp", []), key=_sensor), sensor=_sensor,
                  alerts=alerts,
                  alerts_link="/alerts?" + urlencode({"host": name, "status": "all"}),
                  prometheus=src.prometheus.url if src is not None else "")


def routes() -> list[Route]:
    """The NOC pages."""
    return [
        Route("/noc", noc_page, methods=["GET"]),
        Route("/noc/map", map_page, methods=["GET"]),
        Route("/noc/device/{name:str}", device_page, methods=["GET"]),
    ]

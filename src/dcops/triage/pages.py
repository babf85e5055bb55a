"""Read-only pages: queue, alert, incidents, SLA, audit trail, users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dcops.model.rbac import ROLES
from dcops.triage.nocgroups import site_label
from dcops.triage.render import render
from dcops.triage.security import BadRequestError, NotFoundError, require
from dcops.triage.store_contract import OPEN_STATUSES, SEVERITIES, ConsoleBackend, EventLookup

SINCE = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
         "30d": timedelta(days=30)}
STATUS_LABELS = {
    "new": "new / mới", "acknowledged": "acknowledged / đã xác nhận",
    "investigating": "investigating / đang điều tra", "resolved": "resolved / đã xử lý",
    "false_positive": "false positive / cảnh báo sai",
}

INCIDENT_STATUS_LABELS = {
    "open": "open / đang mở", "merged": "merged / đã gộp", "closed": "closed / đã đóng",
}

ACTION_LABELS = {
    "acknowledged": "Acknowledge / Xác nhận", "investigating": "Investigate / Điều tra",
    "resolved": "Resolve / Đã xử lý xong", "false_positive": "False positive / Cảnh báo sai",
}


def _store(request: Request) -> ConsoleBackend:
    backend: ConsoleBackend = request.app.state.backend
    return backend


def iso(dt: datetime) -> str:
    """The store's timestamp format."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fmt_seconds(value: float | None) -> str:
    """``1h05m``, ``42s``, or ``-``."""
    if value is None:
        return "-"
    h, rem = divmod(int(value), 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{sec:02d}s" if m else f"{sec}s"


PAGE_SIZE = 100


def queue_filter(request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The filter from the query string (severity, site, system, status, since, host, q, page)."""
    qp = request.query_params
    chosen = {k: qp.get(k, "")
              for k in ("severity", "site", "system", "status", "since", "host", "q")}
    f: dict[str, Any] = {"limit": PAGE_SIZE, "text": chosen["q"]}
    if chosen["host"]:  # one host exactly (the NOC device page links here)
        if len(chosen["host"]) > 255:
            raise BadRequestError("host=…: expected a host name of at most 255 characters / "
                                  "tên máy không hợp lệ")
        f["host"] = chosen["host"]
    for key in ("severity", "site", "system"):
        if chosen[key]:
            f[key] = [chosen[key]]
    if chosen["status"] == "open" or not chosen["status"]:
        f["status"] = list(OPEN_STATUSES)
    elif chosen["status"] != "all":
        f["status"] = [chosen["status"]]
    if chosen["since"] in SINCE:
        f["since"] = iso(datetime.now(UTC) - SINCE[chosen["since"]])
    elif chosen["since"]:
        raise BadRequestError(f"since={chosen['since']!r}: expected one of "
                              f"{', '.join(SINCE)} / khoảng thời gian không hợp lệ")
    return f, chosen


def page_number(request: Request) -> int:
    """?page=N (1-based); anything else is refused, not ignored."""
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 6:
        raise BadRequestError(f"page={raw!r}: expected a page number from 1 / "
                              "số trang không hợp lệ")
    return int(raw)


async def queue(request: Request) -> Response:
    """GET /alerts: the live queue with filters and counts by severity and site."""
    user = require(request)
    f, chosen = queue_filter(request)
    page = page_number(request)
    store = _store(request)

    def load() -> dict[str, Any]:
        facets = store.facets()
        counts = store.counts(**f)
        total = sum(counts.get("severity", {}).values())
        pages = max(1, -(-total // PAGE_SIZE))
        return {"alerts": store.query(**f, offset=(min(page, pages) - 1) * PAGE_SIZE),
                "counts": counts, "total": total, "page": min(page, pages), "pages": pages,
                "sites": facets.get("site", []), "systems": facets.get("system", [])}

    data = await run_in_threadpool(load)
    data["page_links"] = _page_links(chosen, data["page"], data["pages"])
    data["pager_noun"] = "alerts / cảnh báo"
    assignees = [u.username for u in await run_in_threadpool(store.list_users)
                 if u.role == "analyst" and not u.disabled] if user.can("triage") else []
    return render(request, "queue.html", chosen=chosen, severities=SEVERITIES,
                  statuses=STATUS_LABELS, since_options=list(SINCE), assignees=assignees, **data)


def _page_links(chosen: dict[str, str], page: int, pages: int) -> dict[str, str]:
    """Query strings of the first, previous, next and last pages, keeping the filters."""
    keep = {k: v for k, v in chosen.items() if v}
    out: dict[str, str] = {}
    for name, number in (("first", 1), ("prev", page - 1), ("next", page + 1), ("last", pages)):
        if 1 <= number <= pages and number != page:
            out[name] = "?" + urlencode({**keep, "page": str(number)})
    return out


async def alert_page(request: Request) -> Response:
    """GET /alerts/{id}: the alert, its events, notes, silences and history."""
    require(request)
    alert_id = int(request.path_params["alert_id"])
    store = _store(request)

    def load() -> dict[str, Any]:
        alert = store.get(alert_id)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} does not exist / không tồn tại")
        window_id = getattr(alert, "change_window_id", None)
        return {"alert": alert, "notes": store.notes(alert_id),
                "window": store.change_window(window_id) if window_id else None,
                "history": store.audit_records(target=f"alert:{alert_id}"),
                "silences": store.silences(alert_id)}

    data = await run_in_threadpool(load)
    lookup: EventLookup | None = request.app.state.events
    found = await run_in_threadpool(lookup.events, data["alert"].event_ids) \
        if lookup is not None and data["alert"].event_ids else []
    known = {e["id"] for e in found}
    nxt = {
        "new": ["acknowledged", "investigating", "resolved", "false_positive"],
        "acknowledged": ["investigating", "resolved", "false_positive"],
        "investigating": ["resolved", "false_positive"],
    }.get(data["alert"].status, [])
    noc = request.app.state.noc
    site = noc.model.sites.get(data["alert"].site) if noc is not None and noc.model is not None \
        and data["alert"].site else None
    return render(request, "alert.html", statuses=STATUS_LABELS, actions=ACTION_LABELS,
                  next_states=nxt, events=found, spool=lookup is not None,
                  site_label=site_label(site) if site is not None else "",
                  missing_events=[e for e in data["alert"].event_ids if e not in known],
                  am_configured=store.silences_enabled, **data)


#: Alerts listed per incident row; the rest is a count (the incident's page lists them all).
ALERTS_PER_INCIDENT_ROW = 20


async def incidents_page(request: Request) -> Response:
    """GET /incidents: open incidents and their alerts, a page at a time."""
    require(request)
    page = page_number(request)
    store = _store(request)

    def load() -> dict[str, Any]:
        total = store.incident_count()
        pages = max(1, -(-total // PAGE_SIZE))
        now_page = min(page, pages)
        incs = store.incidents(limit=PAGE_SIZE, offset=(now_page - 1) * PAGE_SIZE)
        shown = [aid for inc in incs for aid in inc.alert_ids[:ALERTS_PER_INCIDENT_ROW]]
        alerts = {a.id: a for a in store.query(ids=shown, limit=len(shown))} if shown else {}
        return {"incidents": incs, "alerts": alerts, "total": total, "page": now_page,
                "pages": pages, "page_links": _page_links({}, now_page, pages),
                "per_row": ALERTS_PER_INCIDENT_ROW, "pager_noun": "incidents / sự cố"}

    return render(request, "incidents.html", statuses=STATUS_LABELS,
                  incident_statuses=INCIDENT_STATUS_LABELS, **await run_in_threadpool(load))


async def incident_page(request: Request) -> Response:
    """GET /incidents/{id}."""
    require(request)
    store = _store(request)
    inc_id = int(request.path_params["incident_id"])

    def load() -> dict[str, Any]:
        inc = store.incident(inc_id)
        if inc is None:
            raise NotFoundError(f"incident {inc_id} does not exist / không tồn tại")
        return {"incident": inc, "alerts": store.query(incident_id=inc_id),
                "history": store.audit_records(target=f"incident:{inc_id}")}

    return render(request, "incident.html", statuses=STATUS_LABELS,
                  incident_statuses=INCIDENT_STATUS_LABELS,
                  **await run_in_threadpool(load))


async def sla_page(request: Request) -> Response:
    """GET /sla: time to acknowledge / resolve per severity against targets."""
    require(request)
    store = _store(request)
    rows = await run_in_threadpool(store.sla_rows)
    return render(request, "sla.html", rows=rows, fmt=fmt_seconds)


#: Newest audit records listed on /audit (the whole trail is verified, not listed).
AUDIT_ROWS = 500


async def audit_page(request: Request) -> Response:
    """GET /audit: the audit trail and the chain verification (auditor, admin)."""
    require(request, "audit")
    store = _store(request)
    full = request.query_params.get("verify", "") == "full"
    records = await run_in_threadpool(store.audit_records, None, AUDIT_ROWS, True)
    checked = await run_in_threadpool(store.audit_verification, full)
    return render(request, "audit.html", records=records, verify=checked.result, how=checked)


async def users_page(request: Request) -> Response:
    """GET /users (admin)."""
    require(request, "users")
    users = await run_in_threadpool(_store(request).list_users)
    locks = await run_in_threadpool(_store(request).login_locks)
    return render(request, "users.html", users=users, roles=ROLES, locks=locks)


def routes() -> list[Route]:
    """The GET routes of the console."""
    return [
        Route("/alerts", queue, methods=["GET"]),
        Route("/alerts/{alert_id:int}", alert_page, methods=["GET"]),
        Route("/incidents", incidents_page, methods=["GET"]),
        Route("/incidents/{incident_id:int}", incident_page, methods=["GET"]),
        Route("/sla", sla_page, methods=["GET"]),
        Route("/audit", audit_page, methods=["GET"]),
        Route("/users", users_page, methods=["GET"]),
    ]

"""The bulk path of the Alertmanager webhook: one body's alerts in a few statements.

It decides exactly what the per-alert path (`dcops.alerts.bridge.ingest_webhook_per_alert`, which
calls `AlertStore.upsert` per alert) decides, item by item and in order, but on state read once
per body: the open alerts of the body's fingerprints and dedup keys (two indexed queries), the
detection ids already seen (one query) and the newest open incident of each host (one query).
The writes are then batched: new incidents, new alerts, detections and audit records each in one
executemany (SQLite) or COPY (PostgreSQL) (`db.insert_rows`; ids are taken first, `_reserve_ids`),
dedup updates in one executemany, and the audit records appended in item order by
`chain.append_many` (one HMAC per record chained to the previous one, the head carried in memory).
A resolved item goes through the per-alert transition (after the pending writes are flushed, so
the trail keeps the item order) and the state is read again before the next item.
tests/unit/alerts/test_alerts_bulk.py feeds the same bodies through both paths and compares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, case, func, or_, select, text, update

from dcops.alerts import chain, schema
from dcops.alerts.db import insert_rows
from dcops.alerts.models import OPEN_STATUSES, SEVERITY_ORDER, Status, normalise_severity
from dcops.alerts.timeutil import iso, now, parse

if TYPE_CHECKING:
    from dcops.alerts.bridge import IngestResult
    from dcops.alerts.store import AlertStore

ACTOR = "alertmanager"
# bridge._ingest_one: one item through AlertStore.upsert; the id of an alert it resolved
PerAlert = Callable[["AlertStore", Connection, dict[str, Any], "IngestResult"], "int | None"]
# The alert's host: the device an SNMP alert is about before the exporter that scraped it
# (`instance` is the poller's address for every device; as the host it put a province's SNMP
# alerts into one incident); `instance` for what is its own target (node_exporter, collectors).
HOST_LABELS = ("host", "device", "node", "instance")
_OPEN = [s.value for s in OPEN_STATUSES]


@dataclass(slots=True)
class _Alert:
    """An open alert as the body sees it: stored (id known) or new in this body (id after flush)."""

    id: int | None
    rule_id: str
    dedup_key: str
    fingerprint: str
    source: str
    first_seen: str
    last_seen: str
    count: int
    row: dict[str, Any] | None = None  # the insert row of a new alert
    incident: _Incident | int | None = None
    windowed: bool = False  # an expected change (change_window_id set): no dedup with others


@dataclass(slots=True)
class _Incident:
    """An incident created in this body (id after flush)."""

    row: dict[str, Any]
    id: int | None = None


@dataclass(slots=True)
class _State:
    """What the per-alert path would read from the database, kept current in memory."""

    alerts: list[_Alert] = field(default_factory=list)  # open, oldest first
    seen: set[str] = field(default_factory=set)
    host_incident: dict[str, _Incident | int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """Writes decided but not yet made, in item order; `ts` stamps the rows they create."""

    incidents: list[_Incident] = field(default_factory=list)
    created: list[_Alert] = field(default_factory=list)
    updated: dict[int, _Alert] = field(default_factory=dict)  # stored alerts by id
    detections: list[tuple[str, _Alert]] = field(default_factory=list)
    # (action, alert, detail); the alert's id and incident are filled in at flush time
    records: list[tuple[str, _Alert, dict[str, Any]]] = field(default_factory=list)
    ts: str = field(default_factory=lambda: iso(now()))


@dataclass(frozen=True, slots=True)
class _Item:
    status: str
    fingerprint: str
    did: str
    starts: str
    ends: str
    rule_id: str
    title: str
    severity: str
    host: str
    site: str
    system: str
    labels: str  # as stored (JSON, sorted keys)
    description: str
    window_start: str
    seen: datetime  # startsAt
    label_map: dict[str, str]


def parse_item(store: AlertStore, item: dict[str, Any]) -> _Item:
    """One validated webhook item as both paths read it (this one and bridge._ingest_one)."""
    labels = {str(k): str(v) for k, v in item["labels"].items()}
    ann = {str(k): str(v) for k, v in (item.get("annotations") or {}).items()}
    fingerprint = str(item["fingerprint"])
    starts = parse(str(item["startsAt"]))
    starts_s = iso(starts)
    name = labels.get("alertname", "unnamed")
    return _Item(
        status=str(item["status"]), fingerprint=fingerprint,
        did=f"am:{fingerprint}:{starts_s}", starts=starts_s,
        ends=str(item.get("endsAt", "")), rule_id=f"alertmanager:{name}",
        title=ann.get("summary", name),
        severity=normalise_severity(labels.get("severity", "")),
        host=next((labels[k] for k in HOST_LABELS if labels.get(k)), ""),
        site=labels.get("site", ""), system=labels.get("system", ""),
        labels=json.dumps(labels, sort_keys=True), description=ann.get("description", ""),
        window_start=iso(starts - store.config.dedup_window), seen=starts, label_map=labels)


def _read_state(conn: Connection, items: list[_Item]) -> _State:
    a, i, d = schema.alerts.c, schema.incidents.c, schema.detections.c
    fps = sorted({it.fingerprint for it in items})
    state = _State()
    # Open alerts the body may touch: by fingerprint (the open Alertmanager alert) or by dedup
    # key (upsert's rule + key); both are the fingerprint for webhook alerts. Two queries, each on
    # its own index (an OR of both would scan the table); the status is checked here, not in SQL:
    # PostgreSQL's statistics of a store that grew fast (an outage on a new install) say few
    # alerts are open, and it then reads every open alert through the status index on each body.
    cols = select(a.id, a.rule_id, a.dedup_key, a.fingerprint, a.source, a.status,
                  a.first_seen, a.last_seen, a.count.label("n"), a.change_window_id)
    rules = sorted({it.rule_id for it in items})
    found = {r.id: r for q in (cols.where(a.fingerprint.in_(fps)),
                               cols.where(a.rule_id.in_(rules), a.dedup_key.in_(fps)))
             for r in conn.execute(q) if r.status in _OPEN}
    state.alerts = [_Alert(int(r.id), r.rule_id, r.dedup_key, r.fingerprint, r.source,
                           r.first_seen, r.last_seen, int(r.n),
                           windowed=r.change_window_id is not None)
                    for _, r in sorted(found.items())]
    dids = sorted({it.did for it in items if it.status == "firing"})
    if dids:
        state.seen = {r.detection_id for r in conn.execute(
            select(d.detection_id).where(d.detection_id.in_(dids)))}
    hosts = sorted({it.host for it in items if it.host and it.status == "firing"})
    if hosts:
        # The newest open alert of each host that belongs to an open incident (as _group): per
        # host and incident the newest open alert (the host index), then which of those
        # incidents are open (the key); a join lets the planner walk every open incident.
        newest = func.max(case((a.status.in_(_OPEN), a.id))).label("id")
        pairs = [(r.host, int(r.incident_id), int(r.id)) for r in conn.execute(
            select(a.host, a.incident_id, newest)
            .where(a.host.in_(hosts), a.incident_id.is_not(None))
            .group_by(a.host, a.incident_id)) if r.id is not None]
        open_incidents = {int(v) for v in conn.execute(select(i.id).where(
            i.id.in_(sorted({inc for _, inc, _ in pairs})), i.status == "open",
            i.change_window_id.is_(None))).scalars()  # never a change window's (as _group)
            } if pairs else set()
        best: dict[str, tuple[int, int]] = {}
        for host, inc, alert_id in pairs:
            if inc in open_incidents and alert_id > best.get(host, (0, 0))[0]:
                best[host] = (alert_id, inc)
        state.host_incident = {host: inc for host, (_, inc) in best.items()}
    return state


def _reserve_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """n new ids of `table`, ascending, as its own autoincrement would give them one by one.

    A multi-row INSERT ... RETURNING does not promise the order of the rows it returns (so
    SQLAlchemy falls back to a statement per row on SQLite); ids taken first and inserted
    explicitly are known in item order. PostgreSQL: from the column's own sequence, so other
    writers never collide. SQLite: max(id) + 1 ... (what its rowid allocation does), safe because
    the caller holds the database's write lock (`chain.writing` begins IMMEDIATE).
    """
    if conn.dialect.name == "postgresql":
        seq = func.pg_get_serial_sequence(table.name, "id")
        got = conn.execute(select(func.nextval(seq)).select_from(
            func.generate_series(1, n))).scalars().all()
        return sorted(int(v) for v in got)
    top = conn.execute(select(func.max(table.c.id))).scalar()
    start = int(top or 0) + 1
    return list(range(start, start + n))


def _id(x: _Alert | _Incident | int | None) -> int | None:
    if x is None or isinstance(x, int):
        return x
    return x.id


def _flush(store: AlertStore, conn: Connection, p: _Pending) -> None:
    """Make the pending writes, in an order that gives the ids the per-alert path gives."""
    if p.incidents:
        for x, new_id in zip(p.incidents, _reserve_ids(conn, schema.incidents, len(p.incidents)),
                             strict=True):
            x.id = new_id
            x.row["id"] = new_id
        insert_rows(conn, schema.incidents, [x.row for x in p.incidents])
    if p.created:
        rows = []
        for al, new_id in zip(p.created, _reserve_ids(conn, schema.alerts, len(p.created)),
                              strict=True):
            assert al.row is not None
            al.id = new_id
            al.row.update(id=new_id, incident_id=_id(al.incident), count=al.count,
                          first_seen=al.first_seen, last_seen=al.last_seen)
            rows.append(al.row)
        insert_rows(conn, schema.alerts, rows)
    if p.updated:
        a = schema.alerts.c
        conn.execute(update(schema.alerts).where(a.id == bindparam("b_id")).values(
            count=bindparam("b_n"), first_seen=bindparam("b_first"),
            last_seen=bindparam("b_last")),
            [{"b_id": al.id, "b_n": al.count, "b_first": al.first_seen,
              "b_last": al.last_seen} for al in p.updated.values()])
    if p.detections:
        insert_rows(conn, schema.detections, [
            {"detection_id": did, "alert_id": al.id, "received_at": p.ts}
            for did, al in p.detections])
    if p.records:
        entries: list[tuple[str, str, str, dict[str, Any]]] = []
        for action, al, detail in p.records:
            if action == "alert.create":
                detail["incident"] = _id(al.incident)
            entries.append((ACTOR, action, f"alert:{al.id}", detail))
        chain.append_many(conn, entries)
    for al in p.created:  # stored now: later dedups update them
        al.row = None
    p.incidents.clear()
    p.created.clear()
    p.updated.clear()
    p.detections.clear()
    p.records.clear()
    p.ts = iso(now())


def _firing(store: AlertStore, it: _Item, state: _State, p: _Pending,
            result: IngestResult) -> None:
    if it.did in state.seen:
        result.unchanged += 1
        return
    open_am = [al for al in state.alerts
               if al.fingerprint == it.fingerprint and al.source == "alertmanager"]
    open_row = open_am[-1] if open_am else None
    match = [al for al in state.alerts if al.rule_id == it.rule_id and not al.windowed
             and al.dedup_key == it.fingerprint and al.last_seen >= it.window_start]
    if match:
        al = match[-1]
        al.count += 1
        al.last_seen = max(al.last_seen, it.starts)
        al.first_seen = min(al.first_seen, it.starts)
        if al.row is None and al.id is not None:
            p.updated[al.id] = al
        p.records.append(("alert.dedup", al, {"count": al.count, "seen": it.starts}))
    else:
        incident: _Incident | int | None = state.host_incident.get(it.host) if it.host else None
        if incident is None:
            label = it.host or it.title
            incident = _Incident({"title": f"{label}: {it.title}"[:300], "status": "open",
                                  "merged_into": None, "group_host": it.host,
                                  "group_source_ip": "", "created_at": p.ts,
                                  "severity": it.severity})
            p.incidents.append(incident)
        if it.host:
            state.host_incident[it.host] = incident
        al = _Alert(None, it.rule_id, it.fingerprint, it.fingerprint, "alertmanager", it.starts,
                    it.starts, 1, incident=incident, row={
                        "source": "alertmanager", "rule_id": it.rule_id, "rule_title": it.title,
                        "severity": it.severity, "status": "new", "dedup_key": it.fingerprint,
                        "site": it.site, "system": it.system,
                        "system_level": store.config.system_levels.get(it.system),
                        "host": it.host, "source_ip": "", "tags": "[]", "labels": it.labels,
                        "description": it.description, "fingerprint": it.fingerprint,
                        "assignee": "", "created_at": p.ts})
        state.alerts.append(al)
        p.created.append(al)
        p.records.append(("alert.create", al, {
            "rule_id": it.rule_id, "severity": it.severity, "key": it.fingerprint,
            "host": it.host, "site": it.site, "system": it.system, "incident": None}))
    state.seen.add(it.did)
    p.detections.append((it.did, al))
    if open_row is not None and open_row is al:
        result.updated += 1
    else:
        result.created += 1


def _decidable(store: AlertStore, conn: Connection, items: list[_Item], state: _State) -> bool:
    """Whether the bulk path alone decides these items as the per-alert path would. It does not
    when a change window may cover one of them (dcops.alerts.changes: matching, the window's
    incident and policy) or when one may retitle an incident (an alert more severe than the
    incident it joins): such bodies, rare and small, go per alert (`per_alert`)."""
    firing = [it for it in items if it.status == "firing"]
    if not firing:
        return True
    w, i = schema.change_windows.c, schema.incidents.c
    earliest = iso(parse(min(it.starts for it in firing)) - store.config.changes.grace)
    latest = max(it.starts for it in firing)
    if conn.execute(select(w.id).where(
            w.opened_at <= latest, w.closes_at >= earliest,
            or_(w.closed_at.is_(None), w.closed_at >= earliest)).limit(1)).first() is not None:
        return False
    by_host: dict[str, set[str]] = {}
    for it in firing:
        if it.host:
            by_host.setdefault(it.host, set()).add(it.severity)
    if any(len(sevs) > 1 for sevs in by_host.values()):
        return False
    stored = {h: inc for h, inc in state.host_incident.items()
              if isinstance(inc, int) and h in by_host}
    if stored:
        current = {int(r.id): r.severity for r in conn.execute(
            select(i.id, i.severity).where(i.id.in_(sorted(set(stored.values())))))}
        for host, inc in stored.items():
            (severity,) = by_host[host]
            held = current.get(inc)
            if held is None or SEVERITY_ORDER.get(severity, 9) < SEVERITY_ORDER.get(held, 9):
                return False
    return True


def ingest_items(store: AlertStore, conn: Connection, raw: list[dict[str, Any]],
                 result: IngestResult, per_alert: PerAlert) -> list[int]:
    """Take validated webhook items inside the caller's (chain-locked) transaction, as the
    per-alert path would one by one; returns the ids of the alerts it resolved. Items the bulk
    path cannot decide alone (`_decidable`) are handed to `per_alert` from there on."""
    items = [parse_item(store, item) for item in raw]
    if conn.dialect.name == "postgresql":
        # Every read here is a key or index lookup. Without statistics yet (a new store filling
        # fast: nothing analysed in the minute of an outage) PostgreSQL guesses that a list of
        # 50 keys matches a quarter of a table and scans it, on every body: each body slower than
        # the last. For this transaction only, scans are its last resort.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
    resolved: list[int] = []
    state: _State | None = None
    pending = _Pending()
    for n, it in enumerate(items):
        if state is None:
            state = _read_state(conn, items[n:])
            if not _decidable(store, conn, items[n:], state):
                _flush(store, conn, pending)
                for item in raw[n:]:
                    alert_id = per_alert(store, conn, item, result)
                    if alert_id is not None:
                        resolved.append(alert_id)
                return resolved
        if it.status == "firing":
            _firing(store, it, state, pending, result)
            continue
        open_am = [al for al in state.alerts
                   if al.fingerprint == it.fingerprint and al.source == "alertmanager"]
        if not open_am:
            result.unchanged += 1
            continue
        _flush(store, conn, pending)
        alert_id = open_am[-1].id
        assert alert_id is not None
        store.transition_in(conn, alert_id, Status.RESOLVED, ACTOR,
                            f"resolved in Alertmanager at {it.ends}")
        resolved.append(alert_id)
        result.resolved += 1
        state = None  # the alert left the open ones: read the state again
    _flush(store, conn, pending)
    return resolved

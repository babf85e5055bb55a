"""The alert store: detections and Alertmanager alerts in, one deduplicated queue out.

It implements ``dcops.model.sinks.DetectionSink``: ``accept`` is idempotent by ``Detection.id``.
Lifecycle actions, notes, incidents and silences live in ``dcops.alerts.actions`` (mixed in here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from dcops.alerts import chain, schema
from dcops.alerts.actions import Actions
from dcops.alerts.changes import ChangeWindow, ChangeWindows, accounts_of
from dcops.alerts.config import AlertsConfig
from dcops.alerts.db import open_engine, reading
from dcops.alerts.models import (
    OPEN_STATUSES,
    SEVERITY_ORDER,
    Alert,
    AlertFilter,
    Status,
    normalise_severity,
    storable,
)
from dcops.alerts.silencer import Silencer
from dcops.alerts.timeutil import iso, now, parse
from dcops.alerts.trail import TrailConfig, attach, trail_of
from dcops.errors import AlertStoreError
from dcops.model.event import Detection
from dcops.model.sinks import DetectionSink

SOURCE_IP_FIELDS = ("source.ip", "source.address", "client.ip", "src_ip")
_OPEN = [s.value for s in OPEN_STATUSES]


def row_to_alert(row: Any, event_ids: list[str] | None = None) -> Alert:
    """Build an Alert from a result row of the alerts table."""
    return Alert(
        id=row.id, source=row.source, rule_id=row.rule_id, rule_title=row.rule_title,
        severity=row.severity, status=row.status, dedup_key=row.dedup_key, site=row.site,
        system=row.system, system_level=row.system_level, host=row.host, source_ip=row.source_ip,
        first_seen=row.first_seen, last_seen=row.last_seen, count=row.count,
        tags=json.loads(row.tags), labels=json.loads(row.labels), description=row.description,
        fingerprint=row.fingerprint, assignee=row.assignee, incident_id=row.incident_id,
        created_at=row.created_at, acked_at=row.acked_at, resolved_at=row.resolved_at,
        change_window_id=row.change_window_id, event_ids=event_ids or [])


def _stored_time(value: str, name: str) -> str:
    try:
        return iso(parse(value))
    except ValueError as exc:
        raise AlertStoreError(f"filter {name}: expected an ISO 8601 time, got {value!r}") from exc


@dataclass(frozen=True, slots=True)
class SlaInput:
    """The columns of an alert the SLA report reads (dcops.alerts.sla.Timed)."""

    id: int
    severity: str
    created_at: str
    acked_at: str | None
    resolved_at: str | None


class AlertStore(Actions):
    """SQLite or PostgreSQL through SQLAlchemy Core; schema kept current by Alembic on open."""

    def __init__(self, url: str, config: AlertsConfig | None = None,
                 silencer: Silencer | None = None, trail: TrailConfig | None = None) -> None:
        self.url = url
        self.config = config or AlertsConfig()
        self.silencer = silencer
        self.engine: Engine = open_engine(url)
        # Trail keys and anchors (dcops.alerts.trail); None: the embedded default for SQLite.
        self.trail = attach(self.engine, trail) if trail is not None else trail_of(self.engine)
        self.changes = ChangeWindows(self.engine, self.config.changes)

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Anchor what this process added to the trail, then release the connection pool."""
        self.trail.close(self.engine)
        self.engine.dispose()

    # ---- ingestion -------------------------------------------------------------------------

    def accept(self, detections: Sequence[Detection]) -> None:
        """Record detections; the same Detection.id twice changes nothing (DetectionSink)."""
        for attempt in (1, 2):
            try:
                with chain.writing(self.engine) as conn:  # dedup sees every earlier alert
                    for d in detections:
                        self._accept_one(conn, d)
                return
            except IntegrityError:
                if attempt == 2:  # a concurrent writer stored the same detection: retry sees it
                    raise

    def _accept_one(self, conn: Connection, d: Detection) -> int | None:
        did = d.id
        if conn.execute(select(schema.detections.c.alert_id)
                        .where(schema.detections.c.detection_id == did)).first():
            return None
        # A rule's own fields, or a correlation's group-by values (brute force by source.ip).
        group = d.fields.get("group")
        candidates = [d.fields, group] if isinstance(group, dict) else [d.fields]
        source_ip = next((str(c[f]) for c in candidates for f in SOURCE_IP_FIELDS if c.get(f)),
                         "")
        alert_id = self.upsert(
            conn, source="sigma", actor="detect", rule_id=d.rule_id, rule_title=d.rule_title,
            severity=normalise_severity(d.severity), key=d.key, seen=d.timestamp, site=d.site,
            system=d.system, host=d.host, source_ip=source_ip, tags=list(d.tags), labels={},
            description=d.description, fingerprint="", event_ids=d.event_ids,
            accounts=accounts_of(d.fields))
        conn.execute(schema.detections.insert().values(
            detection_id=did, alert_id=alert_id, received_at=iso(now())))
        return alert_id

    def upsert(self, conn: Connection, *, source: str, actor: str, rule_id: str, rule_title: str,
               severity: str, key: str, seen: datetime, site: str, system: str, host: str,
               source_ip: str, tags: list[str], labels: dict[str, str], description: str,
               fingerprint: str, event_ids: Iterable[str], accounts: Sequence[str] = ()) -> int:
        """Update the open alert with this rule and key inside the dedup window, or create one.

        A new alert on a host (and account) of an open change window is linked to it and
        handled per the rule's ``changes:`` policy (dcops.alerts.changes); an alert expected by a
        window never absorbs one that is not, nor the other way round.
        """
        a = schema.alerts.c
        # Text from events (a syslog line is any bytes a sender chose) made storable everywhere.
        rule_id, rule_title, key, site, system, host, source_ip, description, fingerprint = (
            storable(v) for v in (rule_id, rule_title, key, site, system, host, source_ip,
                                  description, fingerprint))
        seen_s = iso(seen)
        window_start = iso(seen - self.config.dedup_window)
        policy = self.config.changes.policy(rule_id, rule_title)
        window = None if policy == "ignore_window" else self.changes.match(
            conn, host, list(accounts) or accounts_of(labels), seen)
        same_window = (a.change_window_id == window.id if window is not None
                       else a.change_window_id.is_(None))
        existing = conn.execute(
            select(a.id, a.count.label("n"), a.last_seen, a.first_seen)
            .where(a.rule_id == rule_id, a.dedup_key == key, a.status.in_(_OPEN),
                   a.last_seen >= window_start, same_window)
            .order_by(a.id.desc()).limit(1)
        ).first()
        if existing is not None:
            alert_id = int(existing.id)
            conn.execute(update(schema.alerts).where(a.id == alert_id).values(
                count=existing.n + 1, last_seen=max(existing.last_seen, seen_s),
                first_seen=min(existing.first_seen, seen_s)))
            self._link_events(conn, alert_id, event_ids)
            chain.append(conn, actor, "alert.dedup", f"alert:{alert_id}",
                         {"count": existing.n + 1, "seen": seen_s})
            return alert_id
        ts = iso(now())
        alert_id = int(conn.execute(schema.alerts.insert().values(
            source=source, rule_id=rule_id, rule_title=rule_title, severity=severity, status="new",
            dedup_key=key, site=site, system=system,
            system_level=self.config.system_levels.get(system), host=host, source_ip=source_ip,
            first_seen=seen_s, last_seen=seen_s, count=1, tags=json.dumps(tags),
            labels=json.dumps(labels, sort_keys=True), description=description,
            fingerprint=fingerprint, assignee="", incident_id=None, created_at=ts,
        )).inserted_primary_key[0])  # type: ignore[index]
        self._link_events(conn, alert_id, event_ids)
        if window is not None:
            incident_id = self._window_incident(conn, alert_id, window, severity)
        else:
            incident_id = self._group(conn, alert_id, rule_title, host, source_ip, severity,
                                      actor)
        chain.append(conn, actor, "alert.create", f"alert:{alert_id}", {
            "rule_id": rule_id, "severity": severity, "key": key, "host": host,
            "site": site, "system": system, "incident": incident_id})
        if window is not None:
            self._expected(conn, alert_id, window, policy, actor)
        return alert_id

    def _expected(self, conn: Connection, alert_id: int, window: ChangeWindow, policy: str,
                  actor: str) -> None:
        """Mark the alert an expected change of `window` (trail), and resolve it if so set."""
        conn.execute(update(schema.alerts).where(schema.alerts.c.id == alert_id)
                     .values(change_window_id=window.id))
        chain.append(conn, actor, "alert.expected_change", f"alert:{alert_id}", {
            "change": window.id, "ticket": window.ticket, "policy": policy,
            "opened_by": window.opened_by})
        if policy == "resolve":
            self.transition_in(
                conn, alert_id, Status.RESOLVED, f"change:{window.id}",
                f"expected change / thay đổi dự kiến: {window.ticket} (change window "
                f"{window.id}, opened by {window.opened_by}); resolved per the changes: policy")

    def _window_incident(self, conn: Connection, alert_id: int, window: ChangeWindow,
                         severity: str) -> int:
        """The window's own incident ("Expected change <ticket>"), created on its first alert."""
        i = schema.incidents.c
        row = conn.execute(select(i.id).where(i.change_window_id == window.id,
                                              i.status == "open")
                           .order_by(i.id).limit(1)).first()  # closed or merged: a new one
        if row is not None:
            incident_id = int(row.id)
        else:
            incident_id = int(conn.execute(schema.incidents.insert().values(
                title=f"Expected change / Thay đổi dự kiến {window.ticket}"[:300],
                status="open", merged_into=None, group_host="", group_source_ip="",
                created_at=iso(now()), change_window_id=window.id, severity=severity,
            )).inserted_primary_key[0])  # type: ignore[index]
        conn.execute(update(schema.alerts).where(schema.alerts.c.id == alert_id)
                     .values(incident_id=incident_id))
        return incident_id

    def _link_events(self, conn: Connection, alert_id: int, event_ids: Iterable[str]) -> None:
        ev = schema.alert_events.c
        have = {r.event_id for r in conn.execute(
            select(ev.event_id).where(ev.alert_id == alert_id))}
        new = sorted(set(event_ids) - have)
        if new:
            conn.execute(schema.alert_events.insert(), [
                {"alert_id": alert_id, "event_id": e, "seen_at": iso(now())} for e in new])

    def _group(self, conn: Connection, alert_id: int, title: str, host: str,
               source_ip: str, severity: str = "medium", actor: str = chain.SYSTEM_ACTOR) -> int:
        """Attach the alert to the open incident of an open alert on the same host or source
        (never a change window's); the incident is titled by its most severe alert."""
        a, i = schema.alerts.c, schema.incidents.c
        conds = []
        if host:
            conds.append(a.host == host)
        if source_ip:
            conds.append(a.source_ip == source_ip)
        incident_id: int | None = None
        if conds:
            row = conn.execute(
                select(a.incident_id).join(schema.incidents, i.id == a.incident_id)
                .where(or_(*conds), a.status.in_(_OPEN), a.id != alert_id, i.status == "open",
                       i.change_window_id.is_(None))
                .order_by(a.id.desc()).limit(1)).first()
            incident_id = row.incident_id if row else None
        label = host or source_ip or title
        if incident_id is None:
            incident_id = int(conn.execute(schema.incidents.insert().values(
                title=f"{label}: {title}"[:300], status="open", merged_into=None,
                group_host=host, group_source_ip=source_ip, created_at=iso(now()),
                severity=severity,
            )).inserted_primary_key[0])  # type: ignore[index]
        else:
            self._retitle(conn, incident_id, alert_id, f"{label}: {title}"[:300], severity,
                          actor)
        conn.execute(update(schema.alerts).where(a.id == alert_id)
                     .values(incident_id=incident_id))
        return incident_id

    def _retitle(self, conn: Connection, incident_id: int, alert_id: int, title: str,
                 severity: str, actor: str) -> None:
        """Give the incident the new alert's title when it is more severe than the title's."""
        i, a = schema.incidents.c, schema.alerts.c
        inc = conn.execute(select(i.title, i.severity).where(i.id == incident_id)).one()
        current = inc.severity
        if current is None:  # an incident from before 0005: its most severe member so far
            sevs = [r.severity for r in conn.execute(
                select(a.severity).where(a.incident_id == incident_id).distinct())]
            current = min(sevs, key=lambda s: SEVERITY_ORDER.get(s, 9), default="informational")
        rank = SEVERITY_ORDER.get(severity, 9)
        if rank >= SEVERITY_ORDER.get(current, 9):
            if inc.severity is None:
                conn.execute(update(schema.incidents).where(i.id == incident_id)
                             .values(severity=current))
            return
        conn.execute(update(schema.incidents).where(i.id == incident_id)
                     .values(title=title, severity=severity))
        chain.append(conn, actor, "incident.retitle", f"incident:{incident_id}", {
            "from": inc.title, "to": title, "severity": severity, "alert": alert_id})

    # ---- queries ---------------------------------------------------------------------------

    def get(self, alert_id: int) -> Alert | None:
        """One alert with its linked event ids, or None."""
        with reading(self.engine) as conn:
            row = conn.execute(select(schema.alerts)
                               .where(schema.alerts.c.id == alert_id)).first()
            if row is None:
                return None
            ev = schema.alert_events.c
            events = [r.event_id for r in conn.execute(
                select(ev.event_id).where(ev.alert_id == alert_id).order_by(ev.event_id))]
        return row_to_alert(row, events)

    def _where(self, f: AlertFilter) -> list[Any]:
        a = schema.alerts.c
        conds: list[Any] = []
        for col, values in ((a.severity, f.severity), (a.site, f.site), (a.system, f.system),
                            (a.status, f.status)):
            if values:
                conds.append(col.in_(values))
        if f.assignee:
            conds.append(a.assignee == f.assignee)
        if f.host:
            conds.append(a.host == f.host)
        if f.incident_id is not None:
            conds.append(a.incident_id == f.incident_id)
        if f.ids:
            conds.append(a.id.in_(f.ids))
        if f.since:  # any ISO 8601 form is accepted; compared in the stored form
            conds.append(a.last_seen >= _stored_time(f.since, "since"))
        if f.until:
            conds.append(a.first_seen <= _stored_time(f.until, "until"))
        if f.text:
            like = f"%{f.text}%"
            conds.append(or_(a.rule_title.like(like), a.rule_id.like(like), a.host.like(like)))
        return conds

    def query(self, f: AlertFilter | None = None) -> list[Alert]:
        """Alerts matching the filter, newest activity first."""
        f = f or AlertFilter()
        q = (select(schema.alerts).where(and_(True, *self._where(f)))
             .order_by(schema.alerts.c.last_seen.desc(), schema.alerts.c.id.desc())
             .limit(f.limit).offset(max(0, f.offset)))
        with reading(self.engine) as conn:
            return [row_to_alert(r) for r in conn.execute(q)]

    def sla_inputs(self, limit: int = 100_000) -> list[SlaInput]:
        """Id, severity and lifecycle times of the newest `limit` alerts: what the SLA report
        reads, without loading whole alerts. Expected changes (alerts of a change window) are
        not analysts' work: resolved by the window in no time, they would flatter the figures."""
        a = schema.alerts.c
        q = (select(a.id, a.severity, a.created_at, a.acked_at, a.resolved_at)
             .where(a.change_window_id.is_(None))
             .order_by(a.last_seen.desc(), a.id.desc()).limit(limit))
        with reading(self.engine) as conn:
            return [SlaInput(int(r.id), r.severity, r.created_at, r.acked_at, r.resolved_at)
                    for r in conn.execute(q)]

    def facets(self) -> dict[str, list[str]]:
        """The distinct non-empty sites and systems of all alerts (the queue's filter choices)."""
        a = schema.alerts.c
        out: dict[str, list[str]] = {}
        with reading(self.engine) as conn:
            for name, col in (("site", a.site), ("system", a.system)):
                q = select(col).where(col != "").distinct().order_by(col)
                out[name] = [str(v) for (v,) in conn.execute(q)]
        return out

    def counts(self, f: AlertFilter | None = None) -> dict[str, dict[str, int]]:
        """Counts of matching alerts by severity and by site."""
        f = f or AlertFilter()
        a = schema.alerts.c
        out: dict[str, dict[str, int]] = {}
        with reading(self.engine) as conn:
            for name, col in (("severity", a.severity), ("site", a.site), ("status", a.status)):
                q = select(col, func.count()).where(and_(True, *self._where(f))).group_by(col)
                out[name] = {str(k): int(v) for k, v in conn.execute(q)}
        return out

    def audit_records(self, target: str | None = None, limit: int | None = None,
                      newest_first: bool = False) -> list[chain.AuditRecord]:
        """The audit trail (optionally of one target such as ``alert:12``)."""
        with reading(self.engine) as conn:
            return chain.records(conn, target, limit, newest_first)

    def verify_audit(self) -> chain.VerifyResult:
        """Check the trail: records, HMACs, key rotations, head and anchors."""
        with reading(self.engine) as conn:
            return chain.verify(conn)


def as_detection_sink(store: AlertStore) -> DetectionSink:
    """The store where the detection engine wants a DetectionSink (checked by mypy)."""
    return store

"""Lifecycle actions: acknowledge, investigate, resolve, assign, notes, incidents, silences.

Every action writes one audit record in the same transaction as the change.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from dcops.alerts import chain, schema
from dcops.alerts.config import AlertsConfig
from dcops.alerts.db import reading
from dcops.alerts.models import CLOSED_STATUSES, TRANSITIONS, Incident, Note, Silence, Status
from dcops.alerts.silencer import Silencer
from dcops.alerts.timeutil import iso, now
from dcops.errors import AlertStoreError


class LifecycleError(AlertStoreError):
    """A transition that the lifecycle does not allow (e.g. acknowledging a resolved alert)."""


class Actions:
    """Mixed into AlertStore; needs its engine, config and silencer."""

    engine: Engine
    config: AlertsConfig
    silencer: Silencer | None

    def _row(self, conn: Connection, alert_id: int) -> Any:
        row = conn.execute(select(schema.alerts).where(schema.alerts.c.id == alert_id)
                           .with_for_update()).first()
        if row is None:
            raise AlertStoreError(f"alert {alert_id} does not exist")
        return row

    def transition(self, alert_id: int, to: Status | str, actor: str, note: str = "") -> None:
        """Move an alert along the lifecycle; closing it also expires its silences."""
        with chain.writing(self.engine) as conn:
            self.transition_in(conn, alert_id, Status(to), actor, note)
        if Status(to) in CLOSED_STATUSES:
            self.expire_silences(alert_id, actor)

    def transition_in(self, conn: Connection, alert_id: int, to: Status, actor: str,
                      note: str = "") -> None:
        """Transition inside the caller's transaction."""
        row = self._row(conn, alert_id)
        current = Status(row.status)
        if to not in TRANSITIONS[current]:
            allowed = ", ".join(s.value for s in TRANSITIONS[current]) or "none (closed)"
            raise LifecycleError(f"alert {alert_id} is {current.value}: cannot move to "
                                 f"{to.value} (allowed: {allowed})")
        ts = iso(now())
        values: dict[str, Any] = {"status": to.value}
        if row.acked_at is None:
            values["acked_at"] = ts
        if to in CLOSED_STATUSES:
            values["resolved_at"] = ts
        conn.execute(update(schema.alerts).where(schema.alerts.c.id == alert_id).values(**values))
        detail: dict[str, Any] = {"from": current.value, "to": to.value}
        if note:
            detail["note"] = note
            self._add_note(conn, alert_id, actor, note)
        chain.append(conn, actor, f"alert.{to.value}", f"alert:{alert_id}", detail)

    def acknowledge(self, alert_id: int, actor: str, note: str = "") -> None:
        """new -> acknowledged."""
        self.transition(alert_id, Status.ACKNOWLEDGED, actor, note)

    def resolve(self, alert_id: int, actor: str, note: str = "",
                false_positive: bool = False) -> None:
        """-> resolved (or false_positive)."""
        to = Status.FALSE_POSITIVE if false_positive else Status.RESOLVED
        self.transition(alert_id, to, actor, note)

    def assign(self, alert_id: int, assignee: str, actor: str) -> None:
        """Set the assignee (empty string to unassign)."""
        with chain.writing(self.engine) as conn:
            row = self._row(conn, alert_id)
            conn.execute(update(schema.alerts).where(schema.alerts.c.id == alert_id)
                         .values(assignee=assignee))
            chain.append(conn, actor, "alert.assign", f"alert:{alert_id}",
                         {"from": row.assignee, "to": assignee})

    def _add_note(self, conn: Connection, alert_id: int, author: str, text: str) -> int:
        return int(conn.execute(schema.notes.insert().values(
            alert_id=alert_id, author=author, created_at=iso(now()), text=text,
        )).inserted_primary_key[0])  # type: ignore[index]

    def add_note(self, alert_id: int, actor: str, text: str) -> int:
        """Attach a note; returns its id."""
        if not text.strip():
            raise AlertStoreError("a note needs some text")
        with chain.writing(self.engine) as conn:
            self._row(conn, alert_id)
            note_id = self._add_note(conn, alert_id, actor, text)
            chain.append(conn, actor, "alert.note", f"alert:{alert_id}",
                         {"note_id": note_id, "text": text})
        return note_id

    def notes(self, alert_id: int) -> list[Note]:
        """Notes of an alert, oldest first."""
        n = schema.notes.c
        with reading(self.engine) as conn:
            return [Note(r.id, r.alert_id, r.author, r.created_at, r.text) for r in conn.execute(
                select(schema.notes).where(n.alert_id == alert_id).order_by(n.id))]

    # ---- incidents ------------------------------------------------------------------------

    def incident(self, incident_id: int) -> Incident | None:
        """One incident with its alert ids."""
        with reading(self.engine) as conn:
            row = conn.execute(select(schema.incidents)
                               .where(schema.incidents.c.id == incident_id)).first()
            if row is None:
                return None
            ids = tuple(r.id for r in conn.execute(
                select(schema.alerts.c.id).where(schema.alerts.c.incident_id == incident_id)
                .order_by(schema.alerts.c.id)))
        return Incident(row.id, row.title, row.status, row.merged_into, row.created_at, ids,
                        row.change_window_id)

    def incidents(self, include_merged: bool = False, limit: int | None = None,
                  offset: int = 0) -> list[Incident]:
        """Incidents, newest first (a page of them with `limit`/`offset`), in two queries."""
        i, a = schema.incidents.c, schema.alerts.c
        q = select(schema.incidents).order_by(i.id.desc()).offset(max(0, offset))
        if limit is not None:
            q = q.limit(limit)
        if not include_merged:
            q = q.where(i.status != "merged")
        members: dict[int, list[int]] = {}
        with reading(self.engine) as conn:
            rows = list(conn.execute(q))
            wanted = [r.id for r in rows]
            for start in range(0, len(wanted), 500):
                for r in conn.execute(select(a.id, a.incident_id)
                                      .where(a.incident_id.in_(wanted[start:start + 500]))
                                      .order_by(a.id)):
                    members.setdefault(int(r.incident_id), []).append(int(r.id))
        return [Incident(r.id, r.title, r.status, r.merged_into, r.created_at,
                         tuple(members.get(int(r.id), ())), r.change_window_id) for r in rows]

    def incident_count(self, include_merged: bool = False) -> int:
        """How many incidents `incidents()` would list without a limit."""
        i = schema.incidents.c
        q = select(func.count()).select_from(schema.incidents)
        if not include_merged:
            q = q.where(i.status != "merged")
        with reading(self.engine) as conn:
            return int(conn.execute(q).scalar_one())

    def merge_incidents(self, target: int, sources: list[int], actor: str) -> None:
        """Move every alert of the source incidents into the target; sources become merged."""
        i, a = schema.incidents.c, schema.alerts.c
        with chain.writing(self.engine) as conn:
            for inc in (target, *sources):
                if conn.execute(select(i.id).where(i.id == inc)).first() is None:
                    raise AlertStoreError(f"incident {inc} does not exist")
            for src in sources:
                if src == target:
                    continue
                conn.execute(update(schema.alerts).where(a.incident_id == src)
                             .values(incident_id=target))
                conn.execute(update(schema.incidents).where(i.id == src)
                             .values(status="merged", merged_into=target))
                chain.append(conn, actor, "incident.merge", f"incident:{src}", {"into": target})

    def split_incident(self, alert_ids: list[int], actor: str, title: str = "") -> int:
        """Move the given alerts out of their incident(s) into a new one; returns its id."""
        if not alert_ids:
            raise AlertStoreError("split needs at least one alert id")
        with chain.writing(self.engine) as conn:
            rows = [self._row(conn, x) for x in alert_ids]
            new_id = int(conn.execute(schema.incidents.insert().values(
                title=title or f"split: {rows[0].rule_title}"[:300], status="open",
                merged_into=None, group_host=rows[0].host, group_source_ip=rows[0].source_ip,
                created_at=iso(now()))).inserted_primary_key[0])  # type: ignore[index]
            for r in rows:
                conn.execute(update(schema.alerts).where(schema.alerts.c.id == r.id)
                             .values(incident_id=new_id))
            chain.append(conn, actor, "incident.split", f"incident:{new_id}",
                         {"alerts": alert_ids, "from": sorted({r.incident_id for r in rows})})
        return new_id

    # ---- silences -------------------------------------------------------------------------

    def silence(self, alert_id: int, actor: str, comment: str = "",
                until: datetime | None = None) -> Silence:
        """Push a silence for an Alertmanager alert (its labels as matchers) to Alertmanager.

        SOC (Sigma) alerts are never silenced, whoever asks: an analyst closes them as
        false_positive or the rule gets an exception, so no detection is hidden by a label match.
        """
        with reading(self.engine) as conn:
            row = self._row(conn, alert_id)
        if row.source != "alertmanager":
            raise AlertStoreError(f"alert {alert_id} comes from {row.source}; only Alertmanager "
                                  "alerts can be silenced in Alertmanager (close a SOC alert as "
                                  "false_positive, or add an exception to its rule)")
        if row.status in [s.value for s in CLOSED_STATUSES]:
            raise AlertStoreError(f"alert {alert_id} is {row.status}: nothing to silence")
        if self.silencer is None:
            raise AlertStoreError("no Alertmanager configured (alertmanager.url in the config, "
                                  "or --alertmanager-url)")
        labels: dict[str, str] = json.loads(row.labels)
        matchers = [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                    for k, v in sorted(labels.items())]
        starts = now()
        ends = until or starts + self.config.silence_duration
        am_id = self.silencer.create(matchers, starts, ends, actor, comment)
        with chain.writing(self.engine) as conn:
            sid = int(conn.execute(schema.silences.insert().values(
                alert_id=alert_id, am_silence_id=am_id, matchers=json.dumps(matchers),
                created_by=actor, comment=comment, starts_at=iso(starts), ends_at=iso(ends),
                state="active")).inserted_primary_key[0])  # type: ignore[index]
            chain.append(conn, actor, "alert.silence", f"alert:{alert_id}",
                         {"silence": am_id, "ends_at": iso(ends), "comment": comment})
        return Silence(sid, alert_id, am_id, matchers, actor, comment, iso(starts), iso(ends),
                       "active")

    def silences(self, alert_id: int | None = None) -> list[Silence]:
        """Silences (of one alert, or all), newest first."""
        s = schema.silences.c
        q = select(schema.silences).order_by(s.id.desc())
        if alert_id is not None:
            q = q.where(s.alert_id == alert_id)
        with reading(self.engine) as conn:
            return [Silence(r.id, r.alert_id, r.am_silence_id, json.loads(r.matchers),
                            r.created_by, r.comment, r.starts_at, r.ends_at, r.state)
                    for r in conn.execute(q)]

    def expire_silences(self, alert_id: int, actor: str) -> int:
        """Expire the alert's active silences in Alertmanager (the silence ends with the alert)."""
        active = [x for x in self.silences(alert_id) if x.state == "active"]
        for sil in active:
            if self.silencer is not None:
                self.silencer.expire(sil.am_silence_id)
            with chain.writing(self.engine) as conn:
                conn.execute(update(schema.silences).where(schema.silences.c.id == sil.id)
                             .values(state="expired", ends_at=iso(now())))
                chain.append(conn, actor, "alert.unsilence", f"alert:{alert_id}",
                             {"silence": sil.am_silence_id})
        return len(active)

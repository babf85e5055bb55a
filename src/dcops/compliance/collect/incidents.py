"""Incident reporting times from the SOC's alert store data (no import of dcops.alerts).

The alert store groups alerts into incidents but keeps no "reported to the authority" time. The
closest facts it has are in its tamper-evident audit trail: the first action an analyst took on
any alert of the incident (acknowledge, investigate or close) stands for the first report, and the
moment the last alert was closed for the full report. The evidence says so (`BASIS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from dcops.compliance.collect.soc import IncidentReport

SERIOUS = frozenset({"critical", "high"})
FIRST_ACTIONS = frozenset({"alert.acknowledged", "alert.investigating", "alert.resolved",
                           "alert.false_positive"})
CLOSE_ACTIONS = frozenset({"alert.resolved", "alert.false_positive"})
BASIS = ("the alert store keeps no report times: first report = first acknowledgement/"
         "investigation/closure of one of the incident's alerts in the audit trail; full report "
         "= closure of its last alert; serious = an alert of severity high or critical")


class AlertRow(Protocol):
    """The fields of a stored alert this module reads."""

    @property
    def id(self) -> int: ...
    @property
    def severity(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def incident_id(self) -> int | None: ...


class IncidentRow(Protocol):
    """The fields of a stored incident this module reads."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def created_at(self) -> str: ...


class TrailRow(Protocol):
    """One audit-trail record: when, which action, on which target (``alert:12``)."""

    @property
    def ts(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target(self) -> str: ...


def parse_time(text: str) -> datetime:
    """A stored timestamp (ISO 8601, Z or offset, up to nanoseconds) as aware UTC."""
    head, dot, rest = text.strip().replace("Z", "+00:00").partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        head = f"{head}.{digits[:6]}{rest[len(digits):]}"
    moment = datetime.fromisoformat(head)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def incident_reports(incidents: Iterable[IncidentRow], alerts: Iterable[AlertRow],
                     trail: Iterable[TrailRow], since: datetime) -> list[IncidentReport]:
    """Serious incidents detected since `since`, with first and full report times."""
    by_incident: dict[int, list[AlertRow]] = {}
    for alert in alerts:
        if alert.incident_id is not None:
            by_incident.setdefault(alert.incident_id, []).append(alert)
    first: dict[int, datetime] = {}
    closed: dict[int, datetime] = {}
    for rec in trail:
        kind, _, ident = rec.target.partition(":")
        if kind != "alert" or not ident.isdigit():
            continue
        aid, ts = int(ident), parse_time(rec.ts)
        if rec.action in FIRST_ACTIONS and aid not in first:
            first[aid] = ts
        if rec.action in CLOSE_ACTIONS and aid not in closed:
            closed[aid] = ts
    out = []
    for inc in incidents:
        members = by_incident.get(inc.id, [])
        if not any(a.severity in SERIOUS for a in members):
            continue
        if all(a.status == "false_positive" for a in members):
            continue  # not an incident after all
        detected = min(parse_time(a.created_at) for a in members)
        if detected < since:
            continue
        acted = [first[a.id] for a in members if a.id in first]
        done = [closed[a.id] for a in members if a.id in closed]
        out.append(IncidentReport(
            f"INC-{inc.id}", detected, min(acted) if acted else None,
            max(done) if len(done) == len(members) else None, title=inc.title, basis=BASIS))
    return sorted(out, key=lambda r: r.detected)

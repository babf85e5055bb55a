"""Evidence from the SOC store through a Protocol (the alert store sits above compliance)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dcops.compliance.evidence import Evidence, utcnow
from dcops.model import SiteModel


@dataclass(frozen=True, slots=True)
class AlertTiming:
    """When an alert was created, acknowledged and resolved (None: not yet)."""

    created: datetime
    acked: datetime | None
    resolved: datetime | None


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """A serious incident and when it was reported (first within 24 h, full within 72 h)."""

    id: str
    detected: datetime
    first_report: datetime | None
    full_report: datetime | None
    title: str = ""
    basis: str = ""  # what stands for "reported" when the source keeps no report times

    def late(self, now: datetime, first_h: int = 24, full_h: int = 72) -> list[str]:
        """Which deadlines were missed (or have passed with no report yet)."""
        out = []
        for label, when, hours in (("first", self.first_report, first_h),
                                   ("full", self.full_report, full_h)):
            deadline = self.detected + timedelta(hours=hours)
            if (when is None and now > deadline) or (when is not None and when > deadline):
                out.append(f"{label} report after {hours} h")
        return out


class SocEvidenceSource(Protocol):
    """What compliance needs from the SOC; the CLI wires an adapter over the alert store."""

    description: str

    def last_events(self) -> dict[str, datetime]:
        """Host name -> time of its newest event."""

    def alert_timings(self, since: datetime) -> list[AlertTiming]:
        """Alerts created since `since`."""

    def incidents(self, since: datetime) -> list[IncidentReport] | None:
        """Serious incidents since `since`; None when the store keeps no report times."""


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


class SocCollector:
    """Coverage, silence per host, SLA percentiles and incident reporting from a source."""

    name = "soc"

    def __init__(self, source: SocEvidenceSource | None, *, window_days: int = 90) -> None:
        self.source = source
        self.window_days = window_days

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """No source: a note, and every SOC-decided control reports 'no evidence'."""
        if self.source is None:
            evidence.notes.append("soc: no SOC store available: monitoring controls have no "
                                  "automatic evidence (verdict: manual)")
            return
        now = utcnow()
        last = self.source.last_events()
        rid = evidence.record("soc", "store", self.source.description, "last event per host",
                              "\n".join(f"{h} {t.isoformat()}" for h, t in sorted(last.items())),
                              name="events")
        for host in model.hosts.values():
            seen = last.get(host.name) or last.get(host.address)
            if seen is not None:
                age = round((now - seen).total_seconds() / 3600, 2)
                evidence.fact(host.name, "soc.last_event_age_h", age, rid,
                              f"{host.name}: last event {seen.isoformat()}")
            else:
                evidence.fact(host.name, "soc.last_event_age_h", None, rid,
                              f"never: {host.name} has no event in the store")
        for system in model.systems.values():
            hosts = model.hosts_of_system(system.name)
            if hosts:
                fresh = [h for h in hosts if (t := last.get(h.name) or last.get(h.address))
                         and now - t <= timedelta(hours=24)]
                evidence.fact(f"system:{system.name}", "soc.coverage",
                              round(len(fresh) / len(hosts), 3), rid,
                              f"{len(fresh)}/{len(hosts)} hosts with events in 24 h")
        since = now - timedelta(days=self.window_days)
        timings = self.source.alert_timings(since)
        rid = evidence.record("soc", "store", self.source.description,
                              f"alerts since {since.date()}", f"{len(timings)} alerts",
                              name="alerts")
        acks = [(t.acked - t.created).total_seconds() / 60 for t in timings if t.acked]
        res = [(t.resolved - t.created).total_seconds() / 3600 for t in timings if t.resolved]
        if acks:
            evidence.fact("global", "soc.ack_p90_min", round(_p90(acks), 1), rid,
                          f"{len(acks)} acknowledged alerts in {self.window_days} days")
        if res:
            evidence.fact("global", "soc.resolve_p90_h", round(_p90(res), 2), rid,
                          f"{len(res)} resolved alerts in {self.window_days} days")
        incidents = self.source.incidents(since)
        if incidents is not None:
            lines = [f"{i.id} detected {i.detected.isoformat()} first "
                     f"{i.first_report.isoformat() if i.first_report else '-'} full "
                     f"{i.full_report.isoformat() if i.full_report else '-'} {i.title}".rstrip()
                     for i in incidents]
            basis = sorted({i.basis for i in incidents if i.basis})
            rid = evidence.record("soc", "store", self.source.description,
                                  f"serious incidents since {since.date()}",
                                  "\n".join([*lines, *basis]) or "no serious incident",
                                  name="incidents")
            late = {i.id: i.late(now) for i in incidents}
            late_ids = [k for k, v in late.items() if v]
            excerpt = "; ".join(f"{k}: {', '.join(v)}" for k, v in late.items() if v) or (
                f"{len(incidents)} serious incident(s), all reported within 24 h / 72 h")
            evidence.fact("global", "soc.incidents_reported_late", late_ids, rid,
                          excerpt + (f" ({basis[0]})" if basis else ""))

"""Time to acknowledge and to resolve per severity, against the SLA targets of the configuration.

Means and 90th percentiles (nearest rank, as SLA reports quote them) cover the alerts that were
acknowledged or resolved; breaches also count open alerts already past their target, and
``overdue`` is the open ones past either target (what needs attention now).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from dcops.alerts.config import SEVERITIES, AlertsConfig
from dcops.alerts.models import Alert
from dcops.alerts.timeutil import now, parse


@dataclass(frozen=True, slots=True)
class SlaRow:
    """SLA figures of one severity (seconds; None when nothing to measure)."""

    severity: str
    target_ack_s: float
    target_resolve_s: float
    alerts: int
    open: int
    mean_ack_s: float | None
    p90_ack_s: float | None
    mean_resolve_s: float | None
    p90_resolve_s: float | None
    ack_breaches: int
    resolve_breaches: int
    overdue: int


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least pct % of values at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def _elapsed(start: str, end: str | None, at: datetime) -> float:
    return ((parse(end) if end else at) - parse(start)).total_seconds()


def sla_report(alerts: list[Alert], config: AlertsConfig,
               at: datetime | None = None) -> list[SlaRow]:
    """One row per severity; an open alert past its target already counts as a breach."""
    at = at or now()
    rows = []
    for sev in SEVERITIES:
        target = config.sla[sev]
        mine = [a for a in alerts if a.severity == sev]
        acks = [_elapsed(a.created_at, a.acked_at, at) for a in mine if a.acked_at]
        resolves = [_elapsed(a.created_at, a.resolved_at, at) for a in mine if a.resolved_at]
        ack_limit, res_limit = target.ack.total_seconds(), target.resolve.total_seconds()
        late_ack = {a.id for a in mine if _elapsed(a.created_at, a.acked_at, at) > ack_limit}
        late_res = {a.id for a in mine if _elapsed(a.created_at, a.resolved_at, at) > res_limit}
        open_ids = {a.id for a in mine if not a.resolved_at}
        waiting_ack = {a.id for a in mine if not a.acked_at}
        rows.append(SlaRow(
            severity=sev, target_ack_s=ack_limit, target_resolve_s=res_limit, alerts=len(mine),
            open=len(open_ids),
            mean_ack_s=sum(acks) / len(acks) if acks else None,
            p90_ack_s=percentile(acks, 90),
            mean_resolve_s=sum(resolves) / len(resolves) if resolves else None,
            p90_resolve_s=percentile(resolves, 90),
            ack_breaches=len(late_ack), resolve_breaches=len(late_res),
            overdue=len(open_ids & ((late_ack & waiting_ack) | late_res)),
        ))
    return rows


def fmt_seconds(value: float | None) -> str:
    """``1h05m``, ``42s``, or ``-``."""
    if value is None:
        return "-"
    s = int(value)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{sec:02d}s" if m else f"{sec}s"

"""Time to acknowledge and to resolve per severity, against the SLA targets of the configuration.

Means and 90th percentiles (nearest rank, as SLA reports quote them) cover the alerts that were
acknowledged or resolved; breaches also count open alerts already past their target, and
``overdue`` is the open ones past either target (what needs attention now).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dcops.alerts.config import SEVERITIES, AlertsConfig
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


class Timed(Protocol):
    """What the SLA needs of an alert (an Alert, or the store's column-only SlaInput)."""

    @property
    def id(self) -> int: ...
    @property
    def severity(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def acked_at(self) -> str | None: ...
    @property
    def resolved_at(self) -> str | None: ...


def sla_report(alerts: Sequence[Timed], config: AlertsConfig,
               at: datetime | None = None) -> list[SlaRow]:
    """One row per severity; an open alert past its target already counts as a breach.

    Each alert's times are parsed once (at 100,000 alerts the console's /sla page spent its time
    parsing the same strings four times)."""
    at = at or now()
    # severity -> [(acked, ack seconds or to now, resolved, resolve seconds or to now)]
    by_sev: dict[str, list[tuple[bool, float, bool, float]]] = {s: [] for s in SEVERITIES}
    for a in alerts:
        if a.severity not in by_sev:
            continue
        created = parse(a.created_at)
        ack = ((parse(a.acked_at) if a.acked_at else at) - created).total_seconds()
        res = ((parse(a.resolved_at) if a.resolved_at else at) - created).total_seconds()
        by_sev[a.severity].append((bool(a.acked_at), ack, bool(a.resolved_at), res))
    return sla_from_times(by_sev, config)


def sla_from_times(by_sev: dict[str, list[tuple[bool, float, bool, float]]],
                   config: AlertsConfig) -> list[SlaRow]:
    """The rows from each severity's (acked, ack seconds or to now, resolved, resolve seconds or
    to now) per alert: `sla_report` and the database path (`dcops.alerts.slasql`) share it."""
    rows = []
    for sev in SEVERITIES:
        target = config.sla[sev]
        mine = by_sev.get(sev, [])
        acks = [t for acked, t, _, _ in mine if acked]
        resolves = [t for _, _, resolved, t in mine if resolved]
        ack_limit, res_limit = target.ack.total_seconds(), target.resolve.total_seconds()
        overdue = sum(1 for acked, ack, resolved, res in mine
                      if not resolved and ((ack > ack_limit and not acked) or res > res_limit))
        rows.append(SlaRow(
            severity=sev, target_ack_s=ack_limit, target_resolve_s=res_limit, alerts=len(mine),
            open=sum(1 for _, _, resolved, _ in mine if not resolved),
            mean_ack_s=sum(acks) / len(acks) if acks else None,
            p90_ack_s=percentile(acks, 90),
            mean_resolve_s=sum(resolves) / len(resolves) if resolves else None,
            p90_resolve_s=percentile(resolves, 90),
            ack_breaches=sum(1 for _, ack, _, _ in mine if ack > ack_limit),
            resolve_breaches=sum(1 for _, _, _, res in mine if res > res_limit),
            overdue=overdue,
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

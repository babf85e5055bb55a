"""What the alert store hands out: alerts, notes, incidents, silences, filters, lifecycle rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Lifecycle states (trạng thái) of an alert."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


OPEN_STATUSES = (Status.NEW, Status.ACKNOWLEDGED, Status.INVESTIGATING)
CLOSED_STATUSES = (Status.RESOLVED, Status.FALSE_POSITIVE)

TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.NEW: (Status.ACKNOWLEDGED, Status.INVESTIGATING, Status.RESOLVED, Status.FALSE_POSITIVE),
    Status.ACKNOWLEDGED: (Status.INVESTIGATING, Status.RESOLVED, Status.FALSE_POSITIVE),
    Status.INVESTIGATING: (Status.RESOLVED, Status.FALSE_POSITIVE),
    Status.RESOLVED: (),
    Status.FALSE_POSITIVE: (),
}

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}

# Prometheus/Alertmanager severities mapped onto the Sigma scale of the one queue.
PROMETHEUS_SEVERITY = {"critical": "critical", "warning": "medium", "info": "informational",
                       "error": "high", "page": "critical"}


def storable(text: str) -> str:
    """`text` as every store can keep it: a NUL (which PostgreSQL's text type refuses, failing the
    whole transaction it is in) becomes U+FFFD, visibly; everything else is kept as sent."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def normalise_severity(value: str) -> str:
    """Sigma levels stay; Prometheus ones (warning, info) map onto them; unknown becomes medium."""
    v = (value or "").strip().lower()
    if v in SEVERITY_ORDER:
        return v
    return PROMETHEUS_SEVERITY.get(v, "medium")


@dataclass(slots=True)
class Alert:
    """One deduplicated alert in the queue."""

    id: int
    source: str
    rule_id: str
    rule_title: str
    severity: str
    status: str
    dedup_key: str
    site: str
    system: str
    system_level: int | None
    host: str
    source_ip: str
    first_seen: str
    last_seen: str
    count: int
    tags: list[str]
    labels: dict[str, str]
    description: str
    fingerprint: str
    assignee: str
    incident_id: int | None
    created_at: str
    acked_at: str | None
    resolved_at: str | None
    change_window_id: int | None = None  # expected change / thay đổi dự kiến (dcops change)
    event_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Note:
    """An analyst's note on an alert."""

    id: int
    alert_id: int
    author: str
    created_at: str
    text: str


@dataclass(frozen=True, slots=True)
class Incident:
    """Related alerts grouped (same host or same source address); can be merged and split."""

    id: int
    title: str
    status: str
    merged_into: int | None
    created_at: str
    alert_ids: tuple[int, ...] = ()
    change_window_id: int | None = None  # the incident of a change window's expected alerts


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence pushed to Alertmanager for an alert; expired when the alert closes."""

    id: int
    alert_id: int
    am_silence_id: str
    matchers: list[dict[str, Any]]
    created_by: str
    comment: str
    starts_at: str
    ends_at: str
    state: str


@dataclass(slots=True)
class AlertFilter:
    """Queue filters; empty fields do not filter. Times are stored-format ISO strings."""

    severity: list[str] = field(default_factory=list)
    site: list[str] = field(default_factory=list)
    system: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    assignee: str = ""
    host: str = ""
    incident_id: int | None = None
    since: str = ""
    until: str = ""
    text: str = ""
    limit: int = 500
    offset: int = 0  # rows skipped before `limit` (pages of the console's queue)
    ids: list[int] = field(default_factory=list)  # only these alerts (empty: no id filter)

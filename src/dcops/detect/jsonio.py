"""Events as JSON lines in, detections as JSON lines out (`dcops detect scan`, benchmarks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from dcops.errors import DetectionError
from dcops.model.event import Detection, Event, LogSource

_RESERVED = {"id", "timestamp", "@timestamp", "source", "logsource", "fields", "raw"}
_LS_CACHE: dict[tuple[str, str, str], LogSource] = {}


def _logsource(d: Any) -> LogSource:
    if not isinstance(d, dict):
        return LogSource()
    key = (d.get("product") or "", d.get("service") or "", d.get("category") or "")
    ls = _LS_CACHE.get(key)
    if ls is None:
        ls = _LS_CACHE.setdefault(key, LogSource(*key))
    return ls


_TIME_CACHE: dict[str, datetime] = {}  # log bursts repeat the same second


def _time(v: Any) -> datetime:
    if isinstance(v, str) and v:
        got = _TIME_CACHE.get(v)
        if got is None:
            dt = datetime.fromisoformat(v)  # Python 3.11 reads "Z" and offsets
            got = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
            if len(_TIME_CACHE) >= 4096:
                _TIME_CACHE.clear()
            _TIME_CACHE[v] = got
        return got
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v, UTC)
    return datetime.fromtimestamp(0, UTC)


def event_from_obj(obj: dict[str, Any], line: bytes = b"") -> Event:
    """An Event from its JSON form: {id, timestamp, source, logsource, fields, raw}.

    Without a `fields` object every other top-level key is a field; without an id the id is a
    hash of the line, so the same line is always the same event.
    """
    fields = obj.get("fields")
    if not isinstance(fields, dict):
        fields = {k: v for k, v in obj.items() if k not in _RESERVED}
    eid = obj.get("id") or Event.make_id("jsonl", line)
    return Event(
        id=str(eid),
        timestamp=_time(obj.get("timestamp") or obj.get("@timestamp")),
        source=str(obj.get("source") or "jsonl"),
        logsource=_logsource(obj.get("logsource")),
        fields=fields,
        raw=str(obj.get("raw") or ""),
    )


def event_from_line(line: bytes, where: str = "") -> Event:
    """Parse one JSON line into an Event; the error names the line."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DetectionError(f"{where}: not a JSON object: {exc}") from exc
    if not isinstance(obj, dict):
        raise DetectionError(f"{where}: expected a JSON object per line")
    return event_from_obj(obj, line)


def event_to_obj(ev: Event) -> dict[str, Any]:
    """The JSON form of an Event (inverse of event_from_obj)."""
    ls = ev.logsource
    return {
        "id": ev.id,
        "timestamp": ev.timestamp.isoformat(),
        "source": ev.source,
        "logsource": {"product": ls.product, "service": ls.service, "category": ls.category},
        "fields": ev.fields,
        "raw": ev.raw,
    }


def detection_to_obj(d: Detection) -> dict[str, Any]:
    """The JSON form of a Detection, with its stable id."""
    return {
        "id": d.id,
        "rule_id": d.rule_id,
        "rule_title": d.rule_title,
        "severity": d.severity,
        "timestamp": d.timestamp.isoformat(),
        "event_ids": list(d.event_ids),
        "key": d.key,
        "host": d.host,
        "tags": list(d.tags),
        "fields": d.fields,
    }


def detection_line(d: Detection) -> bytes:
    """One detection as a JSON line (no newline)."""
    return orjson.dumps(detection_to_obj(d), default=str)

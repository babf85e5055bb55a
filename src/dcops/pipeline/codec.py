"""Event <-> bytes for the spool (orjson; datetimes as ISO 8601)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from dcops.model.event import Event, LogSource, json_safe

# The last timestamp's ISO form and the JSON form of the logsources seen: the events of one
# read share their time and a few logsources (bounded: cleared when it grows past _LS_MAX).
_last_ts: list[tuple[datetime | None, str]] = [(None, "")]  # one pair, replaced whole
_LS_JSON: dict[LogSource, list[Any]] = {}
_LS_MAX = 4096


def _iso(ts: datetime) -> str:
    last, iso = _last_ts[0]
    if ts is not last:
        iso = ts.isoformat()
        _last_ts[0] = (ts, iso)
    return iso


def _ls_json(ls: LogSource) -> list[Any]:
    v = _LS_JSON.get(ls)
    if v is None:
        if len(_LS_JSON) >= _LS_MAX:
            _LS_JSON.clear()
        v = _LS_JSON[ls] = ls.to_list()
    return v


def encode(e: Event) -> bytes:
    """Serialise an event; values JSON cannot hold as they are (integers beyond 64 bits, lone
    surrogates, non-string keys, deep nesting) are kept in their `json_safe` form."""
    doc: dict[str, Any] = {
        "id": e.id,
        "ts": _iso(e.timestamp),
        "src": e.source,
        "ls": _ls_json(e.logsource),
        "f": e.fields,
        "raw": e.raw,
        "p": e.parsed,
    }
    try:
        return orjson.dumps(doc, default=str)
    except (orjson.JSONEncodeError, TypeError, ValueError):
        return orjson.dumps(json_safe(doc), default=str)


def decode(b: bytes) -> Event:
    """Deserialise an event."""
    d = orjson.loads(b)
    return Event(
        id=d["id"],
        timestamp=datetime.fromisoformat(d["ts"]),
        source=d["src"],
        logsource=LogSource.from_list(d["ls"]),
        fields=d["f"],
        raw=d["raw"],
        parsed=d["p"],
    )

"""Event <-> bytes for the spool (orjson; datetimes as ISO 8601)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from dcops.model.event import Event, LogSource, json_safe


def encode(e: Event) -> bytes:
    """Serialise an event; values JSON cannot hold as they are (integers beyond 64 bits, lone
    surrogates, non-string keys, deep nesting) are kept in their `json_safe` form."""
    ls = e.logsource
    doc: dict[str, Any] = {
        "id": e.id,
        "ts": e.timestamp.isoformat(),
        "src": e.source,
        "ls": ls.to_list(),
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

"""Event <-> bytes for the spool (orjson; datetimes as ISO 8601)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from dcops.model.event import Event, LogSource


def encode(e: Event) -> bytes:
    """Serialise an event."""
    ls = e.logsource
    doc: dict[str, Any] = {
        "id": e.id,
        "ts": e.timestamp.isoformat(),
        "src": e.source,
        "ls": [ls.product, ls.service, ls.category],
        "f": e.fields,
        "raw": e.raw,
        "p": e.parsed,
    }
    return orjson.dumps(doc, default=str)


def decode(b: bytes) -> Event:
    """Deserialise an event."""
    d = orjson.loads(b)
    return Event(
        id=d["id"],
        timestamp=datetime.fromisoformat(d["ts"]),
        source=d["src"],
        logsource=LogSource(*d["ls"]),
        fields=d["f"],
        raw=d["raw"],
        parsed=d["p"],
    )

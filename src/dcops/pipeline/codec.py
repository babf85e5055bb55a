"""Event <-> bytes for the spool (orjson; datetimes as ISO 8601)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from dcops.model.event import Event, LogSource, json_safe

# The ISO form and epoch seconds of the timestamps seen, by identity (the syslog parser hands
# out one datetime per distinct timestamp text, so a busy intake asks about few objects) and the
# JSON form of the logsources seen. Bounded: cleared when grown past _TS_MAX / _LS_MAX. Keyed by
# id() with the object held in the value, so an id cannot be reused while its entry exists; by
# identity rather than equality because equal datetimes with other UTC offsets print otherwise.
_TS_FORMS: dict[int, tuple[datetime, str, float]] = {}
_TS_MAX = 4096
_LS_JSON: dict[LogSource, list[Any]] = {}
_LS_MAX = 4096


def ts_forms(ts: datetime) -> tuple[datetime, str, float]:
    """(`ts`, its ISO 8601 form, its POSIX time), computed once per timestamp object."""
    v = _TS_FORMS.get(id(ts))
    if v is None:
        if len(_TS_FORMS) >= _TS_MAX:
            _TS_FORMS.clear()
        v = _TS_FORMS[id(ts)] = (ts, ts.isoformat(), float(ts.timestamp()))
    return v


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
        "ts": ts_forms(e.timestamp)[1],
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


# what each key of an encoded event holds: a message of another shape on a bus subject (anyone
# allowed to publish there) must fail here, where the reader keeps it raw, not in the engine
_SHAPE = (("id", str), ("ts", str), ("src", str), ("ls", list), ("f", dict), ("raw", str),
          ("p", bool))


def _shape_error(d: Any) -> str:
    """What is wrong with a decoded document, "" when it has the shape `encode` writes."""
    if d.__class__ is not dict:
        return f"expected an event object, got {type(d).__name__}"
    for k, t in _SHAPE:
        v = d.get(k)
        if v.__class__ is not t:
            return f"event {k!r}: expected {t.__name__}, got {type(v).__name__}"
    if not all(x.__class__ is str for x in d["ls"][:3]):
        return "event 'ls': expected [product, service, category] as text"
    return ""


def decode(b: bytes) -> Event:
    """Deserialise an event; ValueError names a key that does not hold what `encode` writes."""
    d = orjson.loads(b)
    why = _shape_error(d)
    if why:
        raise ValueError(why)
    return Event(
        id=d["id"],
        timestamp=datetime.fromisoformat(d["ts"]),
        source=d["src"],
        logsource=LogSource.from_list(d["ls"]),
        fields=d["f"],
        raw=d["raw"],
        parsed=d["p"],
    )

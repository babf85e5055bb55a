"""Per-event matching context: field lookup with a lowercase cache, reused across events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KEYWORD_FIELD = "\x00keywords"  # virtual field: what unnamed (keyword) detection items search
_MISSING = object()

FieldValue = str | tuple[str, ...] | None
TIMESTAMP_FIELDS = ("@timestamp", "timestamp", "event.created")


def local_zone(name: str = "Asia/Ho_Chi_Minh") -> tzinfo:
    """The zone timestamp-part modifiers (hour, day...) read time in; Vietnam by default."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone(timedelta(hours=7), "ICT")


def to_text(value: Any) -> str:
    """The string form Sigma string matching sees for a field value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Ctx:
    """One event's fields, with lazily computed lowercase strings (one object per engine)."""

    __slots__ = ("_low", "_txt", "fields", "raw", "ts", "tz")

    def __init__(self, tz: tzinfo | None = None) -> None:
        self.fields: dict[str, Any] = {}
        self.raw = ""
        self.ts: datetime | None = None
        self.tz: tzinfo = tz or local_zone()
        self._low: dict[str, FieldValue] = {}
        self._txt: dict[str, FieldValue] = {}

    def reset(self, fields: dict[str, Any], raw: str, ts: datetime | None = None) -> None:
        """Point the context at a new event."""
        self.fields = fields
        self.raw = raw
        self.ts = ts
        if self._low:
            self._low.clear()
        if self._txt:
            self._txt.clear()

    def value(self, name: str) -> Any:
        """The raw field value, or None when the event lacks it."""
        if name == KEYWORD_FIELD:
            msg = self.fields.get("message")
            return msg if msg is not None else (self.raw or None)
        return self.fields.get(name)

    def text(self, name: str) -> FieldValue:
        """The field as a string (a tuple of strings for a list), None when absent or null."""
        got = self._txt.get(name, _MISSING)
        if got is not _MISSING:
            return got  # type: ignore[return-value]
        v = self.value(name)
        out: FieldValue
        if v is None:
            out = None
        elif isinstance(v, str):
            out = v
        elif isinstance(v, list | tuple):
            out = tuple(to_text(x) for x in v if x is not None)
        else:
            out = to_text(v)
        self._txt[name] = out
        return out

    def low(self, name: str) -> FieldValue:
        """The field as a lowercase string (or tuple of them), None when absent."""
        got = self._low.get(name, _MISSING)
        if got is not _MISSING:
            return got  # type: ignore[return-value]
        raw = self.fields.get(name) if name != KEYWORD_FIELD else self.value(name)
        if raw.__class__ is str:  # the hot path: a plain string field
            low: str = raw.lower()
            self._low[name] = low
            return low
        if raw is None:
            self._low[name] = None
            return None
        t = self.text(name)
        out: FieldValue
        if t is None:
            out = None
        elif isinstance(t, str):
            out = t.lower()
        else:
            out = tuple(x.lower() for x in t)
        self._low[name] = out
        return out

    def time(self, name: str) -> datetime | None:
        """A timestamp field (the event's own time for @timestamp) in the local zone."""
        v = self.fields.get(name)
        dt: datetime | None = None
        if isinstance(v, datetime):
            dt = v
        elif isinstance(v, str):
            try:
                dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                dt = None
        elif v is None and name in TIMESTAMP_FIELDS:
            dt = self.ts
        if dt is None:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(self.tz)

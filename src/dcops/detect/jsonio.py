"""Events as JSON lines in, detections as JSON lines out (`dcops detect scan`, benchmarks)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from dcops.errors import DetectionError
from dcops.model.event import Detection, Event, LogSource

log = logging.getLogger("dcops.detect")
_RESERVED = {"id", "timestamp", "@timestamp", "source", "logsource", "fields", "raw"}
_LS_KEYS = ("product", "service", "category")
# logsource as read (product, service, category: text or None) -> LogSource; bounded, since
# every distinct value a sender invents would otherwise stay
_LS_CACHE: dict[tuple[Any, Any, Any], LogSource] = {}
_LS_CACHE_MAX = 1024
_ALSO_MAX = 16  # further logsources of one event (a Wazuh alert about a Windows event has one)


def _logsource(d: Any) -> LogSource:
    """The LogSource of an event's `logsource` object; DetectionError names a part that is not
    text (a list or a number would otherwise reach the rule index)."""
    if d.__class__ is not dict:
        if d is None:
            return _EMPTY_LS
        if isinstance(d, dict):  # a dict subclass
            return _logsource(dict(d))
        raise DetectionError(f"logsource: expected an object, got {_kind(d)}")
    # _LS_KEYS one by one: tuple(map(d.get, _LS_KEYS)) cost 2,100 instructions more per event
    key = (d.get("product"), d.get("service"), d.get("category"))
    also = d.get("also")  # further logsources of the same event (rare)
    if also:
        return _with_also(_ls_key(key), also)
    try:
        ls = _LS_CACHE.get(key)
    except TypeError:  # a list or an object among them
        ls = None
    if ls is None:
        ls = LogSource(*_ls_key(key))
        if len(_LS_CACHE) >= _LS_CACHE_MAX:
            _LS_CACHE.clear()
        _LS_CACHE[key] = ls  # text or None: hashable once checked
    return ls


def _ls_key(key: tuple[Any, ...]) -> tuple[str, str, str]:
    """The three logsource parts as text ("" for an absent or null one), or DetectionError."""
    for name, v in zip(_LS_KEYS, key, strict=True):
        if v is not None and v.__class__ is not str:
            raise DetectionError(f"logsource.{name}: expected text, got {_kind(v)}")
    return tuple(v or "" for v in key)  # type: ignore[return-value]


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number",
            float: "a number", str: "text"}.get(v.__class__, type(v).__name__)


def _with_also(key: tuple[str, str, str], also: Any) -> LogSource:
    """A logsource with further ones (`also`: at most _ALSO_MAX objects of three text parts; an
    `also` inside them is not read, so no nesting depth reaches the stack)."""
    if not isinstance(also, list):
        raise DetectionError(f"logsource.also: expected a list of logsources, got {_kind(also)}")
    if len(also) > _ALSO_MAX:
        raise DetectionError(f"logsource.also: at most {_ALSO_MAX} logsources, got {len(also)}")
    extra = []
    for a in also:
        if not isinstance(a, dict):
            raise DetectionError(f"logsource.also: expected objects, got {_kind(a)}")
        extra.append(LogSource(*_ls_key(tuple(map(a.get, _LS_KEYS)))))
    return LogSource(*key, also=tuple(extra))


_EMPTY_LS = LogSource()
# the last timestamp text read and its datetime: a burst of log lines repeats the same second,
# and one comparison costs less than a dict that misses when every line has its own second
# (one tuple, replaced whole: a reader in another thread never sees one text with another time)
_EPOCH = datetime.fromtimestamp(0, UTC)
_LAST: tuple[str | None, datetime] = (None, _EPOCH)  # None: never equal to a text read


def _time(v: Any) -> datetime:
    """The datetime of a timestamp value (callers compare with _LAST first): ISO 8601 text or
    POSIX seconds, the epoch when there is none; DetectionError names any other value."""
    global _LAST  # noqa: PLW0603 - the one-entry memo, replaced whole
    try:
        if v.__class__ is str and v:
            dt = datetime.fromisoformat(v)  # Python 3.11 reads "Z" and offsets
            got = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
            _LAST = (v, got)
            return got
        if isinstance(v, str) and v:  # a str subclass
            return _time(str(v))
        if isinstance(v, int | float) and not isinstance(v, bool):
            return datetime.fromtimestamp(v, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise DetectionError(
            f"timestamp {str(v)[:80]!r}: expected ISO 8601 text or POSIX seconds ({exc})"
        ) from None
    if v is None or v == "":  # absent or empty: no time given
        return _EPOCH
    raise DetectionError(f"timestamp: expected ISO 8601 text or POSIX seconds, got {_kind(v)}")


def py_event_from_obj(obj: dict[str, Any], line: bytes = b"") -> Event:
    """An Event from its JSON form: {id, timestamp, source, logsource, fields, raw}.

    Without a `fields` object every other top-level key is a field; without an id the id is a
    hash of the line, so the same line is always the same event. `event_from_obj` is this
    function, or the compiled reader (`_fastread`) that hands it every case but the common one.
    """
    global _LAST  # noqa: PLW0603 - the one-entry memo, replaced whole
    g = obj.get  # six calls: 1,000 instructions fewer than unpacking a map of them
    fields, eid, ts, source, raw, lsd = (
        g("fields"), g("id"), g("timestamp"), g("source"), g("raw"), g("logsource"))
    if fields.__class__ is not dict and not isinstance(fields, dict):
        fields = {k: v for k, v in obj.items() if k not in _RESERVED}
    if eid.__class__ is not str or not eid:
        eid = str(eid or Event.make_id("jsonl", line))
    if not ts:
        ts = obj.get("@timestamp")
    last = _LAST  # read once: another thread may replace it, never one half of it
    if ts.__class__ is not str or not ts:
        dt = _time(ts)
    elif ts == last[0]:
        dt = last[1]
    else:  # _time's text case inline: a call per event costs more than the parse
        try:
            dt = datetime.fromisoformat(ts)
        except ValueError:
            dt = _time(ts)  # raises, naming the value
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        _LAST = (ts, dt)
    return Event(
        eid,
        dt,
        source if source.__class__ is str and source else str(source or "jsonl"),
        _logsource(lsd),
        fields,
        raw if raw.__class__ is str else str(raw or ""),
    )


def _aware(dt: datetime) -> datetime:
    """A naive timestamp read as UTC (the compiled reader's rare case)."""
    return dt.replace(tzinfo=UTC)


_EVENT_SLOTS = ("id", "timestamp", "source", "logsource", "fields", "raw", "parsed")


def _compiled_reader() -> Callable[..., Event] | None:
    """The compiled reader (`_fastread.c`, built by `make setup`), set up to hand every case
    but the common one to `py_event_from_obj`; None when it is not built or DCOPS_DETECT_PURE
    is set (the same events either way: tests/unit/detect/test_fastread.py)."""
    if os.environ.get("DCOPS_DETECT_PURE"):
        return None
    try:
        from dcops.detect import _fastread
    except ImportError:
        log.warning("dcops.detect._fastread is not built (make setup builds it): the detection "
                    "reader runs in Python, about 20 %% slower")
        return None
    slots = tuple(f.name for f in dataclasses.fields(Event))
    if slots != _EVENT_SLOTS:  # the C reader sets exactly these, `parsed` to True
        log.warning("dcops.detect._fastread: Event has the fields %s, the compiled reader knows "
                    "%s: the detection reader runs in Python", slots, _EVENT_SLOTS)
        return None
    try:  # checks that each field is a writable object slot
        _fastread.setup(Event, py_event_from_obj, _LS_CACHE, _EMPTY_LS, datetime.fromisoformat,
                        _aware)
    except TypeError as exc:
        log.warning("%s: the detection reader runs in Python", exc)
        return None
    return _fastread.event_from_obj


event_from_obj: Callable[..., Event] = _compiled_reader() or py_event_from_obj


def event_from_line(line: bytes, where: str = "") -> Event:
    """Parse one JSON line into an Event; the error names the line."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DetectionError(f"{where}: not a JSON object: {exc}") from exc
    if not isinstance(obj, dict):
        raise DetectionError(f"{where}: expected a JSON object per line")
    try:
        return event_from_obj(obj, line)
    except DetectionError as exc:
        raise DetectionError(f"{where}: {exc}") from None


class BadLines:
    """Malformed input lines: each one counted, the first `shown` reported, none fatal.

    A scan goes on past a bad line (the rest of the file still matters to the analyst) and
    `check()` fails the run at its end when any line was skipped, naming the first.
    """

    def __init__(self, report: Callable[[str], object] | None = None, shown: int = 20) -> None:
        self.count = 0
        self.first = ""
        self._report = report
        self._shown = shown

    def add(self, message: str) -> None:
        """Count one malformed line (message: `FILE:LINE: what was wrong`)."""
        self.count += 1
        if not self.first:
            self.first = message
        if self._report is None:
            return
        if self.count <= self._shown:
            self._report(message)
        elif self.count == self._shown + 1:
            self._report(f"... further malformed lines are counted, not printed "
                         f"(shown {self._shown})")

    def check(self) -> None:
        """Raise when any line was skipped (after the detections of the others were written)."""
        if self.count:
            raise DetectionError(
                f"{self.count} malformed line(s) skipped, expected one JSON object per line "
                f"(first: {self.first})"
            )


def events_from_lines(
    numbered: Iterable[tuple[int, bytes]], where: str, bad: Callable[[str], object]
) -> list[Event]:
    """The events of (line number, line) pairs; blank lines skipped, a malformed one to `bad`."""
    out = []
    for n, line in numbered:
        if not line.strip():
            continue
        try:
            out.append(event_from_line(line, f"{where}:{n}"))
        except DetectionError as exc:
            bad(str(exc))
    return out


def event_to_obj(ev: Event) -> dict[str, Any]:
    """The JSON form of an Event (inverse of event_from_obj)."""
    ls = ev.logsource
    return {
        "id": ev.id,
        "timestamp": ev.timestamp.isoformat(),
        "source": ev.source,
        "logsource": _ls_obj(ls),
        "fields": ev.fields,
        "raw": ev.raw,
    }


def _ls_obj(ls: LogSource) -> dict[str, Any]:
    out: dict[str, Any] = {"product": ls.product, "service": ls.service, "category": ls.category}
    if ls.also:
        out["also"] = [_ls_obj(a) for a in ls.also]
    return out


def detection_to_obj(d: Detection) -> dict[str, Any]:
    """The JSON form of a Detection, with its stable id (tuples are JSON arrays to orjson)."""
    return {
        "id": d.id,
        "rule_id": d.rule_id,
        "rule_title": d.rule_title,
        "severity": d.severity,
        "timestamp": d.timestamp.isoformat(),
        "event_ids": d.event_ids,
        "key": d.key,
        "host": d.host,
        "tags": d.tags,
        "fields": d.fields,
    }


def detection_line(d: Detection) -> bytes:
    """One detection as a JSON line (no newline)."""
    return orjson.dumps(detection_to_obj(d), default=str)

"""The compiled reader (`_fastread.c`) reads every object as the Python reader does.

It takes the common shape itself and hands every other one to `py_event_from_obj`, so the
same Event (or the same DetectionError) must come out of both for any object at all.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import pickle
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from detect_helpers import make_event, rule
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.detect import Engine, jsonio
from dcops.detect.jsonio import py_event_from_obj
from dcops.errors import DetectionError
from dcops.model.event import Event, LogSource


def test_the_compiled_reader_is_built_and_used() -> None:
    """`make setup` builds it; a machine without it must fail here, not quietly run slower."""
    from dcops.detect import _fastread

    assert jsonio.event_from_obj is _fastread.event_from_obj


def outcome(fn: Any, obj: Any, line: bytes = b"x") -> tuple[str, Any]:
    try:
        ev = fn(copy.deepcopy(obj), line)
    except DetectionError as exc:
        return ("error", str(exc))
    assert type(ev) is Event
    assert type(ev.timestamp) is datetime
    assert ev.timestamp.tzinfo is not None
    return ("event", (ev, ev.timestamp.utcoffset()))


def same(obj: Any, line: bytes = b"x") -> tuple[str, Any]:
    got = outcome(jsonio.event_from_obj, obj, line)
    want = outcome(py_event_from_obj, obj, line)
    assert got == want, obj
    return got


COMMON = {"id": "e1", "timestamp": "2026-11-20T00:00:01Z",
          "logsource": {"product": "linux", "service": "sshd"},
          "fields": {"User": "root", "message": "Accepted password for root"}}


@pytest.mark.parametrize("change", [
    {},
    {"timestamp": "2026-11-20T00:00:01+07:00"},
    {"timestamp": "2026-11-20T00:00:01"},  # naive: read as UTC
    {"timestamp": "2026-11-20 00:00:01.123456Z"},
    {"timestamp": ""}, {"timestamp": None}, {"timestamp": 0}, {"timestamp": 1.5e9},
    {"timestamp": 2**64}, {"timestamp": "yesterday"}, {"timestamp": "9" * 10_000},
    {"timestamp": ["2026"]}, {"timestamp": True},
    {"timestamp": "", "@timestamp": "2026-11-20T01:00:00Z"},
    {"timestamp": None, "@timestamp": 7},
    {"id": ""}, {"id": None}, {"id": 7}, {"id": ["a"]},
    {"source": "syslog"}, {"source": ""}, {"source": None}, {"source": 3}, {"source": {}},
    {"raw": "<13>x"}, {"raw": ""}, {"raw": None}, {"raw": 5}, {"raw": ["x"]},
    {"fields": None}, {"fields": []}, {"fields": "x"},
    {"logsource": None}, {"logsource": "linux"}, {"logsource": []}, {"logsource": {}},
    {"logsource": {"product": ["linux"]}}, {"logsource": {"product": 1}},
    {"logsource": {"product": "linux", "service": "sshd", "also": []}},
    {"logsource": {"product": "windows", "also": [{"product": "linux", "service": "sshd"}]}},
    {"logsource": {"product": "windows", "also": "linux"}},
    {"logsource": {"product": "windows", "also": None}},
    {"logsource": {"product": "Linux", "service": "sshd", "category": None}},
])
def test_every_shape_reads_the_same(change: dict[str, Any]) -> None:
    obj = {**COMMON, **change}
    same(obj)
    same(obj)  # again: the logsource and timestamp memos now hold it
    without = {k: v for k, v in obj.items() if k not in change or change[k] is not None}
    same(without)


def test_a_missing_key_reads_the_same() -> None:
    for key in COMMON:
        same({k: v for k, v in COMMON.items() if k != key})
    same({})
    kind, _ = same({"User": "root"})  # no `fields` object: the other keys are the fields
    assert kind == "event"


def test_not_a_dict_reads_the_same() -> None:
    class Sub(dict[str, Any]):
        pass

    same(Sub(COMMON))
    same({**COMMON, "fields": Sub(User="x"), "logsource": Sub(product="linux")})
    with pytest.raises(AttributeError):  # as the Python reader: an object has no .get
        jsonio.event_from_obj(["a"], b"")
    with pytest.raises(TypeError):
        jsonio.event_from_obj()
    with pytest.raises(TypeError):
        jsonio.event_from_obj({}, b"", 3)


def test_the_event_is_a_whole_event() -> None:
    jsonio.event_from_obj(COMMON, b"")  # the logsource is in the cache: the compiled path
    ev = jsonio.event_from_obj(COMMON, b"")
    assert ev.parsed is True
    assert ev.logsource is jsonio.event_from_obj(COMMON).logsource  # one LogSource, shared
    assert ev.fields is COMMON["fields"]  # as the Python reader: the parsed object itself
    assert pickle.loads(pickle.dumps(ev)) == ev
    assert copy.deepcopy(ev) == ev
    assert repr(ev).startswith("Event(id='e1', timestamp=datetime.datetime(2026, 11, 20, 0, 0, 1")
    ev.raw = "changed"  # a normal, writable Event
    assert ev.raw == "changed"
    assert ev.fields in gc.get_referents(ev)  # the collector sees what it holds


def test_only_other_shapes_are_handed_to_python() -> None:
    """The common shape is read in C (else there is no speed to have), any other in Python."""
    from dcops.detect import _fastread

    handed: list[Any] = []

    def slow(obj: Any, line: bytes = b"") -> Event:
        handed.append(obj)
        return py_event_from_obj(obj, line)

    _fastread.setup(Event, slow, jsonio._LS_CACHE, jsonio._EMPTY_LS, datetime.fromisoformat,
                    jsonio._aware)
    try:
        first = {**COMMON, "logsource": {"product": "fastread-test"}}
        _fastread.event_from_obj(first)  # a new logsource: Python reads it and caches it
        assert handed == [first]
        for change in ({}, {"timestamp": "2026-11-20T00:00:09+07:00"}, {"source": "syslog"},
                       {"raw": "x"}, {"logsource": None}, {"timestamp": "2026-11-20T00:00:09"}):
            _fastread.event_from_obj({**first, **change})
        assert len(handed) == 1
        for change in ({"id": 1}, {"source": 1}, {"fields": None}, {"timestamp": 1}):
            _fastread.event_from_obj({**first, **change})
        assert len(handed) == 5
    finally:
        assert jsonio._compiled_reader() is not None  # set up as jsonio does


def test_the_timestamp_memo_never_pairs_a_text_with_another_time() -> None:
    a = jsonio.event_from_obj({**COMMON, "timestamp": "2026-11-20T00:00:05Z"})
    b = jsonio.event_from_obj({**COMMON, "timestamp": "2026-11-20T00:00:05+07:00"})
    c = jsonio.event_from_obj({**COMMON, "timestamp": "2026-11-20T00:00:05Z"})
    assert a.timestamp == c.timestamp == datetime(2026, 11, 20, 0, 0, 5, tzinfo=UTC)
    assert b.timestamp == datetime(2026, 11, 19, 17, 0, 5, tzinfo=UTC)


def test_no_reference_is_leaked_or_lost() -> None:
    """Refcounts of what the reader touches are back where they were once its events are gone,
    on the compiled path, the handed-over path and the error path."""
    fields = {"User": "root"}
    eid = "leak-check-id"
    objs = [
        {**COMMON, "id": eid, "fields": fields},  # compiled
        {**COMMON, "id": eid, "fields": fields, "source": 5},  # handed over
        {**COMMON, "id": eid, "fields": fields, "timestamp": "not a time"},  # error
        {**COMMON, "id": eid, "fields": fields, "logsource": {"product": ["x"]}},  # error
    ]
    ls = jsonio.event_from_obj(objs[0]).logsource
    watched = [fields, eid, ls, objs[0]["timestamp"], jsonio.py_event_from_obj]
    before = [sys.getrefcount(x) for x in watched]
    for _ in range(1000):
        for obj in objs:
            with contextlib.suppress(DetectionError):
                jsonio.event_from_obj(obj, b"line")
    assert [sys.getrefcount(x) for x in watched] == before


def test_the_bench_shapes_read_the_same() -> None:
    """Linux and Windows bench events, as lines: the same Events from both readers."""
    bench_dir = str(Path(__file__).resolve().parents[3] / "scripts/bench")
    sys.path.insert(0, bench_dir)
    try:
        import detect_throughput as bench
    finally:
        sys.path.remove(bench_dir)
    rng = random.Random(18)
    for make in (bench._benign, bench._benign_windows):
        for i in range(400):
            line = orjson.dumps(make(rng, i))
            assert same(orjson.loads(line), line)[0] == "event"


text = st.one_of(st.text(max_size=8), st.sampled_from(["", "linux", "sshd", "security"]))
value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text,
                  st.lists(text, max_size=2), st.dictionaries(text, text, max_size=2))
stamps = st.one_of(value, st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(
    lambda d: d.isoformat()), st.sampled_from(["2026-11-20T00:00:01Z", "2026-02-30T00:00:00"]))
logsources = st.one_of(value, st.fixed_dictionaries({}, optional={
    "product": st.one_of(text, value), "service": text, "category": text,
    "also": st.one_of(value, st.lists(st.fixed_dictionaries({}, optional={"product": text}),
                                      max_size=2))}))
objs = st.fixed_dictionaries({}, optional={
    "id": st.one_of(text, value), "timestamp": stamps, "@timestamp": stamps, "source": value,
    "raw": value, "logsource": logsources, "fields": st.one_of(value, st.dictionaries(
        text, value, max_size=3)), "User": value})


@settings(max_examples=400, deadline=None)
@given(objs)
def test_any_object_reads_the_same(obj: dict[str, Any]) -> None:
    same(obj)
    same(obj)


def test_pure_python_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_DETECT_PURE", "1")
    assert jsonio._compiled_reader() is None
    monkeypatch.delenv("DCOPS_DETECT_PURE")
    assert jsonio._compiled_reader() is not None
    assert isinstance(jsonio.event_from_obj(COMMON).logsource, LogSource)


def test_the_compiled_column_gates_the_same_rules(
    engine_from: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`memo_or` (a memoised column in C) lets the same rules run as the Python columns, for
    text, numbers, booleans, nulls, lists, objects and absent values, cold and warm."""
    from dcops.detect import index

    assert index._memo_or is not None
    body = ("  sel:\n    Image|endswith: '/nc'\n    DestinationPort: 4444\n"
            "  flag:\n    Initiated: 'true'\n  user:\n    User|startswith: 'adm'\n"
            "  condition: sel or flag or user")
    compiled = engine_from(rule(body))
    monkeypatch.setattr(index, "_memo_or", None)
    python = engine_from(rule(body))
    rng = random.Random(7)
    values: list[Any] = ["/usr/bin/nc", "/bin/ls", "ADMIN", "adm", "", "x" * 300, 4444, 4443,
                         True, False, 1, 0, 1.5, None, ["/bin/x", "/usr/bin/nc"], [4444],
                         {"a": 1}, [[1]], "true", "TRUE", "İstanbul"]

    class Sub(dict[str, Any]):
        pass

    for _round in range(3):
        evs = []
        for i in range(300):
            f = {k: rng.choice(values) for k in ("Image", "DestinationPort", "Initiated", "User")
                 if rng.random() < 0.7}
            evs.append(make_event(Sub(f) if i % 50 == 0 else f))
        monkeypatch.setattr(index, "_memo_or", None)
        want = [len(c) for c in python._prefilter(evs)]
        monkeypatch.undo()
        assert index._memo_or is not None
        got = [len(c) for c in compiled._prefilter(evs)]
        assert got == want
        assert any(got) and not all(got)


def test_an_event_of_other_fields_keeps_the_python_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C reader sets Event's seven slots: a changed Event must not get half an event."""
    monkeypatch.setattr(jsonio, "_EVENT_SLOTS", ("id", "timestamp"))
    assert jsonio._compiled_reader() is None
    monkeypatch.undo()
    assert jsonio._compiled_reader() is not None

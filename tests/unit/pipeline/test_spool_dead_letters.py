"""Poison never blocks the spool: unstorable values are kept faithfully or dead-lettered."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcops.model.event import Event, LogSource, json_safe
from dcops.pipeline import SqliteSpool
from dcops.pipeline.codec import decode, encode
from dcops.pipeline.spool import SpoolMetrics

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def ev(i: int, **fields: object) -> Event:
    return Event(id=f"e{i}", timestamp=T0, source="snmp_trap", logsource=LogSource("snmp"),
                 fields=dict(fields), raw=f"raw {i}")


def test_json_safe_keeps_values_faithfully() -> None:
    got = json_safe({"big": 1 << 64, "neg": -(1 << 70), "ok": 5, 7: "key", "s": "a\udc80b",
                     "b": b"\x00\xff", "nan": float("nan"), "nested": [{"x": 1 << 64}]})
    assert got == {"big": "18446744073709551616", "neg": str(-(1 << 70)), "ok": 5, "7": "key",
                   "s": "a\ufffdb", "b": "00ff", "nan": "nan",
                   "nested": [{"x": "18446744073709551616"}]}


def test_json_safe_bounds_nesting() -> None:
    deep: list[object] = []
    cur = deep
    for _ in range(5000):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    out = json_safe(deep)
    depth = 0
    while isinstance(out, list) and out:
        out, depth = out[0], depth + 1
    assert depth <= 65 and isinstance(out, str) and "nested deeper" in out


def test_codec_roundtrips_an_integer_beyond_64_bits() -> None:
    e = ev(1, **{"snmp.varbinds": {"1.3.6.1.4.1.99999.1.1": 1 << 64}})
    back = decode(encode(e))
    assert back.fields["snmp.varbinds"]["1.3.6.1.4.1.99999.1.1"] == str(1 << 64)


def test_poison_in_a_batch_never_blocks_the_others(tmp_path: Path) -> None:
    s = SqliteSpool(tmp_path / "spool.db")
    s.publish([ev(1), ev(2, big=1 << 64, text="nul\x00 and \udc80"), ev(3)])
    assert s.count() == 3 and s.dead_letter_count() == 0
    assert [e.id for _, e in s.fetch_after(0, 10)] == ["e1", "e2", "e3"]


class _Unencodable:
    def __str__(self) -> str:
        raise RuntimeError("cannot render")

    def __repr__(self) -> str:
        raise RuntimeError("cannot render")


def test_an_unencodable_event_is_dead_lettered_with_its_raw_input(tmp_path: Path) -> None:
    s = SqliteSpool(tmp_path / "spool.db")
    s.publish([ev(1), ev(2, weird=_Unencodable()), ev(3)])
    assert [e.id for _, e in s.fetch_after(0, 10)] == ["e1", "e3"]
    (dl,) = s.dead_letters()
    assert dl["event_id"] == "e2" and dl["source"] == "snmp_trap" and dl["raw"] == b"raw 2"
    assert "cannot render" in str(dl["reason"])
    families = {m.name: m for m in SpoolMetrics(s).collect()}
    assert families["dcops_spool_dead_letters"].samples[0].value == 1


def test_a_row_sqlite_refuses_is_bisected_out(tmp_path: Path) -> None:
    s = SqliteSpool(tmp_path / "spool.db")
    bad = Event(id="e5", timestamp=T0, source="t", logsource=LogSource(), raw="r5")
    object.__setattr__(bad, "timestamp", _BadTime())
    s.publish([ev(i) for i in range(1, 5)] + [bad] + [ev(i) for i in range(6, 10)])
    assert s.count() == 8 and s.dead_letter_count() == 1


class _BadTime:
    def timestamp(self) -> float:
        raise OverflowError("timestamp out of range")

    def isoformat(self) -> str:
        return "bad"


def test_an_unavailable_database_raises_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    s = SqliteSpool(path)
    s._db.execute("PRAGMA busy_timeout=50")  # make the lock wait short
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError):
            s.publish([ev(1)])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    s.publish([ev(1)])
    assert s.count() == 1 and s.dead_letter_count() == 0


def test_event_ids_accept_lone_surrogates() -> None:
    """A Wazuh alert id such as "\\ud800" must not make the event unidentifiable."""
    assert Event.make_id("wazuh", "\ud800") != Event.make_id("wazuh", "\ud801")

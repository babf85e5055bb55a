"""The spool's read API for the console and compliance: read-only, by id or by time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dcops.model.event import Event, LogSource
from dcops.pipeline import SqliteSpool
from dcops.pipeline.reader import SpoolReader

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def ev(i: int) -> Event:
    return Event(id=f"e{i}", timestamp=T0 + timedelta(seconds=i), source="syslog",
                 logsource=LogSource("linux", "sshd"), fields={"host.name": f"h{i % 3}"},
                 raw=f"raw {i}")


def test_by_ids_in_chunks_once_each_and_only_known_ids(tmp_path: Path) -> None:
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.publish([ev(i) for i in range(1200)])
    spool.close()
    reader = SpoolReader(tmp_path / "spool.db", max_ids=1000)
    wanted = [f"e{i}" for i in range(1100)] + ["e3", "nope"]
    got = reader.by_ids(wanted)
    assert sorted(e.id for e in got) == sorted(f"e{i}" for i in range(1000))  # capped, once
    assert {e.raw for e in got if e.id == "e7"} == {"raw 7"}
    assert reader.by_ids([]) == []


def test_since_reads_by_event_time_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = SqliteSpool(path)
    spool.publish([ev(1), ev(2)])
    spool.close()
    before = path.stat().st_mtime_ns
    assert [e.id for e in SpoolReader(path).since(T0)] == ["e1", "e2"]
    assert [e.id for e in SpoolReader(path).since(T0 + timedelta(seconds=2))] == ["e2"]
    assert list(SpoolReader(path).since(T0 + timedelta(hours=1))) == []
    time.sleep(0.01)
    assert path.stat().st_mtime_ns == before  # read-only: no write, no migration


def test_missing_or_foreign_file_holds_no_events(tmp_path: Path) -> None:
    assert SpoolReader(tmp_path / "absent.db").by_ids(["e1"]) == []
    assert list(SpoolReader(tmp_path / "absent.db").since(T0)) == []
    assert not (tmp_path / "absent.db").exists()  # never created by a reader
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert SpoolReader(junk).by_ids(["e1"]) == []
    assert list(SpoolReader(junk).since(T0)) == []

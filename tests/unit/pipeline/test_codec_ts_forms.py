"""The codec's timestamp forms (ISO text and POSIX time) computed once per timestamp object,
and the spool's page size for new files."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson

from dcops.model.event import Event, LogSource
from dcops.pipeline import codec
from dcops.pipeline.codec import decode, encode, ts_forms
from dcops.pipeline.spool import SqliteSpool, encode_rows


def _event(ts: datetime, n: int = 0) -> Event:
    return Event(id=f"e{n}", timestamp=ts, source="syslog", logsource=LogSource("linux", "sshd"))


def test_equal_instants_with_other_offsets_keep_their_own_text() -> None:
    utc = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
    hanoi = utc.astimezone(timezone(timedelta(hours=7)))
    assert utc == hanoi  # equal datetimes: a cache keyed by equality would print one for both
    assert ts_forms(utc)[1:] == ("2026-12-03T05:00:00+00:00", utc.timestamp())
    assert ts_forms(hanoi)[1:] == ("2026-12-03T12:00:00+07:00", utc.timestamp())
    rows, _ = encode_rows([_event(utc, 1), _event(hanoi, 2)])
    assert [decode(b).timestamp.isoformat() for _, _, b in rows] == [
        "2026-12-03T05:00:00+00:00", "2026-12-03T12:00:00+07:00"]
    assert [ts for _, ts, _ in rows] == [utc.timestamp()] * 2


def test_forms_are_computed_once_per_object_and_the_cache_stays_bounded() -> None:
    ts = datetime(2026, 12, 3, 5, 0, 1, tzinfo=UTC)
    assert ts_forms(ts) is ts_forms(ts)
    held = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
            for i in range(codec._TS_MAX * 3)]
    for t in held:
        assert ts_forms(t)[1] == t.isoformat()
        assert len(codec._TS_FORMS) <= codec._TS_MAX
    assert encode(_event(held[0])) == encode(_event(held[0]))


def test_a_naive_timestamp_is_encoded_as_before() -> None:
    naive = datetime(2026, 12, 3, 5, 0)
    rows, poison = encode_rows([_event(naive)])
    assert not poison and rows[0][1] == naive.timestamp()
    assert decode(rows[0][2]).timestamp == naive


def test_a_new_spool_gets_16_kib_pages_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    new = SqliteSpool(tmp_path / "new.db")
    new.publish([_event(datetime(2026, 12, 3, tzinfo=UTC))])
    assert new._db.execute("PRAGMA page_size").fetchone()[0] == 16384
    new.close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # a spool file made before: 4 KiB pages, WAL already on
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    sp = SqliteSpool(old)
    sp.publish([_event(datetime(2026, 12, 3, tzinfo=UTC))])
    assert sp._db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert sp.count() == 1
    sp.close()


def test_a_message_of_another_shape_is_refused_by_name_and_kept_raw_by_the_bus() -> None:
    import pytest

    from dcops.pipeline.jetstream.session import decode_or_keep

    good = orjson.loads(encode(_event(datetime(2026, 12, 3, tzinfo=UTC))))
    bad = [({**good, "f": []}, "event 'f': expected dict, got list"),
           ({**good, "ls": "linux"}, "event 'ls': expected list, got str"),
           ({**good, "ls": [["linux"]]}, "event 'ls': expected [product, service, category]"),
           ({**good, "id": 7}, "event 'id': expected str, got int"),
           ({**good, "p": 1}, "event 'p': expected bool, got int"),
           ([good], "expected an event object, got list")]
    for doc, why in bad:
        body = orjson.dumps(doc)
        with pytest.raises(ValueError, match=re.escape(why)):
            decode(body)
        kept = decode_or_keep(41, body)  # once, an `f` list reached the engine and stopped it
        assert (kept.id, kept.parsed, kept.fields) == ("bus-undecodable-41", False, {})
    assert decode(orjson.dumps(good)).fields == {}

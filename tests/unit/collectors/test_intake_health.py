"""deliver(): bisection around poison, dead letters, retry when the sink is down; the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dcops.collectors.health import IntakeMetrics, clip, deliver
from dcops.model.event import Event, LogSource
from dcops.pipeline import SqliteSpool

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def evs(n: int, poison: Sequence[int] = ()) -> list[Event]:
    return [Event(id=f"{'p' if i in poison else 'e'}{i}", timestamp=T0, source="syslog_tcp",
                  logsource=LogSource(), raw=f"line {i}") for i in range(n)]


class PickySink:
    """Refuses any batch holding an id starting with 'p' (a poison event); records the rest."""

    def __init__(self, dead: bool = False, down: bool = False) -> None:
        self.stored: list[str] = []
        self.dead: list[tuple[str, bytes, str, str]] = []
        self.can_dead_letter, self.down = dead, down
        self.calls = 0

    def publish(self, events: Sequence[Event]) -> None:
        self.calls += 1
        if self.down or any(e.id.startswith("p") for e in events):
            raise ValueError("cannot store")
        self.stored += [e.id for e in events]

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        if not self.can_dead_letter or self.down:
            raise OSError("dead-letter table unavailable")
        self.dead.append((source, raw, reason, event_id))


def test_poison_is_bisected_out_and_dead_lettered_in_order() -> None:
    stats = IntakeMetrics().source("syslog_tcp")
    sink = PickySink(dead=True)
    assert deliver(sink, evs(64, poison=[5, 40]), stats) == []
    assert sink.stored == [f"e{i}" for i in range(64) if i not in (5, 40)]
    assert [d[3] for d in sink.dead] == ["p5", "p40"] and sink.dead[0][1] == b"line 5"
    assert stats.stored_total == 62 and stats.drops["dead_letter"] == 2
    assert sink.calls < 30  # bisection, not one call per event


def test_a_sink_that_is_down_keeps_everything_for_retry() -> None:
    stats = IntakeMetrics().source("logfile")
    sink = PickySink(dead=True, down=True)
    batch = evs(100)
    assert deliver(sink, batch, stats) == batch
    assert stats.stored_total == 0 and stats.sink_errors_total > 0
    assert sink.calls < 15  # gives up as soon as one event cannot even be dead-lettered


def test_a_locked_database_is_not_bisected(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    spool = SqliteSpool(path)
    spool._db.execute("PRAGMA busy_timeout=20")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    stats = IntakeMetrics().source("syslog_tcp")
    try:
        batch = evs(64)
        assert deliver(spool, batch, stats) == batch
        assert stats.sink_errors_total == 1  # one try, no bisection against a down sink
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert deliver(spool, evs(64), stats) == [] and spool.count() == 64
    assert spool.dead_letter_count() == 0


def test_without_dead_letters_poison_is_returned_not_lost() -> None:
    stats = IntakeMetrics().source("wazuh")
    sink = PickySink(dead=False)
    left = deliver(sink, evs(8, poison=[3]), stats)
    assert left[0].id == "p3" and "e0" in sink.stored


def test_deliver_to_a_real_spool(tmp_path: Path) -> None:
    spool = SqliteSpool(tmp_path / "s.db")
    stats = IntakeMetrics().source("snmp_trap")
    batch = evs(10)
    batch[4].fields["v"] = 1 << 80
    assert deliver(spool, batch, stats) == [] and spool.count() == 10
    assert stats.stored_total == 10


def test_metrics_exposition_and_reasons() -> None:
    m = IntakeMetrics()
    s = m.source("syslog_udp")
    s.received(5)
    s.dropped("queue_full", 2)
    s.truncated()
    s.queue_depth, s.queue_capacity = (lambda: 3), 10
    s.oldest_unstored = lambda: None
    with pytest.raises(ValueError, match="drop reason"):
        s.dropped("because")
    reg = CollectorRegistry(auto_describe=False)
    reg.register(m)
    text = generate_latest(reg).decode()
    assert 'dcops_intake_received_total{source="syslog_udp"} 5.0' in text
    assert 'dcops_intake_dropped_total{reason="queue_full",source="syslog_udp"} 2.0' in text
    assert 'dcops_intake_dropped_total{reason="auth",source="syslog_udp"} 0.0' in text
    assert 'dcops_intake_queue_depth{source="syslog_udp"} 3.0' in text
    assert 'dcops_intake_oldest_unstored_age_seconds{source="syslog_udp"} 0.0' in text


def test_clip() -> None:
    assert clip(b"abcdef", 4) == (b"abcd", True)
    assert clip(b"abc", 4) == (b"abc", False)
    assert clip(b"abc", 0) == (b"abc", False)

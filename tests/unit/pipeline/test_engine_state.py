"""Snapshot/restore of the real engine's correlation windows gives the same detections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dcops.model.event import Event, LogSource
from dcops.pipeline.engine_state import SnapshottingEngine, supports_snapshot

RULES = Path(__file__).resolve().parents[3] / "soc_rules"


def failures(start: int, n: int) -> list[Event]:
    t0 = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    return [
        Event(
            f"e{i}",
            t0 + timedelta(seconds=i),
            "t",
            LogSource("linux", "sshd"),
            {
                "event.action": "ssh_invalid_user",
                "event.outcome": "failure",
                "source.ip": "203.0.113.7",
                "host.name": "web1",
                "user.name": f"u{i}",
                "message": f"Invalid user u{i} from 203.0.113.7 port {i}",
            },
        )
        for i in range(start, start + n)
    ]


def engine() -> SnapshottingEngine:
    from dcops.detect.engine import Engine

    e = Engine.from_dirs([RULES])
    # The CLI falls back to a lossy replay when this is false: it must hold for the real engine.
    assert supports_snapshot(e), "dcops.detect.Engine's correlation state changed shape"
    return SnapshottingEngine(e)


def test_restored_engine_fires_like_an_uninterrupted_one() -> None:
    whole = engine()
    expected = {d.id for d in whole.process(failures(0, 25))}
    first = engine()
    got = {d.id for d in first.process(failures(0, 7))}
    state = first.snapshot()
    second = engine()
    second.restore(state)
    got |= {d.id for d in second.process(failures(7, 18))}
    assert got == expected
    fresh = engine()  # what a restart without the snapshot would have produced
    naive = {d.id for d in first.process([])} | {d.id for d in fresh.process(failures(7, 18))}
    assert naive - expected  # windows realigned: a different (duplicate) brute-force detection


def test_snapshot_carries_open_windows() -> None:
    e = engine()
    e.process(failures(0, 3))
    e2 = engine()
    e2.restore(e.snapshot())
    wins = [w for st in e2.engine.correlations for w in st.groups.values()]
    assert any(len(w) == 3 for w in wins)

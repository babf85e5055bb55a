"""Store and forward: the outbox keeps everything while the bus is down and drains it once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dcops.errors import ConfigError
from dcops.model.event import Event, LogSource
from dcops.pipeline import SqliteSpool
from dcops.pipeline.forward import StoreAndForward

T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def ev(i: int) -> Event:
    return Event(id=f"e{i}", timestamp=T0 + timedelta(seconds=i), source="t",
                 logsource=LogSource("linux", "sshd"), fields={"n": i}, raw=f"line {i}")


class Link:
    """A real spool behind a switch: while `down`, connecting and publishing fail like an
    unreachable NATS cluster (ConnectionError)."""

    def __init__(self, spool: SqliteSpool) -> None:
        self.spool, self.down, self.connects, self.published = spool, False, 0, 0

    def connect(self) -> Link:
        self.connects += 1
        if self.down:
            raise ConnectionError("bus down")
        return self

    def publish(self, events: Sequence[Event]) -> None:
        if self.down:
            raise ConnectionError("bus down")
        self.spool.publish(events)
        self.published += len(events)

    def close(self) -> None:
        pass


def _pair(tmp_path: Path) -> tuple[Link, StoreAndForward]:
    link = Link(SqliteSpool(tmp_path / "bus.db"))
    saf = StoreAndForward(SqliteSpool(tmp_path / "outbox.db"), link.connect, batch=100,
                          retry=0.01, idle=0.01)
    return link, saf


def test_events_wait_in_the_outbox_while_the_bus_is_down_then_arrive_once(
        tmp_path: Path) -> None:
    link, saf = _pair(tmp_path)
    link.down = True
    saf.start()
    saf.publish([ev(i) for i in range(500)])  # accepted although the bus is down
    time.sleep(0.2)
    assert link.spool.count() == 0 and saf.pending() == 500
    assert not saf.stats.connected and saf.stats.failures >= 2
    link.down = False
    deadline = time.monotonic() + 10
    while saf.pending() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert saf.close(1.0) == 0
    assert link.spool.count() == 500
    assert [e.id for _, e in link.spool.fetch("check", 1000)] == [f"e{i}" for i in range(500)]
    assert saf.stats.forwarded == 500


def test_a_bus_lost_mid_stream_loses_nothing_and_order_is_kept(tmp_path: Path) -> None:
    link, saf = _pair(tmp_path)
    saf.publish([ev(i) for i in range(250)])
    assert saf.step() == 100
    link.down = True
    assert saf.step() == 0 and saf.pending() == 150
    saf.publish([ev(i) for i in range(250, 300)])
    link.down = False
    while saf.step():
        pass
    assert [e.id for _, e in link.spool.fetch("c", 1000)] == [f"e{i}" for i in range(300)]
    assert saf.pending() == 0


def test_a_forward_repeated_after_a_crash_is_stored_once(tmp_path: Path) -> None:
    """SIGKILL between the bus's ack and the outbox cursor: the batch goes again, same ids."""
    link, saf = _pair(tmp_path)
    saf.publish([ev(i) for i in range(100)])
    link.publish([ev(i) for i in range(100)])  # the bus had them; the cursor did not move
    assert saf.step() == 100
    assert link.spool.count() == 100 and link.published == 200


def test_the_outbox_survives_a_restart_of_the_collector(tmp_path: Path) -> None:
    link, saf = _pair(tmp_path)
    link.down = True
    saf.publish([ev(i) for i in range(40)])
    assert saf.close(0.1) == 40  # stopped with the bus down: they stay
    link.down = False
    saf2 = StoreAndForward(SqliteSpool(tmp_path / "outbox.db"), link.connect, batch=100)
    while saf2.step():
        pass
    assert link.spool.count() == 40 and saf2.pending() == 0


def test_a_configuration_error_stops_the_forwarder_and_is_raised(tmp_path: Path) -> None:
    def refuse() -> Link:
        raise ConfigError("bus: permission denied for user collector")

    saf = StoreAndForward(SqliteSpool(tmp_path / "outbox.db"), refuse, retry=0.01, idle=0.01)
    saf.start()
    saf.publish([ev(1)])  # still accepted: kept in the outbox
    deadline = time.monotonic() + 5
    while saf._failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ConfigError, match="permission denied"):
        saf.check()
    assert saf.close() == 1


def test_metrics_show_the_outbox_growing_while_the_bus_is_down(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from dcops.pipeline.forward import ForwardMetrics

    link, saf = _pair(tmp_path)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ForwardMetrics(saf, SqliteSpool(saf.path)))
    link.down = True
    saf.publish([ev(i) for i in range(30)])
    assert saf.step() == 0
    text = generate_latest(registry).decode()
    assert "dcops_bus_outbox_pending 30.0" in text and "dcops_bus_connected 0.0" in text
    assert "dcops_bus_forward_failures_total 1.0" in text
    link.down = False
    while saf.step():
        pass
    text = generate_latest(registry).decode()
    assert "dcops_bus_outbox_pending 0.0" in text and "dcops_bus_connected 1.0" in text
    assert "dcops_bus_forwarded_total 30.0" in text

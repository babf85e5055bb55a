"""The TCP workers' counters add up with the main process's in /metrics (--workers N)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dcops.collectors.health import IntakeMetrics
from dcops.collectors.syslog import SyslogConfig, SyslogServer
from dcops.collectors.syslog_net import SyslogMetrics
from dcops.collectors.syslog_workers import MergedIntake, WorkerCounters, snapshot


class _Sink:
    def publish(self, events: Any) -> None:
        pass


def samples(collector: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in collector.collect() for s in fam.samples}


def worker_snapshot(received: int, malformed: int, framing: int, conns: int) -> dict[str, Any]:
    server = SyslogServer(_Sink(), SyslogConfig(udp_port=None), IntakeMetrics())  # type: ignore[arg-type]
    st = server.intake("syslog_tcp")
    st.received(received)
    st.stored(received - 1)
    st.dropped("malformed", malformed)
    st.truncated(2)
    server.stats.update({"received": received, "framing_errors": framing})
    snap = snapshot(server)
    snap["conns"] = {"syslog_tcp": conns}  # (a server that never started has none open)
    return snap


def test_intake_counters_are_the_sum_of_every_process() -> None:
    local = IntakeMetrics()
    local.source("syslog_udp").received(5)
    local.source("syslog_tcp").received(1)
    workers = WorkerCounters()
    workers.update(0, worker_snapshot(100, 3, 1, 4))
    workers.update(1, worker_snapshot(50, 0, 2, 3))
    workers.update(1, worker_snapshot(60, 1, 2, 3))  # the newest snapshot replaces the older
    got = samples(MergedIntake(local, workers))
    assert got[("dcops_intake_received_total", (("source", "syslog_tcp"),))] == 161
    assert got[("dcops_intake_received_total", (("source", "syslog_udp"),))] == 5
    assert got[("dcops_intake_stored_total", (("source", "syslog_tcp"),))] == 158
    assert got[("dcops_intake_truncated_total", (("source", "syslog_tcp"),))] == 4
    assert got[("dcops_intake_dropped_total",
                (("reason", "malformed"), ("source", "syslog_tcp")))] == 4


def test_connections_and_framing_errors_of_the_workers_are_added() -> None:
    main = SyslogServer(_Sink(), SyslogConfig(udp_port=None), IntakeMetrics())  # type: ignore[arg-type]
    main.stats.update({"framing_errors": 1})
    workers = WorkerCounters()
    workers.update(0, worker_snapshot(10, 0, 2, 4))
    workers.update(1, worker_snapshot(10, 0, 3, 5))
    got = samples(SyslogMetrics(main, workers))
    assert got[("dcops_syslog_framing_errors_total", ())] == 6
    assert got[("dcops_syslog_connections", (("source", "syslog_tcp"),))] == 9
    assert workers.stats() == Counter({"received": 20, "framing_errors": 5})
    alone = samples(SyslogMetrics(main))
    assert alone[("dcops_syslog_framing_errors_total", ())] == 1

"""CLI: `dcops detect run`: the detection runner as a process of its own, on any bus.

The bus is the SQLite spool (default `<state>/spool.db`) or NATS JetStream (`--bus nats://...`):
events after the consumer's cursor go through the Sigma engine to the alert store, the cursor
moves only after the store took the alerts, correlation windows are checkpointed on the bus.
A bus that stops answering is waited for (the runner resumes at its cursor).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dcops.cli.bus import BusOpt, nats_config, spool_path
from dcops.cli.collect_events import DbOpt, RulesOpt, SiteModelOpt, detector
from dcops.cli.collect_tail import metrics_hostport
from dcops.errors import ConfigError

if TYPE_CHECKING:
    from dcops.collectors.snmp.service import MetricsServer
    from dcops.pipeline.detect_metrics import DetectMetrics

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def open_detect_bus(bus: str | None) -> Any:
    """The bus a detection runner reads: the SQLite spool, or a JetStream connection."""
    from dcops.pipeline import SqliteSpool, is_nats

    if bus is not None and is_nats(bus.strip()):
        from dcops.pipeline.jetstream import JetStreamBus

        return JetStreamBus(nats_config(bus.strip()))
    return SqliteSpool(spool_path(bus, None))


def run(
    bus: BusOpt = None,
    rules: RulesOpt = None,
    db: DbOpt = None,
    inventory: SiteModelOpt = None,
    consumer: Annotated[str, typer.Option(
        help="Name of this runner's cursor on the bus (runners with different names each "
        "see every event).")] = "detect",
    batch: Annotated[int, typer.Option(help="Events per engine batch.", min=1)] = 1000,
    once: Annotated[bool, typer.Option(
        help="Detect what the bus holds now, then exit.")] = False,
    worker_group: Annotated[str | None, typer.Option(
        "--worker-group", metavar="GROUP",
        help="Share the work with the other runners of GROUP: the events are split into "
        "--partitions, each owned by one runner at a time. On a nats:// bus with "
        "partitions=S each partition reads only the events of its hosts (S subjects per site "
        "and source, crc32(host) % S); on the SQLite spool every partition reads the whole "
        "log and keeps its share (failover only). docs/scale.md.")] = None,
    partitions: Annotated[int | None, typer.Option(
        help="Partitions of the worker group (the same for all its runners). On a nats:// "
        "bus it must equal the bus's partitions= (the default); on the spool default 4.",
        min=1, max=1024)] = None,
    cross_host_rules: Annotated[str, typer.Option(
        "--cross-host-rules", metavar="refuse|skip",
        help="A worker group on a partitioned nats:// bus runs a correlation only when it "
        "groups by a host field (host.name, Computer, ...): refuse (default) stops at start "
        "naming the others; skip runs without them, with a warning (run them in one plain "
        "`dcops detect run`).")] = "refuse",
    lease_ttl: Annotated[float, typer.Option(
        "--lease-ttl", help="Seconds before a silent runner's partitions go to another.",
        min=1.0)] = 15.0,
    worker_id: Annotated[str | None, typer.Option(
        "--worker-id", help="This runner's name in the group (default HOST-PID).")] = None,
    metrics_listen: Annotated[str | None, typer.Option(
        "--metrics-listen", metavar="HOST:PORT",
        help="Serve Prometheus metrics on HOST:PORT (e.g. 127.0.0.1:9722): events, "
        "detections, bus errors, lag; for a worker group its partitions and stray events "
        "(labels group, worker). Alerts: monitoring/prometheus/rules/"
        "dcops-detect.rules.yml.")] = None,
) -> None:
    """Run the Sigma rules over the bus's events into the alert store, until SIGTERM."""
    if not consumer.strip():
        raise ConfigError("--consumer: empty (expected a name such as detect)")
    if worker_group is not None and not _NAME.match(worker_group):
        raise ConfigError(f"--worker-group {worker_group!r}: expected letters, digits, - or _")
    from dcops.collectors.heap import batch_gc
    from dcops.pipeline.workers import CROSS_HOST_CHOICES

    if cross_host_rules not in CROSS_HOST_CHOICES:  # before the rules load (Worker checks again)
        raise ConfigError(f"--cross-host-rules {cross_host_rules!r}: expected "
                          f"{' or '.join(CROSS_HOST_CHOICES)}")
    listen = metrics_hostport(metrics_listen) if metrics_listen else None
    runnable, sink, store, window = detector(rules, db, inventory)
    batch_gc()  # the loaded rules out of every collection; batches not walked every 700 objects
    b = open_detect_bus(bus)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if worker_group is not None:
        if partitions is None:
            partitions = int(getattr(getattr(b, "config", None), "partitions", 0) or 4)
        try:
            _run_group(b, runnable, sink, worker_group, partitions, lease_ttl,
                       worker_id or f"{socket.gethostname()}-{os.getpid()}", batch, once, stop,
                       cross_host_rules, listen)
        finally:
            b.close()
            store.close()
        return
    try:
        _run_plain(b, runnable, sink, consumer, batch, window, once, stop, listen)
    finally:
        b.close()
        store.close()


def _run_plain(b: Any, runnable: Any, sink: Any, consumer: str, batch: int, window: float,
               once: bool, stop: threading.Event, listen: tuple[str, int] | None) -> None:
    """One runner on its own cursor until SIGTERM (or, with --once, until caught up)."""
    from dcops.pipeline import Runner
    from dcops.pipeline.detect_metrics import DetectMetrics
    from dcops.pipeline.jetstream import BusUnavailableError

    console = Console(stderr=True)
    b.register(consumer)
    runner = Runner(b, runnable, sink, consumer=consumer, batch=batch,
                    replay_window=timedelta(seconds=window))
    metrics = DetectMetrics(runner=runner, unavailable=(BusUnavailableError,))
    server = _serve(metrics, listen, console)
    t0, c0 = time.monotonic(), time.process_time()
    while not stop.is_set():
        try:
            n = runner.step()
            metrics.sample()
        except BusUnavailableError as exc:
            metrics.bus_error(exc)
            console.print(f"detect: bus unavailable, retrying: {exc}", highlight=False)
            stop.wait(RETRY_SECONDS)
            continue
        if n == 0:
            if once:
                break
            stop.wait(0.2)
    runner.snapshot()
    if server is not None:
        server.close()
    st = runner.stats
    console.print(f"detect: {st.events} events, {st.detections} detections "
                  f"({st.replayed} re-fed on start) in {time.monotonic() - t0:.1f}s "
                  f"(cpu {time.process_time() - c0:.1f}s)", highlight=False)


def _serve(metrics: DetectMetrics, listen: tuple[str, int] | None,
           console: Console) -> MetricsServer | None:
    """/metrics on `listen` (the collectors' server: a busy port is a clear error)."""
    if listen is None:
        return None
    from prometheus_client import CollectorRegistry

    from dcops.collectors.snmp.service import MetricsServer

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    server = MetricsServer(registry, *listen)
    console.print(f"detect: metrics at http://{listen[0]}:{server.port}/metrics",
                  highlight=False)
    return server


def _run_group(b: Any, runnable: Any, sink: Any, group: str, partitions: int, ttl: float,
               worker_id: str, batch: int, once: bool, stop: threading.Event,
               cross_host_rules: str = "refuse",
               listen: tuple[str, int] | None = None) -> None:
    """One runner of a worker group until SIGTERM (or, with --once, until caught up)."""
    from dcops.pipeline.detect_metrics import DetectMetrics
    from dcops.pipeline.jetstream import BusUnavailableError
    from dcops.pipeline.workers import Worker

    engine = getattr(runnable, "engine", runnable)  # the Sigma engine under the snapshotter
    console = Console(stderr=True)
    w = Worker(b, engine, sink, group=group, worker_id=worker_id, partitions=partitions,
               ttl=ttl, batch=batch, cross_host_rules=cross_host_rules)
    metrics = DetectMetrics(worker=w, unavailable=(BusUnavailableError,))
    server = _serve(metrics, listen, console)
    t0, c0 = time.monotonic(), time.process_time()
    how = "by host subject" if w.by_subject else "each reads the whole log"
    console.print(f"detect: worker {worker_id} of group {group} ({partitions} partitions, "
                  f"{how})", highlight=False)
    if w.stats.skipped:
        console.print(f"detect: warning: cross-host correlations skipped (run them in one "
                      f"plain `dcops detect run`): {', '.join(w.stats.skipped)}",
                      highlight=False)
    if once:  # until this runner's partitions are caught up (it waits to be given one)
        w.join()  # runners started together see each other before taking partitions
        stop.wait(ttl / 3)
        t0, c0 = time.monotonic(), time.process_time()  # the time spent detecting
        while not stop.is_set():
            got = w.step()
            metrics.sample()
            if got:
                continue
            if w.runners:
                break
            stop.wait(0.2)
        w.close()
    else:
        def on_error(exc: BaseException) -> None:
            metrics.bus_error(exc)
            console.print(f"detect: bus unavailable, retrying: {exc}", highlight=False)

        w.run(stop, on_error=on_error, unavailable=(BusUnavailableError,),
              after_step=metrics.sample)
    if server is not None:
        server.close()
    st = w.stats
    read = "its partitions' subjects" if w.by_subject else "each owned partition reads the log"
    stray = f", {st.stray} events on subjects no partition reads" if w.by_subject else ""
    console.print(f"detect: worker {worker_id}: {st.events} events read ({read}), "
                  f"{st.detections} detections, partitions taken {st.taken}, given back "
                  f"{st.released}, lost {st.lost}{stray} in {time.monotonic() - t0:.1f}s "
                  f"(cpu {time.process_time() - c0:.1f}s)", highlight=False)

"""Running file tailers for `dcops collect logs` and `dcops collect wazuh alerts`.

Tailers poll in a worker thread so that shutdown is bounded: the first SIGTERM/SIGINT stops reading
and lets the worker store what it read; if that takes longer than `--shutdown-timeout` (a locked or
full spool) or a second signal comes, the process exits at once. Nothing is lost either way: a
tailer saves its position only after the spool stored the lines, so what was not stored is read
again at the next start.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from dcops.errors import ConfigError

if TYPE_CHECKING:
    from dcops.collectors.health import SourceStats
    from dcops.collectors.logfile import FileTailer
    from dcops.collectors.snmp.service import MetricsServer
    from dcops.pipeline import SqliteSpool
    from dcops.pipeline.forward import StoreAndForward

MaxMessageOpt = Annotated[
    int,
    typer.Option(
        "--max-message-bytes",
        help="Longest line kept; longer lines are cut, marked log.truncated and counted.",
    ),
]
MetricsListenOpt = Annotated[
    str | None,
    typer.Option(
        "--metrics-listen", help="Serve intake metrics on HOST:PORT (e.g. 127.0.0.1:9720)."
    ),
]
RotateWaitOpt = Annotated[
    float,
    typer.Option(help="Seconds a rotated-away file must be quiet before the new one is read."),
]
ShutdownOpt = Annotated[
    float, typer.Option(help="Seconds SIGTERM waits for read lines to be stored before exiting.")
]
MIN_MESSAGE_BYTES = 1024


def check_max_message_bytes(value: int) -> int:
    """The --max-message-bytes value, refused below MIN_MESSAGE_BYTES."""
    if value < MIN_MESSAGE_BYTES:
        raise ConfigError(
            f"--max-message-bytes {value}: expected at least {MIN_MESSAGE_BYTES} bytes"
        )
    return value


def metrics_hostport(value: str) -> tuple[str, int]:
    """A --metrics-listen HOST:PORT value (`dcops collect logs`, `wazuh alerts`, `detect run`),
    refused with the option's name when it is not one."""
    host, _, port = value.rpartition(":")
    try:
        if not host or not 0 <= int(port) <= 65535:
            raise ValueError(value)
        return host.strip("[]"), int(port)
    except ValueError as exc:
        raise ConfigError(f"--metrics-listen {value!r}: expected HOST:PORT with a port "
                          "from 0 to 65535") from exc


class Tail:
    """One source's intake stats, its /metrics server and the bounded run loop."""

    def __init__(
        self, source: str, spool: SqliteSpool | StoreAndForward, metrics_listen: str | None
    ) -> None:
        from dcops.collectors.health import IntakeMetrics

        self.source, self.spool, self.listen = source, spool, metrics_listen
        if metrics_listen:
            metrics_hostport(metrics_listen)  # refuse a bad value before anything starts
        self.intake = IntakeMetrics()
        self.stats: SourceStats = self.intake.source(source)
        self.console = Console(stderr=True)

    def _serve(self, tailers: Sequence[FileTailer]) -> MetricsServer | None:
        if not self.listen:
            return None
        from prometheus_client import CollectorRegistry

        from dcops.collectors.logfile_metrics import TailerMetrics
        from dcops.collectors.snmp.service import MetricsServer
        from dcops.pipeline import SqliteSpool
        from dcops.pipeline.spool import SpoolMetrics

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.intake)
        registry.register(TailerMetrics(tailers))
        # Its own connection: a scrape must answer while a publish waits on a locked spool.
        registry.register(SpoolMetrics(SqliteSpool(self.spool.path)))
        if not isinstance(self.spool, SqliteSpool):  # a NATS bus: the outbox and forwarder
            from dcops.pipeline.forward import ForwardMetrics

            registry.register(ForwardMetrics(self.spool, SqliteSpool(self.spool.path)))
        server = MetricsServer(registry, *metrics_hostport(self.listen))
        self.console.print(
            f"{self.source}: metrics at http://{self.listen}/metrics", highlight=False
        )
        return server

    def run(
        self, tailers: Sequence[FileTailer], *, once: bool, interval: float, shutdown_timeout: float
    ) -> bool:
        """Poll until SIGTERM/SIGINT (or once); False if some read lines could not be stored.

        Without --once a missing file is waited for (it may be created or rotated in later);
        with --once there is nothing to wait for, so a missing file is refused.
        """
        if once:
            missing = [str(t.path) for t in tailers if not t.path.exists()]
            if missing:
                raise ConfigError(f"{', '.join(missing)}: no such file; --once reads the files "
                                  f"that exist, expected an existing log file")
        st = self.stats
        st.queue_depth = lambda: sum(t.queue_depth for t in tailers)
        st.queue_capacity = sum(t.batch_lines for t in tailers)
        st.oldest_unstored = lambda: min(
            (s for t in tailers if (s := t.oldest_unstored) is not None), default=None
        )
        server = self._serve(tailers)
        stop, done = threading.Event(), threading.Event()
        failure: list[BaseException] = []

        def on_signal(signum: int, _frame: object) -> None:
            if stop.is_set():  # second signal: at once (positions are saved only after storing)
                _exit(128 + signum)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

        def work() -> None:
            try:
                while True:
                    for t in tailers:
                        t.poll(stop)
                    if once or stop.wait(interval):
                        break
                for t in tailers:
                    t.close()
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name=f"tail-{self.source}", daemon=True).start()
        try:
            while not done.wait(0.2):
                if stop.is_set() and not done.wait(shutdown_timeout):
                    self.console.print(
                        f"{self.source}: lines read were not stored within {shutdown_timeout:g}s "
                        "(spool locked or full?); exiting now, they are read again at the next "
                        "start", highlight=False)
                    _exit(1)
        finally:
            if server is not None:
                server.close()
        if failure:
            raise failure[0]
        return not any(t.queue_depth for t in tailers)

    def summary(self, tailers: Sequence[FileTailer]) -> str:
        """Counters worth a line on stderr (only those that are not zero)."""
        st = self.stats
        parts = [f"{st.truncated_total} truncated" if st.truncated_total else "",
                 *(f"{n} dropped {r}" for r, n in sorted(st.drops.items()) if n),
                 f"{st.sink_errors_total} sink errors" if st.sink_errors_total else ""]
        events: Counter[str] = Counter()
        for t in tailers:
            events.update(t.events)
        parts += [f"{n} {k}" for k, n in sorted(events.items()) if n]
        return "; ".join(p for p in parts if p)


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def paths_exist(paths: Sequence[Path]) -> None:
    """Refuse, at start, a directory given as a log file."""
    for p in paths:
        if p.is_dir():
            raise ConfigError(f"{p}: a directory; expected a log file")

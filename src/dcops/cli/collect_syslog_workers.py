"""`dcops collect syslog --workers N`: N processes receive TCP syslog on one port (one listening
socket they all inherit; each new connection goes to the worker holding the fewest:
dcops.collectors.syslog_balance), each reading, framing, parsing and encoding on its own core;
the main process keeps UDP, TLS, RELP and the unix sockets, and is the spool's only writer
(dcops.pipeline.spool_feed: one transaction for what every worker sent meanwhile, each worker
answered only once it is stored, so a worker acknowledges a read only once it is in the spool).
Workers are forked before the main process starts any thread; they end with it (SIGTERM on its
death) and report their counters to its /metrics and stop line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections import Counter
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from dcops.collectors.syslog_workers import SNAPSHOT_PERIOD, WorkerCounters, snapshot
from dcops.errors import CollectorError

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event as MpEvent

    from dcops.collectors.syslog import SyslogConfig
    from dcops.pipeline import SqliteSpool
    from dcops.pipeline.spool_feed import SpoolFeed

READY_TIMEOUT = 30.0  # seconds for every worker to listen
WORKER_BATCH = 8_000  # messages per worker batch at most (one process: 2,000)
WORKER_CYCLE = 0.2  # seconds of parsing per worker batch at most (one process: 0.05)
_PR_SET_PDEATHSIG = 1


def shared_listener(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen on host:port (0: a free port): the socket every worker inherits."""
    from dcops.collectors.syslog_accept import listen_socket

    try:
        return listen_socket(host, port, backlog)
    except OSError as exc:
        raise CollectorError(f"syslog: cannot listen on {host} TCP port {port}: {exc}") from exc


class WorkerPool:
    """The TCP worker processes of one collector and the pipes they store through."""

    def __init__(self, count: int, cfg: SyslogConfig, host: str, tcp_port: int) -> None:
        self.count = count
        self.counters = WorkerCounters()
        self.gone: list[int] = []
        self._listener = shared_listener(host, tcp_port, cfg.listen_backlog)
        self.port = int(self._listener.getsockname()[1])
        # each worker's open TCP connections (shared memory, each writes its own slot)
        self.loads = multiprocessing.get_context("fork").Array("i", count, lock=False)
        # Larger batches than one process's: the spool's cost per row falls with the rows per
        # transaction.
        self._cfg = dataclasses.replace(
            cfg, tcp_port=None, shared_tcp=self._listener, tcp_loads=self.loads, udp_port=None,
            tls_port=None, tls=None, relp_port=None, unix_sockets={}, stats=Counter(),
            batch=max(cfg.batch, WORKER_BATCH), cycle=max(cfg.cycle, WORKER_CYCLE))
        self._procs: list[BaseProcess] = []
        self._conns: dict[int, multiprocessing.connection.Connection] = {}
        self._feed: SpoolFeed | None = None

    def fork(self) -> None:
        """Start the workers (before any thread of this process) and wait until they listen."""
        ctx = multiprocessing.get_context("fork")
        events: list[MpEvent] = []
        for i in range(self.count):
            mine, theirs = ctx.Pipe()
            ready = ctx.Event()
            p = ctx.Process(target=_worker_main, name=f"syslog-tcp-{i}",
                            args=(dataclasses.replace(self._cfg, worker=i), theirs, ready))
            p.start()
            theirs.close()
            self._procs.append(p)
            self._conns[i] = mine
            events.append(ready)
        deadline = time.monotonic() + READY_TIMEOUT
        for i, ready in enumerate(events):
            while not ready.wait(0.1):
                if not self._procs[i].is_alive() or time.monotonic() > deadline:
                    self.kill()
                    self._listener.close()
                    raise CollectorError(
                        f"syslog: TCP worker {i} did not start listening on port {self.port} "
                        f"(exit code {self._procs[i].exitcode}; see the messages above)")
        self._listener.close()  # the workers hold it; this process never accepts

    def start_feed(self, spool: SqliteSpool) -> None:
        """The spool writer thread for the workers."""
        from dcops.pipeline.spool_feed import SpoolFeed

        self._feed = SpoolFeed(spool, self._conns, self.counters.update, self.gone.append)
        self._feed.start()

    def terminate(self) -> None:
        """Ask every worker to stop (SIGTERM: each stores what it read, bounded in time)."""
        for p in self._procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    def hurry(self) -> None:
        """A second stop request: pass it on."""
        self.terminate()

    def join(self, timeout: float) -> bool:
        """Wait for the workers (then SIGKILL); True if each stopped cleanly (exit code 0)."""
        deadline = time.monotonic() + timeout
        for p in self._procs:
            p.join(max(0.0, deadline - time.monotonic()))
        self.kill()
        if self._feed is not None:
            self._feed.stop()
        return all(p.exitcode == 0 for p in self._procs)

    def kill(self) -> None:
        """SIGKILL the workers still running."""
        for p in self._procs:
            if p.is_alive():
                p.kill()
                p.join(1)

    def failed(self) -> list[str]:
        """Workers that ended on their own while the collector runs (a crash), and the spool
        writer thread if it failed (the workers would wait for it forever)."""
        out = [f"worker {i} (exit code {p.exitcode})"
               for i, p in enumerate(self._procs) if not p.is_alive()]
        if self._feed is not None and self._feed.failure is not None:
            out.append(f"spool writer ({type(self._feed.failure).__name__}: "
                       f"{self._feed.failure})")
        return out


def _die_with_parent() -> None:
    """SIGTERM this worker when the main process dies (even by SIGKILL): no orphan keeps the
    port and reads messages nobody stores."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker_main(cfg: SyslogConfig, conn: multiprocessing.connection.Connection,
                 ready: MpEvent) -> None:
    """One TCP worker: a SyslogServer on the shared port storing through `conn`."""
    from dcops.collectors.health import IntakeMetrics
    from dcops.collectors.syslog import SyslogServer
    from dcops.pipeline.spool_feed import RemoteSpool

    _die_with_parent()
    sink = RemoteSpool(conn)
    server = SyslogServer(sink, cfg, IntakeMetrics())

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def on_signal() -> None:
            if stopping.is_set():
                server.hurry()
            stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await server.start()
        ready.set()
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), SNAPSHOT_PERIOD)
            sink.send_stats(snapshot(server))
        await server.stop()

    try:
        asyncio.run(serve())
    except CollectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    sink.send_stats(snapshot(server))
    sys.exit(0 if server.clean else 1)


def merged_stats(local: dict[str, int], pool: WorkerPool | None) -> dict[str, Any]:
    """The stop line's counters: the main process's plus every worker's."""
    total = Counter(local)
    if pool is not None:
        total.update(pool.counters.stats())
    return dict(total)

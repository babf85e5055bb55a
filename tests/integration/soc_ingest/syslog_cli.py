"""`dcops collect syslog` as a real process for the hostile-input tests: ports, /metrics, spool."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families
from soc_rsyslog import free_port

REPO = Path(__file__).resolve().parents[3]
DCOPS = str(Path(sys.executable).with_name("dcops"))


class Syslogd:
    """One `dcops collect syslog` process on loopback ports, with /metrics."""

    def __init__(self, spool: Path, *args: str, udp: bool = True, tcp: bool = True,
                 tcp_port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.spool = spool
        self.ports = {"metrics": free_port(socket.SOCK_STREAM)}
        if udp:
            self.ports["udp"] = free_port()
        if tcp:
            self.ports["tcp"] = tcp_port or free_port(socket.SOCK_STREAM)
        self.stderr: list[str] = []
        cmd = [
            DCOPS, "collect", "syslog", "--listen", "127.0.0.1",
            f"--udp-port={self.ports.get('udp', -1)}", f"--tcp-port={self.ports.get('tcp', -1)}",
            "--metrics-listen", f"127.0.0.1:{self.ports['metrics']}", "--spool", str(spool),
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env=dict(os.environ, COLUMNS="1000", DCOPS_STATE_DIR=str(spool.parent / "state"),
                     **(env or {})),
        )
        self._listening = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._listening.wait(60):
            self.proc.kill()
            raise AssertionError("dcops collect syslog did not start: " + "".join(self.stderr))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "listening" in line:
                self._listening.set()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics: (name, sorted labels) -> value."""
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    def metric(self, name: str, **labels: str) -> float:
        """One sample (0 when absent)."""
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def term(self, second_after: float | None = None) -> float:
        """SIGTERM (and a second one after `second_after` s); seconds until the process exited."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        if second_after is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(second_after)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            took = time.monotonic() - t0
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return took

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def rss_kib(self) -> int:
        """Resident memory of the collector."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@contextlib.contextmanager
def syslogd(spool: Path, *args: str, **kw: Any) -> Iterator[Syslogd]:
    """A collector for the block; killed if the test left it running."""
    d = Syslogd(spool, *args, **kw)
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def stored(spool: Path) -> list[dict[str, Any]]:
    """Every event in the spool, decoded (id, f: fields, raw), in spool order."""
    if not spool.exists():
        return []
    with contextlib.closing(sqlite3.connect(spool, timeout=60)) as db:
        return [orjson.loads(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]


def count(spool: Path) -> int:
    """Events in the spool."""
    try:
        with contextlib.closing(sqlite3.connect(spool, timeout=60)) as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


def wait_count(spool: Path, n: int, timeout: float = 120) -> int:
    """Poll the spool until it holds `n` events (or the time is up); the last count."""
    deadline = time.monotonic() + timeout
    got = count(spool)
    while got < n and time.monotonic() < deadline:
        time.sleep(0.1)
        got = count(spool)
    return got


def line(tag: str, n: int) -> bytes:
    """A numbered RFC 3164 message."""
    return b"<38>Nov 22 05:00:00 web1 app[%d]: %s %d\n" % (n % 99999, tag.encode(), n)

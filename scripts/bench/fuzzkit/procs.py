"""The collectors as real processes: start, observe (/proc, /metrics, kernel UDP counters), stop."""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
TICK = os.sysconf("SC_CLK_TCK")


def dcops_argv() -> list[str]:
    """The dcops entry point of this checkout (its venv's console script)."""
    exe = ROOT / ".venv" / "bin" / "dcops"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from dcops.cli import main; main()"]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def options(command: object) -> set[str]:
    """CLI options a `dcops collect ...` command takes (from its typer function's signature)."""
    return {"--" + p.replace("_", "-") for p in inspect.signature(command).parameters}  # type: ignore[arg-type]


def udp_socket(port: int) -> tuple[int, int]:
    """(bytes queued, datagrams dropped) of the loopback UDP socket bound to `port`."""
    want = f":{port:04X}"
    queued = drops = 0
    with open("/proc/net/udp") as f:
        next(f)
        for ln in f:
            parts = ln.split()
            if parts[1].endswith(want):
                queued += int(parts[4].split(":")[1], 16)
                drops += int(parts[-1])
    return queued, drops


def rcvbuf_errors() -> int:
    """The kernel's system-wide `Udp: RcvbufErrors` (every process on this machine)."""
    with open("/proc/net/snmp") as f:
        rows = [ln.split() for ln in f if ln.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


@dataclass
class Collector:
    """One `dcops collect ...` process and what it was measured at."""

    name: str
    args: list[str]
    work: Path
    metrics_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    rss_before_kib: int = 0
    cpu_before_s: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        """stdout and stderr of the process."""
        return self.work / f"{self.name}.log"

    def start(self, env: dict[str, str]) -> None:
        """Start it (its own process group is not needed: it is one process)."""
        self.proc = subprocess.Popen([*dcops_argv(), "collect", *self.args], cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        """Process id."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """Still running."""
        return self.proc is not None and self.proc.poll() is None

    def _status(self, key: str) -> int:
        with contextlib.suppress(OSError), open(f"/proc/{self.pid}/status") as f:
            for ln in f:
                if ln.startswith(key + ":"):
                    return int(ln.split()[1])
        return 0

    def rss_kib(self) -> int:
        """VmRSS now (0 once gone)."""
        return self._status("VmRSS")

    def hwm_kib(self) -> int:
        """VmHWM: the peak resident set so far."""
        return self._status("VmHWM")

    def cpu_s(self) -> float:
        """utime + stime so far, seconds."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(rest[11]) + int(rest[12])) / TICK

    def scrape(self, timeout: float = 5.0) -> list[tuple[str, dict[str, str], float]]:
        """Samples of its /metrics (empty without --metrics-listen or when unreachable)."""
        if not self.metrics_port:
            return []
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=timeout) as r:
                text = r.read().decode()
        except OSError:
            return []
        return [(s.name, dict(s.labels), float(s.value))
                for fam in text_string_to_metric_families(text) for s in fam.samples]

    def wait_metrics(self, timeout: float) -> bool:
        """Until /metrics answers (False if the process died or time ran out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            if self.scrape(1.0):
                return True
            time.sleep(0.1)
        return False

    def terminate(self, deadline: float = 30.0) -> tuple[float, int | None, bool]:
        """SIGTERM; (seconds until it exited, exit code, had to be SIGKILLed)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return 0.0, self.proc.returncode, False
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(deadline)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return time.monotonic() - t0, self.proc.wait(), True
        return time.monotonic() - t0, code, False


def wait_tcp(port: int, timeout: float) -> bool:
    """Until something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.1)
    return False


def sample_sum(samples: list[tuple[str, dict[str, str], float]], name: str,
               **labels: str) -> float | None:
    """Sum of the samples called `name` whose labels include `labels` (None: no such sample)."""
    vals = [v for n, lab, v in samples
            if n == name and all(lab.get(k) == x for k, x in labels.items())]
    return sum(vals) if vals else None

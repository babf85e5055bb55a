"""The real `dcops collect logs` process against hostile files, scraped on --metrics-listen:
oversized lines, invalid UTF-8, NUL holes, rotation, copytruncate, a locked spool at SIGTERM.
Numbered canaries: every one stored exactly once. (alerts.json: test_wazuh_alerts_hostile.py.)"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dcops.pipeline import SqliteSpool

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
DCOPS = str(Path(sys.executable).with_name("dcops"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def canary(i: int) -> bytes:
    text = f"Nov 22 05:00:{i % 60:02d} web1 sshd[{i}]: Invalid user canary{i} from 10.0.0.9\n"
    return text.encode()


class Collector:
    """One `dcops collect ...` process with its metrics endpoint."""

    def __init__(self, args: list[str], tmp: Path) -> None:
        self.port = free_port()
        env = dict(os.environ, DCOPS_STATE_DIR=str(tmp / "state"))
        self.proc = subprocess.Popen(
            [DCOPS, *args, "--metrics-listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.wait(lambda: self.scrape() is not None, "metrics endpoint up")

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    def value(self, name: str, **labels: str) -> float:
        m = self.scrape() or {}
        return m.get((name, tuple(sorted(labels.items()))), float("nan"))

    def wait(self, pred: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"collector exited ({what}): {err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def rss_peak_kib(self) -> int:
        for row in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
        raise AssertionError("no VmHWM")

    def stop(self) -> tuple[int, float, str]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, time.monotonic() - t0, err


@pytest.fixture
def cleanup() -> Iterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def stored_canaries(spool: Path) -> list[str]:
    sp = SqliteSpool(spool)
    try:
        return [str(e.fields.get("user.name")) for _, e in sp.fetch_after(0, 1_000_000)
                if str(e.fields.get("user.name", "")).startswith("canary")]
    finally:
        sp.close()


def test_collect_logs_survives_hostile_files_and_counts_them(tmp_path: Path,
                                                             cleanup: list[Collector]) -> None:
    log, spool = tmp_path / "auth.log", tmp_path / "spool.db"
    log.write_bytes(b"".join(canary(i) for i in range(10)))
    c = Collector(["collect", "logs", str(log), "--spool", str(spool), "--interval", "0.1",
                   "--rotate-wait", "0.3"], tmp_path)
    cleanup.append(c)
    c.wait(lambda: c.value("dcops_intake_stored_total", source="logfile") == 10, "10 stored")
    peak_before = c.rss_peak_kib()
    with log.open("ab") as f:  # a 100 MB line, written without its newline first
        for _ in range(100):
            f.write(b"A" * (1 << 20))
    time.sleep(1)  # several polls over the unterminated line
    with log.open("ab") as f:
        f.write(b"\n" + canary(10))
        f.write(b"Nov 22 05:01:00 web1 sshd[1]: Invalid user \xff\xfe\xc0 from 10.0.0.9\n")
        f.write(b"\x00" * 100_000 + canary(11) + b"a\x00b\n" + canary(12))
    c.wait(lambda: c.value("dcops_intake_stored_total", source="logfile") == 16, "hostile lines")
    peak_kib = c.rss_peak_kib() - peak_before
    assert peak_kib < 32 * 1024, f"peak RSS grew {peak_kib} KiB reading a 100 MB line"
    # rename + create, then copytruncate with lines written after the last read
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"".join(canary(i) for i in range(13, 16)))
    c.wait(lambda: c.value("dcops_logfile_file_events_total", source="logfile", file=str(log),
                           kind="renamed") == 1, "rotation followed")
    c.wait(lambda: len(stored_canaries(spool)) == 16, "canaries of the new file")
    with log.open("ab") as f:
        f.writelines(canary(i) for i in range(16, 18))
    shutil.copy(log, tmp_path / "auth.log.2")
    os.truncate(log, 0)
    log.write_bytes(canary(18))
    c.wait(lambda: len(stored_canaries(spool)) == 19, "copytruncate followed")

    m = c.scrape() or {}

    def v(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted({"source": "logfile", **labels}.items())))]

    assert v("dcops_intake_truncated_total") == 1
    assert v("dcops_intake_received_total") == v("dcops_intake_stored_total") == 22
    assert v("dcops_intake_dropped_total", reason="dead_letter") == 0
    assert v("dcops_intake_sink_errors_total") == 0
    assert v("dcops_intake_queue_depth") == 0
    assert v("dcops_intake_oldest_unstored_age_seconds") == 0
    assert v("dcops_logfile_file_events_total", file=str(log), kind="copytruncate") == 1
    assert v("dcops_logfile_file_events_total", file=str(log), kind="copy_read") == 1
    assert v("dcops_logfile_nul_runs_total", file=str(log)) == 1
    assert m[("dcops_spool_dead_letters", ())] == 0
    rc, took, err = c.stop()
    assert rc == 0 and took < 10, (rc, took, err)  # bounded (loaded CI: not 5 s)
    assert "22 events spooled" in err and "1 truncated" in err
    assert sorted(stored_canaries(spool)) == sorted(f"canary{i}" for i in range(19))


def test_sigterm_with_the_spool_locked_exits_in_time_and_a_restart_loses_nothing(
    tmp_path: Path, cleanup: list[Collector]
) -> None:
    log, spool = tmp_path / "auth.log", tmp_path / "spool.db"
    log.write_bytes(b"".join(canary(i) for i in range(5)))
    c = Collector(["collect", "logs", str(log), "--spool", str(spool), "--interval", "0.1",
                   "--shutdown-timeout", "2"], tmp_path)
    cleanup.append(c)
    c.wait(lambda: c.value("dcops_intake_stored_total", source="logfile") == 5, "5 stored")
    holder = sqlite3.connect(spool, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the spool
    try:
        with log.open("ab") as f:
            f.writelines(canary(i) for i in range(5, 40))
        c.wait(lambda: c.value("dcops_intake_received_total", source="logfile") == 40, "read")
        c.wait(lambda: c.value("dcops_intake_oldest_unstored_age_seconds",
                               source="logfile") > 0.5, "waiting to be stored")
        rc, took, err = c.stop()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rc == 1 and took < 10, (rc, took, err)  # bounded (loaded CI: not 5 s)
    assert "were not stored within 2s" in err
    r = subprocess.run([DCOPS, "collect", "logs", str(log), "--spool", str(spool), "--once"],
                       check=False, capture_output=True, text=True, timeout=120, cwd=REPO,
                       env=dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state")))
    assert r.returncode == 0, r.stderr
    assert sorted(stored_canaries(spool)) == sorted(f"canary{i}" for i in range(40))

"""`dcops detect scan -` on a live pipe: detections come out while the pipe stays open, and
SIGTERM scans every line read before the process exits."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcops.detect.stream import IDLE, LineStream

ROOT = Path(__file__).resolve().parents[3]
SOC_RULES = ROOT / "soc_rules"


def _line(i: int, user: str = "root") -> bytes:
    return json.dumps({
        "id": f"s{i}", "timestamp": f"2026-11-20T03:00:{i % 60:02d}Z",
        "logsource": {"product": "linux", "service": "sshd"},
        "fields": {"event.action": "ssh_login", "event.outcome": "success", "user.name": user,
                   "source.ip": "10.10.40.5"}}).encode() + b"\n"


def _scan(*extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "dcops", "detect", "scan", "-", "--rules", str(SOC_RULES), *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _read_ids(proc: subprocess.Popen[bytes], want: int, deadline: float) -> list[str]:
    """Detection event ids from stdout until `want` arrived or the deadline passed."""
    assert proc.stdout is not None
    buf = b""
    fd = proc.stdout.fileno()
    while buf.count(b"\n") < want and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    return [json.loads(x)["event_ids"][0] for x in buf.splitlines()]


def test_detections_come_out_while_the_pipe_stays_open() -> None:
    proc = _scan()  # --batch 1000: the 3 lines never fill a batch
    assert proc.stdin is not None
    proc.stdin.write(_line(1) + _line(2, "admin") + _line(3))
    proc.stdin.flush()
    got = _read_ids(proc, 2, time.monotonic() + 60)
    assert got == ["s1", "s3"]  # the input paused: the batch ran without filling
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"stopped by a signal" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_scans_every_line_read_before_exiting(workers: str) -> None:
    proc = _scan("--workers", workers)
    assert proc.stdin is not None and proc.stderr is not None
    # wait for the rules to load (the scan reads nothing before), then feed and stop at once
    proc.stdin.write(_line(0))
    proc.stdin.flush()
    assert _read_ids(proc, 1, time.monotonic() + 60) == ["s0"]
    proc.stdin.write(b"".join(_line(i) for i in range(1, 41)) + b'{"half": ')
    proc.stdin.flush()
    proc.send_signal(signal.SIGTERM)  # the pipe stays open: only the signal ends the scan
    out, err = proc.communicate(timeout=60)
    ids = sorted(json.loads(x)["event_ids"][0] for x in out.splitlines())
    assert ids == sorted(f"s{i}" for i in range(1, 41))
    assert proc.returncode == 1  # the cut line is a malformed line, named, not dropped silently
    assert b"-:42: not a JSON object" in err


def test_a_stream_yields_partial_and_long_lines_and_stops_between_lines() -> None:
    r, w = os.pipe()
    long_line = b"x" * 300_000  # several reads without a newline
    os.write(w, b"a\nb\n")
    stream = LineStream(os.fdopen(r, "rb"), idle=0.05)
    it = stream.lines()
    assert [next(it), next(it)] == [b"a\n", b"b\n"]
    assert next(it) is IDLE  # quiet after some lines
    pid = os.fork()
    if pid == 0:  # a writer, so the pipe's buffer never blocks this process
        os.write(w, long_line + b"\nc")
        os._exit(0)
    assert next(it) == long_line + b"\n"  # read while the writer writes (a pipe holds 64 KiB)
    os.waitpid(pid, 0)
    assert next(it) is IDLE
    stream.stop()
    assert list(it) == [b"c"]  # the cut line is handed on, not lost
    os.close(w)


def test_a_stream_without_a_descriptor_stops_between_lines() -> None:
    stream = LineStream(io.BytesIO(b"1\n2\n3\n"))
    got = []
    for line in stream.lines():
        got.append(line)
        stream.stop()
    assert got == [b"1\n"]

"""`dcops collect logs --detect` with the real Sigma engine and alert store, killed with SIGKILL
again and again while lines arrive: the alert store ends exactly as after one uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DCOPS = str(Path(sys.executable).with_name("dcops"))


def lines(start: int, n: int) -> str:
    out = []
    for i in range(start, start + n):
        ip = f"198.51.100.{i % 6}"
        t = f"Nov 22 {5 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        if i % 9 == 8:
            out.append(f"{t} web1 sshd[{i}]: Accepted password for ops from {ip} port {i} ssh2\n")
        else:
            out.append(
                f"{t} web1 sshd[{i}]: Failed password for invalid user x{i} from {ip} "
                f"port {i} ssh2\n"
            )
    return "".join(out)


def spooled(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return int(con.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


def state(db: Path) -> tuple[list[str], list[tuple[str, str, int]]]:
    con = sqlite3.connect(db)
    dets = sorted(r[0] for r in con.execute("SELECT detection_id FROM alert_detections"))
    alerts = sorted(con.execute("SELECT rule_id, dedup_key, count FROM alerts").fetchall())
    con.close()
    return dets, alerts


def collect(log: Path, d: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            DCOPS,
            "collect",
            "logs",
            str(log),
            "--host",
            "web1",
            "--interval",
            "0.05",
            "--detect",
            "--rules",
            "soc_rules",
            "--db",
            f"sqlite:///{d / 'alerts.db'}",
            "--spool",
            str(d / "spool.db"),
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, DCOPS_STATE_DIR=str(d)),
    )


def test_sigkill_with_real_engine_and_alert_store(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    rng = random.Random(61)
    log.write_text(lines(0, 600))
    written = 600
    for _ in range(4):
        before = spooled(killed / "spool.db")
        proc = collect(log, killed)
        try:
            deadline = time.monotonic() + 120  # the process has started when the spool grows
            while spooled(killed / "spool.db") <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            with log.open("a") as f:  # more arrives while it runs; killed before or after it
                f.write(lines(written, 400))
            written += 400
            time.sleep(rng.uniform(0.0, 1.0))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        with log.open("a") as f:  # so the next start has something new to spool
            f.write(lines(written, 100))
        written += 100
    final = collect(log, killed, "--once")
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    reference = collect(log, clean, "--once")
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err

    assert spooled(killed / "spool.db") == spooled(clean / "spool.db") == written
    dets, alerts = state(killed / "alerts.db")
    ref_dets, ref_alerts = state(clean / "alerts.db")
    assert len(ref_dets) > 0 and any(a[0] for a in ref_alerts)
    assert dets == ref_dets  # no detection lost, none extra
    assert alerts == ref_alerts  # the same alerts with the same counts

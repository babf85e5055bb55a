"""SIGKILL at any moment during ingestion loses no accepted event and creates no duplicate alert."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcops.pipeline import SqliteSpool

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("ingest_worker.py")


def _lines(start: int, n: int) -> list[str]:
    out = []
    for i in range(start, start + n):
        ip = f"10.66.{i % 7}.{i % 13}"
        if i % 5 == 4:
            out.append(
                f"Nov 22 05:{i // 60 % 60:02d}:{i % 60:02d} lab1 sshd[{i}]: Accepted password "
                f"for ok{i} from {ip} port {i} ssh2\n"
            )
        else:
            out.append(
                f"Nov 22 05:{i // 60 % 60:02d}:{i % 60:02d} lab1 sshd[{i}]: Failed password "
                f"for u{i} from {ip} port {i} ssh2\n"
            )
    return out


def _start(log: Path, spool: Path, sink: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), "run", str(log), str(spool), str(sink), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_sigkill_during_ingestion_then_restart(tmp_path: Path) -> None:
    log, spool_db, sink_db = tmp_path / "auth.log", tmp_path / "spool.db", tmp_path / "sink.db"
    rng = random.Random(6)
    written = 0
    log.write_text("".join(_lines(0, 1500)))
    written = 1500
    kills = 0
    for round_ in range(6):
        proc = _start(log, spool_db, sink_db)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            with log.open("a") as f:  # more arrives while it runs
                f.writelines(_lines(written, 300))
            written += 300
            if round_ == 2:  # rotation by rename + create while the worker runs
                log.rename(tmp_path / "auth.log.1")
                log.write_text("".join(_lines(written, 200)))
                written += 200
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
    proc = _start(log, spool_db, sink_db, "--drain")
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out

    spool = SqliteSpool(spool_db)
    events = [e for _, e in spool.fetch_after(0, 10_000_000)]
    users = sorted(str(e.fields["user.name"]) for e in events)
    expected_users = sorted(f"{'ok' if i % 5 == 4 else 'u'}{i}" for i in range(written))
    assert users == expected_users  # every line exactly once: nothing lost, nothing twice
    assert len({e.id for e in events}) == written

    ref = subprocess.run(
        [sys.executable, str(WORKER), "reference", str(spool_db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    expected = json.loads(ref.stdout)
    db = sqlite3.connect(sink_db)
    got = [r[0] for r in db.execute("SELECT id FROM detections")]
    attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    assert kills == 6
    assert sorted(got) == sorted(expected)  # same detections as one uninterrupted run
    assert len(expected) == len(set(expected))
    brute = db.execute("SELECT COUNT(*) FROM detections WHERE rule = 'brute'").fetchone()[0]
    assert brute > 0
    print(
        f"\n{written} events, {len(got)} detections, {attempts} accept attempts "
        f"({attempts - len(got)} redelivered and ignored)"
    )

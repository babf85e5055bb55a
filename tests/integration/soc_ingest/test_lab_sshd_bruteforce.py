"""Real sshd on a lab host: failed logins from the controller produce the brute-force alert.

The chroot lab runs `sshd -D -e`, so its log is the host's console.log without syslog headers;
`dcops collect logs --program sshd --host NAME` reads it into the same pipeline as syslog.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DCOPS = str(Path(sys.executable).with_name("dcops"))
LAB = "socingest"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )


@pytest.fixture
def lab_host() -> Iterator[tuple[str, Path, str]]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    up = run(DCOPS, "lab", "up", "--name", LAB, "--hosts", "1", timeout=900)
    if up.returncode != 0:
        run(DCOPS, "lab", "down", "--name", LAB)
        pytest.skip(f"lab could not start: {up.stderr[-500:]}")
    state = Path(os.environ.get("DCOPS_STATE_DIR") or Path.home() / ".local/share/dcops")
    try:
        host = json.loads((state / "lab" / LAB / "state.json").read_text())["hosts"][0]
        yield host["address"], Path(host["merged"]).parent / "console.log", host["name"]
    finally:
        run(DCOPS, "lab", "down", "--name", LAB)


def test_failed_ssh_logins_raise_brute_force_alert(
    lab_host: tuple[str, Path, str], tmp_path: Path
) -> None:
    address, console, name = lab_host
    attack = tmp_path / "attack.py"
    attack.write_text(
        textwrap.dedent(f"""
        import paramiko
        for i in range(12):
            c = paramiko.SSHClient()
            c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            try:
                c.connect("{address}", username=f"intruder{{i}}", password="wrong",
                          look_for_keys=False, allow_agent=False, timeout=10, auth_timeout=10)
            except Exception:
                pass
            finally:
                c.close()
    """)
    )
    r = run(DCOPS, "lab", "ctl", "--name", LAB, "--", sys.executable, str(attack))
    assert r.returncode == 0, r.stderr
    db = tmp_path / "alerts.db"
    r = run(
        DCOPS,
        "collect",
        "logs",
        str(console),
        "--program",
        "sshd",
        "--host",
        "lab-app1",
        "--once",
        "--detect",
        "--rules",
        "soc_rules",
        "--db",
        f"sqlite:///{db}",
        "--spool",
        str(tmp_path / "spool.db"),
    )
    assert r.returncode == 0, r.stderr
    rows = sqlite3.connect(db).execute("SELECT rule_title, host FROM alerts").fetchall()
    assert ("SSH Brute Force From One Source", name) in rows, (rows, console.read_text())

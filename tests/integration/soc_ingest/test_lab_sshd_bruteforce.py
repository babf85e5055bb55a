"""Real sshd on a lab host: failed logins, then a successful one, from the controller.

They must raise "SSH Brute Force From One Source" and "SSH Login Success After Failures" from
the host's own sshd log. A lab that cannot start fails the test (it is what is under test).

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

from dcops.lab.sshconf import LAB_USER

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DCOPS = str(Path(sys.executable).with_name("dcops"))
LAB = f"socbf{os.getpid() % 100000}"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )


@pytest.fixture
def lab_host() -> Iterator[tuple[str, Path, str]]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    up = run(DCOPS, "lab", "up", "--name", LAB, "--hosts", "1", timeout=900)
    try:
        assert up.returncode == 0, f"dcops lab up failed: {up.stderr[-2000:]}"
        state = Path(os.environ.get("DCOPS_STATE_DIR") or Path.home() / ".local/share/dcops")
        host = json.loads((state / "lab" / LAB / "state.json").read_text())["hosts"][0]
        yield host["address"], Path(host["merged"]).parent / "console.log", host["name"]
    finally:
        down = run(DCOPS, "lab", "down", "--name", LAB)
        assert down.returncode == 0, down.stderr
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
        assert LAB not in netns.stdout, netns.stdout


def test_failed_then_successful_ssh_logins_raise_both_alerts(
    lab_host: tuple[str, Path, str], tmp_path: Path
) -> None:
    address, console, name = lab_host
    state = Path(os.environ.get("DCOPS_STATE_DIR") or Path.home() / ".local/share/dcops")
    key = state / "lab" / LAB / "id_ed25519"
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
        # then the operator's key works from the same address: a success after failures
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        c.connect("{address}", username="{LAB_USER}", key_filename="{key}",
                  look_for_keys=False, allow_agent=False, timeout=30, auth_timeout=30)
        _, out, _ = c.exec_command("id -un")
        assert out.read().strip() == b"{LAB_USER}"
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
        name,
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
    log = console.read_text()
    assert "Invalid user intruder" in log and f"Accepted publickey for {LAB_USER}" in log, log
    rows = sqlite3.connect(db).execute("SELECT rule_title, host FROM alerts").fetchall()
    assert ("SSH Brute Force From One Source", name) in rows, (rows, log)
    assert ("SSH Login Success After Failures", name) in rows, (rows, log)

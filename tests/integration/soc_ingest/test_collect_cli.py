"""`dcops collect logs|wazuh` end to end: files -> spool -> Sigma engine -> alert store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fakes.wazuh_fake import FakeWazuhServer, demo_state

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def dcops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("dcops")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"))


def test_logs_to_brute_force_alert_and_restart_adds_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    log = tmp_path / "auth.log"
    lines = [
        f"Nov 22 05:00:{i:02d} web1 sshd[{100 + i}]: Failed password for invalid user "
        f"admin{i} from 203.0.113.9 port {40000 + i} ssh2\n"
        for i in range(12)
    ]
    lines.append(
        "Nov 22 05:00:30 web1 sshd[200]: Accepted password for ops from 10.0.0.2 port 5000 ssh2\n"
    )
    lines.append("this line matches no format\n")
    log.write_text("".join(lines))
    db = tmp_path / "alerts.db"
    args = [
        "collect",
        "logs",
        str(log),
        "--once",
        "--detect",
        "--rules",
        "soc_rules",
        "--db",
        f"sqlite:///{db}",
        "--spool",
        str(tmp_path / "spool.db"),
    ]
    r = dcops(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert "14 events spooled (1 unparsed kept raw)" in r.stderr
    con = sqlite3.connect(db)
    titles = [t for (t,) in con.execute("SELECT rule_title FROM alerts")]
    assert "SSH Brute Force From One Source" in titles
    detections = con.execute("SELECT COUNT(*) FROM alert_detections").fetchone()[0]
    con.close()
    r = dcops(*args, env=env)  # restart: nothing new in the file
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM alert_detections").fetchone()[0] == detections
    assert sorted(t for (t,) in con.execute("SELECT rule_title FROM alerts")) == sorted(titles)


def test_wazuh_agents_and_sca_commands(tmp_path: Path, env: dict[str, str], pki: Any) -> None:
    pw = tmp_path / "pw"
    pw.write_text("wazuh\n")
    st = demo_state([("web1", "10.77.0.11"), ("db1", "10.77.0.12")])
    with FakeWazuhServer(st, certfile=str(pki.cert), keyfile=str(pki.key)) as srv:
        common = ["--url", srv.url, "--password-file", str(pw), "--ca-file", str(pki.ca)]
        r = dcops("collect", "wazuh", "agents", *common, env=env)
        assert r.returncode == 0, r.stderr
        assert "web1" in r.stdout and "db1" in r.stdout
        r = dcops("collect", "wazuh", "sca", "002", *common, env=env)
        assert r.returncode == 0, r.stderr
        assert "auditd" in r.stdout and "66%" in r.stdout
        r = dcops(
            "collect", "wazuh", "agents", "--url", srv.url, "--password-file", str(pw), env=env
        )
        assert r.returncode == 1 and "error:" in r.stderr and "CERTIFICATE" in r.stderr

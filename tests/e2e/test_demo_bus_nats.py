"""`dcops demo --bus nats` end to end (issue 14): the same scenario over a 3-node NATS JetStream
cluster in the lab controller, collectors forwarding to it and a group of 2 detection workers,
reaches the same alerts as the default demo on the SQLite spool; nothing is left running."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dcops.cli.demo import EXPECTED_ALERTS, STEPS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
OWN_CHANGES = ("New Local User Account Created", "SSH Login By A Newly Created Account")
REPO = Path(__file__).resolve().parents[2]
DCOPS = str(Path(sys.executable).with_name("dcops"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_over_a_nats_cluster_reaches_the_same_alerts(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the demo's lab needs root (network namespaces)")
    lab = f"demob-t{os.getpid() % 10000}"
    state = tmp_path / "demo"
    proc = subprocess.run(
        [DCOPS, "demo", "--bus", "nats", "--state", str(state), "--lab-name", lab,
         "--console-port", str(_free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=2400, check=False,
        env=dict(os.environ, COLUMNS="200"))
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    for title, _ in STEPS:
        assert f"done {title}" in proc.stdout, f"step not reported done: {title}\n{tail}"
    # The bus line: the events went through the cluster, not the spool.
    (line,) = [ln for ln in proc.stdout.splitlines() if "Event bus / Kênh sự kiện" in ln]
    assert "NATS JetStream, 3-node cluster nats://127.0.0.1:14222" in line, line
    print(line)  # in the CI log (-rP)
    held = int(line.split("(")[1].split()[0])
    assert held > 20, line  # 12 failed logins, a login, sudo, 6 traps, the playbooks' logs

    listed = subprocess.run([DCOPS, "alerts", "list", "--json", "--limit", "1000"],
                            capture_output=True, text=True, check=True, cwd=REPO,
                            env=dict(os.environ, DCOPS_STATE_DIR=str(state / "state")))
    data = json.loads(listed.stdout)
    alerts = data["alerts"] if isinstance(data, dict) else data
    titles = {a["rule_title"] for a in alerts}
    # The same rules fire as in the default demo (tests/e2e/test_demo_full.py).
    assert set(EXPECTED_ALERTS) <= titles, f"missing: {set(EXPECTED_ALERTS) - titles}"
    assert set(OWN_CHANGES) & titles, titles
    brute = [a for a in alerts if a["rule_title"] == "SSH Brute Force From One Source"]
    assert any("10.78.1.50" in json.dumps(a, default=str) for a in brute), brute
    # Both workers of the group ran and stopped cleanly, their counts on their stop line.
    for i in (1, 2):
        log = (state / f"detect-worker-{i}.log").read_text(errors="replace")
        assert f"detect: worker demo-{i}: " in log, log[-2000:]

    assert not (state / "nats").exists(), "the cluster's store was not removed"
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert f"{lab}-" not in netns, netns
    leftovers = subprocess.run(["pgrep", "-af", str(state)], capture_output=True, text=True,
                               check=False).stdout
    assert leftovers.strip() == "", leftovers

"""`dcops demo --bus nats` end to end (issue 14): the same scenario over a 3-node NATS JetStream
cluster in the lab controller, collectors forwarding to it and a group of 2 detection workers,
reaches the same alerts as the default demo on the SQLite spool; nothing is left running."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from demo_run import (
    ATTACKER,
    BRUTE_FORCE,
    OWN_CHANGES,
    assert_nothing_left,
    outcome,
    queue_alerts,
    require_root,
    run_demo,
)

from dcops.cli.demo import EXPECTED_ALERTS, STEPS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_over_a_nats_cluster_reaches_the_same_alerts(tmp_path: Path) -> None:
    require_root()
    lab = f"demob-t{os.getpid() % 10000}"
    state = tmp_path / "demo"
    proc = run_demo(state, lab, "--bus", "nats")
    tail = outcome(proc)
    assert proc.returncode == 0, tail
    for title, _ in STEPS:
        assert f"done {title}" in proc.stdout, f"step not reported done: {title}\n{tail}"
    # The bus line: the events went through the cluster, not the spool.
    (line,) = [ln for ln in proc.stdout.splitlines() if "Event bus / Kênh sự kiện" in ln]
    assert "NATS JetStream, 3-node cluster nats://127.0.0.1:14222" in line, line
    print(line)  # in the CI log (-rP)
    held = int(line.split("(")[1].split()[0])
    assert held > 20, line  # 12 failed logins, a login, sudo, 6 traps, the playbooks' logs

    alerts = queue_alerts(state)
    titles = {a["rule_title"] for a in alerts}
    # The same rules fire as in the default demo (tests/e2e/test_demo_full.py).
    assert set(EXPECTED_ALERTS) <= titles, f"missing: {set(EXPECTED_ALERTS) - titles}"
    assert set(OWN_CHANGES) & titles, titles
    brute = [a for a in alerts if a["rule_title"] == BRUTE_FORCE]
    assert any(ATTACKER in json.dumps(a, default=str) for a in brute), brute
    # Both workers of the group ran and stopped cleanly, their counts on their stop line.
    for i in (1, 2):
        log = (state / f"detect-worker-{i}.log").read_text(errors="replace")
        assert f"detect: worker demo-{i}: " in log, log[-2000:]

    assert not (state / "nats").exists(), "the cluster's store was not removed"
    assert_nothing_left(lab, state)

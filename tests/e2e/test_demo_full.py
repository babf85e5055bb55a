"""`dcops demo` (what `make demo` runs) end to end: every step done, the scenario's alerts in the
queue, both report files written, nothing left running and no namespace left behind."""

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
    dcops_json,
    outcome,
    queue_alerts,
    require_root,
    run_demo,
)

from dcops.cli.demo import EXPECTED_ALERTS, STEPS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _assert_every_not_met_verdict_is_explained(out: Path) -> None:
    """Issue 16 item 6: the demo report explains each not-met verdict (inventories/lab/
    compliance/notes.yml) and no note explains a control that is met or not applicable; the
    network controls are judged from the IaC plan, not left to manual review."""
    (system,) = json.loads((out / "findings.json").read_text(encoding="utf-8"))["systems"]
    verdicts = {f["control"]: f["verdict"] for f in system["findings"]}
    unexplained = [f["control"] for f in system["findings"]
                   if f["verdict"] in ("not_met", "partly_met") and not f["note"]]
    stale = [f"{f['control']} ({f['verdict']})" for f in system["findings"]
             if f["note"] and f["verdict"] in ("met", "not_applicable")]
    assert unexplained == [] and stale == [], (unexplained, stale, verdicts)
    assert {verdicts[c] for c in ("NET-01", "NET-02", "NET-03", "NET-09")} == {"met"}, verdicts
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "No explanation" not in html and "Auditor's note" in html


def test_demo_runs_every_step_and_cleans_up(tmp_path: Path) -> None:
    require_root()
    lab = f"demo-t{os.getpid() % 10000}"
    state = tmp_path / "demo"
    proc = run_demo(state, lab)
    tail = outcome(proc)
    assert proc.returncode == 0, tail
    for title, _ in STEPS:
        assert f"done {title}" in proc.stdout, f"step not reported done: {title}\n{tail}"

    alerts = queue_alerts(state)
    titles = {a["rule_title"] for a in alerts}
    assert set(EXPECTED_ALERTS) <= titles, f"missing: {set(EXPECTED_ALERTS) - titles}"
    brute = [a for a in alerts if a["rule_title"] == BRUTE_FORCE]
    assert any(ATTACKER in json.dumps(a, default=str) for a in brute), brute
    # The toolkit's own changes (the playbooks' accounts) are expected changes, resolved, not in
    # the open queue; the scenario's alerts are not (issue 19, item 2).
    own = [a for a in alerts if a["rule_title"] in OWN_CHANGES]
    assert own, "the playbook runs made no account alerts: nothing shows the windows work"
    assert all(a["change_window_id"] is not None and a["status"] == "resolved" for a in own), own
    assert not [a for a in alerts if a["rule_title"] in EXPECTED_ALERTS
                and a["change_window_id"] is not None]
    incidents = dcops_json(state, "alerts", "incidents", "list")
    real = {i["id"]: i["title"] for i in incidents if i.get("change_window_id") is None}
    titled = [real[a["incident_id"]] for a in brute if a["incident_id"] in real]
    assert titled and not [t for t in titled if any(o in t for o in OWN_CHANGES)], titled
    assert "expected changes" in proc.stdout, tail

    for report in ("report.html", "report.pdf"):
        path = state / "audit-lgsp" / report
        assert path.is_file() and path.stat().st_size > 1000, path
    _assert_every_not_met_verdict_is_explained(state / "audit-lgsp")
    assert (state / "topology.svg").stat().st_size > 0

    assert_nothing_left(lab, state)

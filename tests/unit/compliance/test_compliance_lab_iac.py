"""The lab audit gets IaC evidence: its network controls are judged from the plan, not manual."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dcops.compliance import Assessor, Evidence, Profile, load_catalogue
from dcops.compliance.collect.iac import IacCollector
from dcops.compliance.collect.site import SiteCollector
from dcops.compliance.findings import Verdict
from dcops.inventory import load_inventory

LAB = Path(__file__).resolve().parents[3] / "inventories" / "lab"
IAC_CONTROLS = ("NET-01", "NET-02", "NET-03", "NET-09")


def test_the_lab_network_controls_are_judged_from_the_plan(tmp_path: Path) -> None:
    model = load_inventory(LAB)
    evidence = Evidence()
    SiteCollector(str(LAB)).collect(model, evidence)
    IacCollector(cache_dir=tmp_path).collect(model, evidence)
    assert not [n for n in evidence.notes if n.startswith("iac:")], evidence.notes
    for system in model.systems:
        zones = evidence.get(f"system:{system}", "iac.zones")
        assert zones is not None and set(model.systems[system].zones) <= set(zones.value)
    assessor = Assessor(model, load_catalogue(), evidence, Profile(), "tt12",
                        datetime(2026, 6, 1, tzinfo=UTC))
    for system in model.systems:
        findings = {f.control: f for f in assessor.assess(system).findings}
        for control in IAC_CONTROLS:
            finding = findings[control]
            assert finding.verdict is Verdict.MET, (system, control, finding.reason)
            assert finding.checks and all(o.result == "pass" for c in finding.checks
                                          for o in c.observations), (system, control)

"""The audit lists each system's standby twins (derived from the address plan) with its hosts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dcops.compliance import Assessor, Evidence, Profile, load_catalogue
from dcops.compliance.report import validate_findings, write_reports
from dcops.inventory import load_inventory
from dcops.inventory.derived import twin_hosts

PRODUCTION = Path(__file__).resolve().parents[3] / "inventories" / "production"
NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def test_report_lists_the_systems_twins_marked_as_twins(tmp_path: Path) -> None:
    model = load_inventory(PRODUCTION)
    report = Assessor(model, load_catalogue(), Evidence(), Profile(), "tt12", NOW).assess("lgsp")
    expected = {t.name: t for t in twin_hosts(model) if t.system == "lgsp"}
    assert sorted(t["name"] for t in report.twins) == sorted(expected) == [
        "lgsp-app-standby", "lgsp-db-standby", "lgsp-gw-standby"]
    db = next(t for t in report.twins if t["name"] == "lgsp-db-standby")
    assert db == {"name": "lgsp-db-standby", "address": "10.11.30.11",
                  "twin_of": "lgsp-db1, lgsp-db2"}
    assert not set(expected) & set(report.hosts)  # declared hosts and twins stay apart
    paths = write_reports([report], tmp_path, inventory=str(PRODUCTION), version="0")
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    validate_findings(doc)
    assert doc["systems"][0]["twins"] == report.twins
    html = paths["html"].read_text(encoding="utf-8")
    assert "Máy dự phòng tại TTDL dự phòng" in html and "Standby twins (backup DC)" in html
    assert "lgsp-db-standby (10.11.30.11; dự phòng cho" in html


def test_lab_reports_have_no_twins() -> None:
    model = load_inventory(PRODUCTION.parent / "lab")
    system = next(iter(model.systems))
    report = Assessor(model, load_catalogue(), Evidence(), Profile(), "tt12", NOW).assess(system)
    assert report.twins == []

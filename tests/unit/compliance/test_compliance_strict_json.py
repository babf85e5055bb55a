"""findings.json and evidence.json are strict JSON: "never" is null with a reason, not Infinity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.compliance import Assessor, Evidence, Profile, load_catalogue
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, split
from dcops.compliance.collect.soc import AlertTiming, IncidentReport, SocCollector
from dcops.compliance.evidence import strict_json
from dcops.compliance.report import validate_findings, write_reports
from dcops.errors import ComplianceError
from dcops.model import SiteModel

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


class SilentSoc:
    """A SOC store that has never received an event from any host."""

    description = "empty store"

    def last_events(self) -> dict[str, datetime]:
        return {}

    def alert_timings(self, since: datetime) -> list[AlertTiming]:
        del since
        return []

    def incidents(self, since: datetime) -> list[IncidentReport] | None:
        del since
        return None


def _never_evidence(model: SiteModel, bare_output: str) -> Evidence:
    ev = Evidence()
    SocCollector(SilentSoc()).collect(model, ev)
    out = bare_output.replace("@@DCOPS@@ pki\n", "@@DCOPS@@ restic\n[]\n@@DCOPS@@ rc 0\n"
                              "@@DCOPS@@ pki\n")
    for host in model.hosts:
        sections = split(out)
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections, NOW)
    return ev


def test_host_without_events_or_snapshot_is_null_with_a_reason(
        tmp_path: Path, model: SiteModel, bare_output: str) -> None:
    ev = _never_evidence(model, bare_output)
    assert ev.get("h1", "backup.last_snapshot_age_h").value is None  # type: ignore[union-attr]
    report = Assessor(model, load_catalogue(), ev, Profile(), "tt12", NOW).assess("lgsp")
    paths = write_reports([report], tmp_path, inventory="test", version="0", pdf=False)
    doc = _strict(paths["json"].read_text(encoding="utf-8"))
    validate_findings(doc)
    findings = {f["control"]: f for f in doc["systems"][0]["findings"]}
    for control, fact, reason in (("MON-02", "soc.last_event_age_h", "no event in the store"),
                                  ("DAT-01", "backup.last_snapshot_age_h", "no snapshot")):
        assert findings[control]["verdict"] == "not_met", control
        obs = [o for c in findings[control]["checks"] if c["fact"] == fact
               for o in c["observations"]]
        assert {o["subject"] for o in obs} == {"h1", "h2"}
        for o in obs:
            assert o["observed"] is None and o["result"] == "fail"
            assert o["detail"].startswith("never") and reason in o["detail"], o
    _strict(strict_json(ev.to_dict()))
    html = paths["html"].read_text(encoding="utf-8")
    assert "Infinity" not in html and "inf<" not in html


def test_cli_evidence_json_is_strict(tmp_path: Path, model: SiteModel, bare_output: str) -> None:
    from dcops.cli import app

    recorded = tmp_path / "recorded.json"
    recorded.write_text(strict_json(_never_evidence(model, bare_output).to_dict()),
                        encoding="utf-8")
    root = Path(__file__).resolve().parents[3]
    result = CliRunner().invoke(app, ["audit", "run", "-i", str(root / "inventories" / "lab"),
                                      "--from-evidence", str(recorded), "--no-pdf",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    _strict((tmp_path / "out" / "findings.json").read_text(encoding="utf-8"))
    _strict((tmp_path / "out" / "evidence.json").read_text(encoding="utf-8"))


def test_infinity_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ComplianceError, match="NaN or Infinity"):
        strict_json({"age": float("inf")})


def test_recorded_evidence_with_infinity_is_rejected(tmp_path: Path) -> None:
    from dcops.cli import app

    recorded = tmp_path / "old.json"
    recorded.write_text('{"collected_at": "2026-11-22T00:00:00Z", "records": [], "facts": '
                        '{"h1": {"soc.last_event_age_h": {"value": Infinity, "record": "r"}}}}',
                        encoding="utf-8")
    root = Path(__file__).resolve().parents[3]
    result = CliRunner().invoke(app, ["audit", "run", "-i", str(root / "inventories" / "lab"),
                                      "--from-evidence", str(recorded), "--no-pdf",
                                      "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, ComplianceError)  # the entry point prints it, rc 1
    assert "old.json" in str(result.exception)
    assert "Infinity is not valid JSON" in str(result.exception)

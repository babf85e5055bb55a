"""Assessment on recorded evidence, and the three report formats."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dcops.compliance import Assessor, Document, Evidence, Profile, Verdict, load_catalogue
from dcops.compliance.assess import annual_period
from dcops.compliance.catalogue import Waiver
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, split
from dcops.compliance.report import validate_findings, write_reports
from dcops.errors import ComplianceError
from dcops.model import SiteModel

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def _evidence(outputs: dict[str, str]) -> Evidence:
    ev = Evidence()
    for host, output in outputs.items():
        sections = split(output)
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections, NOW)
    return ev


def _verdicts(model: SiteModel, ev: Evidence, profile: Profile | None = None,
              regime: str = "tt12") -> dict[str, Verdict]:
    report = Assessor(model, load_catalogue(), ev, profile or Profile(), regime, NOW).assess(
        "lgsp")
    return {f.control: f.verdict for f in report.findings}


def test_hardened_hosts_meet_the_server_controls(model: SiteModel, hardened_output: str) -> None:
    v = _verdicts(model, _evidence({"h1": hardened_output, "h2": hardened_output}))
    for cid in ("SRV-01", "SRV-02", "SRV-03", "SRV-04", "SRV-05", "SRV-06", "SRV-07", "SRV-08",
                "SRV-09", "SRV-10", "SRV-11", "SRV-12", "SRV-13", "SRV-14", "SRV-15", "SRV-16",
                "SRV-17", "SRV-18", "NET-04", "DAT-06"):
        assert v[cid] is Verdict.MET, cid
    assert v["SRV-19"] is Verdict.NOT_APPLICABLE  # level 4+
    assert v["MON-02"] is Verdict.MANUAL  # no SOC evidence collected


def test_one_bare_host_makes_controls_partly_met(model: SiteModel, hardened_output: str,
                                                 bare_output: str) -> None:
    v = _verdicts(model, _evidence({"h1": hardened_output, "h2": bare_output}))
    assert v["SRV-07"] is Verdict.PARTLY_MET
    v = _verdicts(model, _evidence({"h1": bare_output, "h2": bare_output}))
    assert v["SRV-07"] is Verdict.NOT_MET and v["SRV-10"] is Verdict.NOT_MET


def test_regime_changes_the_figure(model: SiteModel, hardened_output: str) -> None:
    out = hardened_output.replace("minlen = 14", "minlen = 12")
    ev = _evidence({"h1": out, "h2": out})
    assert _verdicts(model, ev, regime="tt12")["SRV-01"] is Verdict.MET
    assert _verdicts(model, ev, regime="nd331")["SRV-01"] is Verdict.NOT_MET


def test_manual_documents_expire(model: SiteModel) -> None:
    ev = Evidence()
    ev.documents = [Document("security_regulation", "Quy chế", date(2026, 3, 1)),
                    Document("annual_report", "Báo cáo", date(2024, 12, 20))]
    v = _verdicts(model, ev)
    assert v["GOV-01"] is Verdict.MET
    assert v["GOV-03"] is Verdict.NOT_MET
    assert v["GOV-04"] is Verdict.MANUAL


def test_annual_period_runs_15_12_to_14_12() -> None:
    assert annual_period(date(2026, 11, 22)) == (date(2025, 12, 15), date(2026, 12, 14))
    assert annual_period(date(2026, 12, 15)) == (date(2026, 12, 15), date(2027, 12, 14))


def test_unknown_system_is_a_clear_error(model: SiteModel) -> None:
    with pytest.raises(ComplianceError, match=r"no system 'nope'.*lgsp"):
        Assessor(model, load_catalogue(), Evidence(), Profile(), "tt12", NOW).assess("nope")


def test_reports_render_and_validate(tmp_path: Path, model: SiteModel, hardened_output: str,
                                     bare_output: str) -> None:
    profile = Profile(name="auditor", waivers=[Waiver("SRV-14", "CISO", "EDR", date(2027, 1, 1))])
    ev = _evidence({"h1": hardened_output, "h2": bare_output})
    report = Assessor(model, load_catalogue(), ev, profile, "tt12", NOW).assess("lgsp")
    paths = write_reports([report], tmp_path, inventory="test", version="0")
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    validate_findings(doc)
    srv07 = next(f for f in doc["systems"][0]["findings"] if f["control"] == "SRV-07")
    assert srv07["verdict"] == "partly_met"
    obs = srv07["checks"][0]["observations"]
    assert {o["subject"]: o["observed"] for o in obs} == {"h1": "no", "h2": "yes"}
    html = paths["html"].read_text(encoding="utf-8")
    assert "Đạt một phần / Partly met" in html and "<svg" in html and "CISO" in html
    assert report.evidence_hash in html
    # Every citation with its status; a clause the sources lack is shown as such, not invented.
    assert "TT 12/2022/TT-BTTTT Điều 9 khoản 7: " in html and "[đã kiểm chứng / verified]" in html
    assert "(điều khoản chưa xác định / clause not given by the sources)" in html
    assert "ISO/IEC 27001:2022 6.1.2 [suy luận / inference]" in html  # GOV-08 risk assessment
    assert "14423:2026" not in html and "Đ30" not in html
    assert srv07["refs"]["tt12"][1]["clause"] == "7.2.2"
    del doc["systems"][0]["findings"][0]["refs"]["tt12"][0]["status"]
    with pytest.raises(ComplianceError, match="status"):
        validate_findings(doc)
    doc["systems"][0]["findings"][0]["refs"]["tt12"][0]["status"] = "verified"
    doc["systems"][0]["findings"][0]["verdict"] = "fine"
    with pytest.raises(ComplianceError, match="verdict"):
        validate_findings(doc)
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(paths["pdf"]), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 3
    from PIL import Image

    for page in pages:
        lo, hi = Image.open(page).convert("L").getextrema()
        assert lo < 128 < hi, f"{page.name} is blank"


def test_evidence_round_trips_with_the_same_hash(hardened_output: str) -> None:
    ev = _evidence({"h1": hardened_output})
    again = Evidence.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert again.digest() == ev.digest()

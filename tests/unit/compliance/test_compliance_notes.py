"""Auditor's notes (compliance/notes.yml): loaded with file:line errors, printed next to the
verdict in the report, and checked for coverage (every not-met verdict explained, none stale)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcops.compliance import Assessor, CatalogueError, Evidence, Profile, load_catalogue
from dcops.compliance.findings import Verdict, to_json
from dcops.compliance.notes import coverage, load_notes
from dcops.compliance.report import render_html, validate_findings
from dcops.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "inventories" / "lab"
NOTES = """\
# reviewed notes
all:
  vars:
    dcops_compliance_notes:
      NET-10:
        kind: expected
        vi: Các thiết bị mô phỏng chỉ hỗ trợ SNMP v2c.
        en: The simulated devices speak SNMP v2c only.
      SRV-14:
        kind: gap
        system: lgsp
        vi: Chưa cài phần mềm phòng chống mã độc.
        en: No anti-malware installed yet.
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notes.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_notes_load_in_inventory_form(tmp_path: Path) -> None:
    notes = load_notes(_write(tmp_path, NOTES), load_catalogue(), ["lgsp", "dc_infra"])
    assert [(n.control, n.kind, n.system) for n in notes] == [
        ("NET-10", "expected", ""), ("SRV-14", "gap", "lgsp")]
    assert notes[0].source.endswith("notes.yml:5") and notes[1].text_en.startswith("No anti")


@pytest.mark.parametrize(("old", "new", "line", "key", "words"), [
    ("SRV-14:", "SRV-99:", 9, "all.vars.dcops_compliance_notes.SRV-99", "not a control"),
    ("kind: gap", "kind: later", 10, "SRV-14.kind", "expected one of expected, gap"),
    ("system: lgsp", "system: portal", 11, "SRV-14.system", "not in the inventory"),
    ("        en: No anti-malware installed yet.\n", "", 9, "SRV-14.en", "English explanation"),
    ("system: lgsp", "systems: lgsp", 11, "SRV-14.systems", "unknown field 'systems'"),
])
def test_a_bad_note_names_file_line_and_key(tmp_path: Path, old: str, new: str, line: int,
                                            key: str, words: str) -> None:
    path = _write(tmp_path, NOTES.replace(old, new))
    with pytest.raises(CatalogueError) as err:
        load_notes(path, load_catalogue(), ["lgsp", "dc_infra"])
    assert (err.value.file, err.value.line) == (str(path), line), str(err.value)
    assert err.value.key is not None and err.value.key.endswith(key), err.value.key
    assert words in str(err.value)


def test_notes_go_next_to_the_verdict_and_coverage_finds_gaps_and_stale_notes(
        tmp_path: Path) -> None:
    model = load_inventory(LAB)
    catalogue = load_catalogue()
    notes = tuple(load_notes(_write(tmp_path, NOTES), catalogue, model.systems))
    report = Assessor(model, catalogue, Evidence(), Profile(), "tt12",
                      datetime(2026, 6, 1, tzinfo=UTC), notes).assess("lgsp")
    findings = {f.control: f for f in report.findings}
    assert findings["SRV-14"].note is not None and findings["SRV-14"].note["kind"] == "gap"
    assert findings["NET-10"].note is not None
    other = Assessor(model, catalogue, Evidence(), Profile(), "tt12",
                     datetime(2026, 6, 1, tzinfo=UTC), notes).assess("dc_infra")
    assert {f.control: f for f in other.findings}["SRV-14"].note is None  # lgsp's own note

    # no evidence: every control is manual review, which a note may explain (not stale)
    assert findings["SRV-14"].verdict is Verdict.MANUAL
    assert coverage(report).unexplained == () and coverage(report).stale == ()
    findings["SRV-14"].verdict = Verdict.MET
    findings["SRV-06"].verdict = Verdict.NOT_MET
    cover = coverage(report)
    assert cover.unexplained == ("SRV-06",) and cover.stale == ("SRV-14 (met)",)

    findings["SRV-14"].verdict = Verdict.NOT_MET
    html = render_html([report], "inventories/lab")
    block = html[html.index('<h3>SRV-14 '):]
    block = block[:block.index("</div>", block.index('class="note note-gap"'))]
    assert "Chưa đạt / Not met" in block and "Thiếu sót cần khắc phục" in block
    assert "Gap to remediate" in block and "No anti-malware installed yet." in block
    table = html[html.index("Explanations of the not-met verdicts"):]
    table = table[:table.index("</table>")]
    assert "SRV-06" in table and "No explanation" in table and "No anti-malware" in table
    document = to_json([report], inventory="inventories/lab", tool_version="test")
    validate_findings(json.loads(json.dumps(document)))

"""Every citation of the catalogue names its source, a real clause (or says there is none), and a
status no stronger than its source; the roles cite the catalogue's TCVN 11930 clauses."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from dcops.compliance import CatalogueError, load_catalogue
from dcops.compliance.catalogue import (
    ANNEX_A,
    CATALOGUE_DIR,
    ISO_CLAUSES,
    format_citation,
    load_sources,
)

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "playbooks" / "roles"
GOOD_NOTE = 'note: "sources give no article for this topic"'


def _catalogue(tmp_path: Path, tt12: str) -> Path:
    """A one-control catalogue (with the shipped sources table) whose refs.tt12 is `tt12`."""
    (tmp_path / "x.yml").write_text(
        "- id: GOV-99\n  group: GOV\n  name_vi: Thử\n  name_en: Test\n  levels: [3]\n"
        "  refs:\n"
        f"    tt12:\n      - {tt12}\n"
        f"    nd331:\n      - {{source: nd331, clause: null, status: inference, {GOOD_NOTE}}}\n"
        "    iso27001:\n      - {source: iso27001, clause: A.5.1, status: inference}\n"
        "  evidence: manual\n  document: doc\n", encoding="utf-8")
    return tmp_path


def test_the_fixture_catalogue_is_valid_so_the_failures_below_are_the_citations(
        tmp_path: Path) -> None:
    cat = _catalogue(tmp_path, '{source: tt12, clause: "Điều 9 khoản 7", status: verified}')
    cite = load_catalogue(cat)["GOV-99"].refs["tt12"][0]
    assert cite["document"] == "TT 12/2022/TT-BTTTT" and cite["clause"] == "Điều 9 khoản 7"


@pytest.mark.parametrize(("citation", "message"), [
    ("{clause: \"Điều 9 khoản 7\", status: verified}", r"x\.yml \(GOV-99\).*names no source"),
    ("{source: tt99, clause: null, status: secondary, note: n}", r"unknown source 'tt99'"),
    ("{source: nd331, clause: \"Điều 13 khoản 3\", status: verified}",
     r"status verified but source nd331 supports at most secondary"),
    ("{source: tt12, clause: null, status: verified}", r"clause: null needs a note"),
    ("{source: tt12, status: verified, note: n}", r"citation has no clause"),
    ("{source: tt12, clause: \"Đ30\", status: secondary}", r"clause 'Đ30' of tt12: expected"),
    ("{source: tt12, clause: null, status: secondary, item: \"NĐ 331/2026 Đ30\", note: n}",
     r"article reference or a placeholder"),
    ("{source: tt12, clause: null, status: secondary, item: \"-\", note: n}", r"placeholder"),
    ("{source: tcvn11930, clause: \"-\", status: inference}", r"expected a clause number"),
    ("{source: tt12, clause: null, status: verified, note: n, page: 3}",
     r"unknown citation field page"),
    ("{source: iso27001, clause: A.5.38, status: inference}", r"Annex A control"),
])
def test_bad_citation_is_rejected_naming_file_control_and_field(
        tmp_path: Path, citation: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_catalogue(tmp_path, citation))


def test_every_source_key_resolves_and_every_source_says_where_it_is_listed() -> None:
    sources = load_sources()
    assert {"tt12", "nd85", "tcvn11930", "nd331", "tcvn14423", "iso27001"} <= set(sources)
    for source in sources.values():
        assert "COMPLIANCE-SOURCES.md §" in source.listed_in, source.key
    used = {c["source"] for ctl in load_catalogue().values() for cs in ctl.refs.values()
            for c in cs}
    assert used <= set(sources) and {"tt12", "nd331", "tcvn14423"} <= used


def test_tcvn_14423_is_the_2025_standard_everywhere() -> None:
    assert load_sources()["tcvn14423"].short == "TCVN 14423:2025"
    places = [*CATALOGUE_DIR.glob("*.yml"), *(CATALOGUE_DIR.parent / "templates").glob("*"),
              *(CATALOGUE_DIR.parent / "profiles").glob("*"), *CATALOGUE_DIR.parent.glob("*.py"),
              ROOT / "docs" / "compliance.md", ROOT / "README.md",
              *(p for p in ROLES.rglob("*") if p.is_file())]
    stale = [str(p) for p in places
             if "14423:2026" in p.read_text(encoding="utf-8").replace(
                 "calls it TCVN 14423:2026", "")]
    assert not stale


def test_no_article_stands_in_for_many_topics() -> None:
    """The finding behind issue 16: one decree article cited by 51 of 58 controls."""
    counts: Counter[tuple[str, str]] = Counter()
    for control in load_catalogue().values():
        for cites in control.refs.values():
            for c in {(c["source"], c["clause"]) for c in cites if c["clause"]}:
                if c[0] not in ("iso27001", "tcvn11930", "cv1552"):
                    counts[c] += 1
    assert counts and max(counts.values()) <= 3, counts.most_common(3)


def test_iso_refs_are_real_2022_controls_and_risk_assessment_is_a_main_clause() -> None:
    assert len(ANNEX_A) == 93 and "A.5.37" in ANNEX_A and "A.8.34" in ANNEX_A
    assert "A.5.38" not in ANNEX_A and "A.6.9" not in ANNEX_A and "A.7.15" not in ANNEX_A
    catalogue = load_catalogue()
    for control in catalogue.values():
        for c in control.refs["iso27001"]:
            assert c["clause"] in ANNEX_A or c["clause"] in ISO_CLAUSES, control.id
            assert c["clause"] in ANNEX_A or c["note"], control.id  # a main clause says why
    gov08 = {c["clause"] for c in catalogue["GOV-08"].refs["iso27001"]}
    assert gov08 == {"6.1.2", "8.2"}  # not A.5.7 threat intelligence


def test_tcvn_11930_clauses_use_one_numbering_the_level_sections() -> None:
    """Level N's requirements are §(N+4) of TCVN 11930:2017: a control cites the section of its
    first level (at least level 3, the provincial DC's), or a higher one where the requirement
    first appears; management groups are x.1.1 to x.1.5, technical x.2.1 to x.2.4."""
    for control in load_catalogue().values():
        for c in control.refs["tt12"]:
            if c["source"] != "tcvn11930" or c["clause"] is None:
                continue
            section, part, group = (int(x) for x in c["clause"].split("."))
            assert 9 >= section >= max(3, min(control.levels)) + 4, (control.id, c["clause"])
            assert (part, group) in {(1, g) for g in range(1, 6)} | {(2, g) for g in range(1, 5)}


_ROLE_CITE = re.compile(r"TCVN 11930 §?(\d+(?:\.\d+)+)((?:[ /]+[A-Z]{3}-\d{2})*)")


def _role_citations() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in sorted(p for p in ROLES.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _ROLE_CITE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", m.group(1),
                          re.findall(r"[A-Z]{3}-\d{2}", m.group(2))))
    return found


def test_roles_cite_the_catalogues_clause_for_the_controls_they_name() -> None:
    catalogue = load_catalogue()
    found = _role_citations()
    assert len(found) >= 40  # the baseline's task names, templates, defaults and specs
    for where, clause, ids in found:
        assert ids, f"{where}: TCVN 11930 {clause} names no catalogue control"
        for cid in ids:
            assert cid in catalogue, f"{where}: unknown control {cid}"
            clauses = {c["clause"] for c in catalogue[cid].refs["tt12"]
                       if c["source"] == "tcvn11930"}
            assert clause in clauses, f"{where}: TCVN 11930 {clause} but {cid} cites {clauses}"


def test_role_check_catches_the_old_numbering() -> None:
    m = _ROLE_CITE.search("TT12 L3 chính sách mật khẩu / TCVN 11930 8.3.1 | pwquality")
    assert m and m.group(1) == "8.3.1" and not re.findall(r"[A-Z]{3}-\d{2}", m.group(2))


def test_citations_print_their_status_in_both_languages() -> None:
    catalogue = load_catalogue()
    gov01 = format_citation(catalogue["GOV-01"].refs["tt12"][0])
    assert gov01.startswith("TT 12/2022/TT-BTTTT Điều 9 khoản 7: ")
    assert gov01.endswith("[đã kiểm chứng / verified]")
    unknown = format_citation(catalogue["SRV-01"].refs["nd331"][0])
    assert "(điều khoản chưa xác định / clause not given by the sources)" in unknown
    assert format_citation(catalogue["SRV-12"].refs["nd331"][1]).endswith(
        "[nguồn thứ cấp / secondary]")

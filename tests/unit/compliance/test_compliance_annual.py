"""The annual report's CSV (read by csv.DictReader) and XLSX (opened by openpyxl)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dcops.compliance import Assessor, Evidence, Profile, load_catalogue
from dcops.compliance.annual import (
    COLUMNS,
    TITLE,
    annual_csv,
    annual_html,
    annual_rows,
    annual_xlsx,
    write_annual,
)
from dcops.compliance.catalogue import Waiver
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, split
from dcops.compliance.findings import SystemReport
from dcops.model import SiteModel

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
PERIOD = "2025-12-15 to 2026-12-14"
GAP = "Chưa có bằng chứng / No evidence yet"
TT12 = {"Đáp ứng đầy đủ", "Đáp ứng một phần", "Chưa đáp ứng"}


@pytest.fixture
def report(model: SiteModel, hardened_output: str) -> SystemReport:
    """h1 hardened, h2 hardened but its sshd -T unread (partly met); no documents."""
    ev = Evidence()
    for host in ("h1", "h2"):
        sections = split(hardened_output)
        if host == "h2":
            del sections["sshd"]
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections, NOW)
    profile = Profile(waivers=[Waiver("GOV-04", "Sở TT", "đang xây dựng", date(2027, 1, 1))])
    return Assessor(model, load_catalogue(), ev, profile, "tt12", NOW).assess("lgsp")


def _by_control(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["Mã / Control"]: r for r in rows}


def test_csv_header_is_line_one_and_a_dict_reader_reads_every_row(report: SystemReport) -> None:
    rows = annual_rows([report])
    text = annual_csv(rows, PERIOD)
    assert text.splitlines()[0].startswith("Kỳ báo cáo / Period,Hệ thống / System,")
    read = list(csv.DictReader(io.StringIO(text)))
    assert read and list(read[0]) == COLUMNS and len(read) == len(rows)
    assert {r["Kỳ báo cáo / Period"] for r in read} == {PERIOD}
    assert {r["Tình trạng (TT12)"] for r in read} <= TT12  # only Circular 12's three
    by = _by_control(read)
    met = by["SRV-01"]
    assert (met["Tình trạng (TT12)"], met["Status (TT12)"], met[GAP]) == (
        "Đáp ứng đầy đủ", "Fully met", "")
    # no evidence yet: reported as not met, and the separate column says why
    manual = by["GOV-03"]
    assert (manual["Tình trạng (TT12)"], manual["Status (TT12)"], manual[GAP]) == (
        "Chưa đáp ứng", "Not met", "Có / Yes")
    assert "evidence registry" in manual["Ghi chú / Note"]
    # h2's sshd -T is missing: partly met, and flagged as an evidence gap
    partly = by["SRV-06"]
    assert (partly["Status (TT12)"], partly[GAP]) == ("Partly met", "Một phần / Partly")
    assert "incomplete evidence for: h2" in partly["Ghi chú / Note"]
    gaps = {r[GAP] for r in read}
    assert gaps == {"", "Có / Yes", "Một phần / Partly"}
    assert "waiver active: Sở TT, 2027-01-01" in by["GOV-04"]["Ghi chú / Note"]
    assert "SRV-19" not in by  # level 4+: not applicable rows are left out


def test_xlsx_has_the_bilingual_title_the_same_rows_and_a_legend(
        report: SystemReport, tmp_path: Path) -> None:
    rows = annual_rows([report])
    path = tmp_path / "annual.xlsx"
    annual_xlsx(rows, PERIOD, path)
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    assert (ws["A1"].value, ws["A2"].value) == TITLE
    assert "Thông tư 12/2022" in TITLE[0] and "Circular 12/2022" in TITLE[1]
    assert ws["A3"].value == f"Kỳ báo cáo / Period: {PERIOD}"
    header = [c.value for c in ws[5]]
    assert header == COLUMNS
    assert ws.cell(row=5, column=COLUMNS.index(GAP) + 1).comment is not None
    table = [[c.value for c in line] for line in ws.iter_rows(min_row=6)]
    from_csv = list(csv.reader(io.StringIO(annual_csv(rows, PERIOD))))[1:]
    assert [[str(v) if v is not None else "" for v in line] for line in table] == from_csv
    legend = wb.worksheets[1]
    explained = {line[0].value: line[2].value for line in legend.iter_rows(min_row=2)}
    assert "no automatic evidence" in explained[GAP] and "reported as not met" in explained[
        "Tình trạng (TT12) / Status (TT12)"]


def test_html_and_pdf_carry_the_same_table(report: SystemReport, tmp_path: Path) -> None:
    from html.parser import HTMLParser

    rows = annual_rows([report])

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    html = annual_html(rows, PERIOD)
    parser.feed(html)
    assert TITLE[0] in html and TITLE[1] in html and PERIOD in html
    assert parser.rows[0] == COLUMNS[1:]  # the period is printed once, above the table
    from_csv = [line[1:] for line in csv.reader(io.StringIO(annual_csv(rows, PERIOD)))][1:]
    assert parser.rows[1:1 + len(rows)] == from_csv
    paths = write_annual(rows, PERIOD, tmp_path)
    assert set(paths) == {"csv", "xlsx", "html", "pdf"}
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-" and paths["pdf"].stat().st_size > 10_000


def test_reference_column_cites_document_clause_and_status(report: SystemReport) -> None:
    rows = {r.control: r for r in annual_rows([report])}
    assert rows["GOV-01"].reference.startswith("TT 12/2022/TT-BTTTT Điều 9 khoản 7: ")
    assert "[đã kiểm chứng / verified]" in rows["GOV-01"].reference
    assert "TCVN 11930:2017 7.1.1 [suy luận / inference]" in rows["GOV-01"].reference
    unknown = "(điều khoản chưa xác định / clause not given by the sources)"
    assert unknown in rows["SRV-01"].reference
    html = annual_html(rows=list(rows.values()), period=PERIOD)
    assert "Căn cứ / Reference" in html and "nguồn thứ cấp" in html

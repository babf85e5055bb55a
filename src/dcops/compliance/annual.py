"""Circular 12's annual report: per-requirement status (fully / partly / not met) per system.

Circular 12's form knows three statuses. A requirement with no evidence yet cannot be reported as
met, so its TT12 status is "not met" and a separate column says that evidence is missing (and
why, in the note); the CSV (header on line one, for any CSV reader) and the XLSX workbook (with
the bilingual title and a legend) carry the same rows, and so do the HTML and PDF table.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from dcops.compliance.catalogue import format_citation
from dcops.compliance.findings import SystemReport, Verdict

STATUS = {
    Verdict.MET: ("Đáp ứng đầy đủ", "Fully met"),
    Verdict.PARTLY_MET: ("Đáp ứng một phần", "Partly met"),
    Verdict.NOT_MET: ("Chưa đáp ứng", "Not met"),
    Verdict.MANUAL: ("Chưa có bằng chứng", "No evidence yet"),
    Verdict.NOT_APPLICABLE: ("Không áp dụng", "Not applicable"),
}
# Circular 12's three statuses: a requirement without evidence is reported as not met.
TT12_STATUS = {**{v: STATUS[v] for v in (Verdict.MET, Verdict.PARTLY_MET, Verdict.NOT_MET)},
               Verdict.MANUAL: STATUS[Verdict.NOT_MET]}
NO_EVIDENCE = ("Chưa có bằng chứng", "No evidence yet")
GAP = {"none": "", "all": "Có / Yes", "some": "Một phần / Partly"}
TITLE = ("Báo cáo tình hình bảo đảm an toàn hệ thống thông tin theo cấp độ (Thông tư 12/2022/"
         "TT-BTTTT)", "Annual report on information system security by level (Circular "
         "12/2022/TT-BTTTT)")
COLUMNS = ["Kỳ báo cáo / Period", "Hệ thống / System", "Cấp độ / Level", "Mã / Control",
           "Yêu cầu", "Requirement", "Căn cứ / Reference", "Tình trạng (TT12)", "Status (TT12)",
           f"{NO_EVIDENCE[0]} / {NO_EVIDENCE[1]}", "Ghi chú / Note"]
LEGEND = [
    ("Tình trạng (TT12) / Status (TT12)",
     "Ba mức của Thông tư 12: Đáp ứng đầy đủ, Đáp ứng một phần, Chưa đáp ứng. Yêu cầu chưa có "
     "bằng chứng được báo cáo là Chưa đáp ứng.",
     "Circular 12's three statuses: fully met, partly met, not met. A requirement with no "
     "evidence yet is reported as not met."),
    (f"{NO_EVIDENCE[0]} / {NO_EVIDENCE[1]}",
     "Có: chưa thu thập được bằng chứng tự động và chưa có tài liệu trong sổ bằng chứng; cần "
     "kiểm tra viên đánh giá. Một phần: thiếu bằng chứng của một số máy chủ. Trống: đủ bằng "
     "chứng. Lý do ở cột Ghi chú.",
     "Yes: no automatic evidence was collected and no document is in the evidence registry; an "
     "auditor must judge. Partly: evidence is missing for some hosts. Empty: the evidence is "
     "complete. The note column gives the reason."),
    ("Căn cứ / Reference",
     "Văn bản, điều khoản và mức kiểm chứng của từng căn cứ: đã kiểm chứng (đọc trong văn bản "
     "gốc), nguồn thứ cấp, suy luận. \"Điều khoản chưa xác định\": nguồn chưa cho điều khoản.",
     "Document, clause and how each citation was checked: verified (read in the primary text), "
     "secondary source, inference. \"Clause not given by the sources\": no clause is known yet."),
    ("Kỳ báo cáo / Period",
     "Từ 15/12 năm trước đến 14/12 năm báo cáo (Thông tư 12).",
     "15 December of the previous year to 14 December of the reporting year (Circular 12)."),
]


@dataclass(frozen=True, slots=True)
class AnnualRow:
    """One requirement row of the annual report."""

    system: str
    level: int
    control: str
    requirement_vi: str
    requirement_en: str
    reference: str
    status: Verdict
    note: str
    evidence_gap: str = "none"  # none | all (no evidence yet) | some (some hosts lack it)

    def cells(self, period: str) -> list[str | int]:
        """The row in COLUMNS order."""
        vi, en = TT12_STATUS[self.status]
        return [period, self.system, self.level, self.control, self.requirement_vi,
                self.requirement_en, self.reference, vi, en, GAP[self.evidence_gap], self.note]


def annual_rows(reports: list[SystemReport]) -> list[AnnualRow]:
    """Rows for every applicable requirement of every system, in control order."""
    rows = []
    for r in reports:
        for f in r.findings:
            if f.verdict is Verdict.NOT_APPLICABLE:
                continue
            reference = "; ".join(format_citation(c) for c in f.refs.get(r.regime) or [])
            gap = ("all" if f.verdict is Verdict.MANUAL else
                   "some" if f.reason.startswith("incomplete evidence") else "none")
            note = f.reason
            if f.waiver:
                note += (f" (ngoại lệ / waiver {f.waiver['status']}: {f.waiver['owner']}, "
                         f"{f.waiver['expires']})")
            rows.append(AnnualRow(r.system, r.level, f.control, f.name_vi, f.name_en,
                                  reference, f.verdict,
                                  note, gap))
    return rows


def annual_csv(rows: list[AnnualRow], period: str) -> str:
    """The table as CSV (UTF-8, no BOM): the header is line one, one line per requirement."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in rows:
        w.writerow(row.cells(period))
    return buf.getvalue()


def annual_xlsx(rows: list[AnnualRow], period: str, path: Path) -> None:
    """The same table as an XLSX workbook: bilingual title, period, header, rows, and a legend."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has one sheet
    ws.title = "Bao cao nam - Annual"
    ws["A1"] = TITLE[0]
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = TITLE[1]
    ws["A2"].font = Font(italic=True, size=12)
    ws["A3"] = f"Kỳ báo cáo / Period: {period}"
    header_row = 5
    for col, name in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=header_row, column=col, value=name)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    gap_col = COLUMNS.index(f"{NO_EVIDENCE[0]} / {NO_EVIDENCE[1]}") + 1
    ws.cell(row=header_row, column=gap_col).comment = Comment(
        f"{LEGEND[1][1]}\n\n{LEGEND[1][2]}", "dcops")
    for i, row in enumerate(rows, start=header_row + 1):
        for col, value in enumerate(row.cells(period), start=1):
            ws.cell(row=i, column=col, value=value).alignment = Alignment(
                wrap_text=True, vertical="top")
    widths = [24, 14, 8, 9, 40, 40, 34, 18, 14, 18, 60]
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = f"A{header_row + 1}"
    if rows:
        last = get_column_letter(len(COLUMNS))
        ws.auto_filter.ref = f"A{header_row}:{last}{header_row + len(rows)}"
    legend = wb.create_sheet("Chu giai - Legend")
    legend.append(["Cột / Column", "Giải thích", "Explanation"])
    for cell in legend[1]:
        cell.font = Font(bold=True)
    for entry in LEGEND:
        legend.append(list(entry))
    for letter, size in zip("ABC", (34, 70, 70), strict=True):
        legend.column_dimensions[letter].width = size
    for line in legend.iter_rows(min_row=2):
        for cell in line:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    wb.save(path)


def annual_html(rows: list[AnnualRow], period: str) -> str:
    """The table as one HTML document (title, period, rows, legend) for print and PDF."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    return env.get_template("annual.html.j2").render(
        rows=rows, period=period, title=TITLE, columns=COLUMNS, legend=LEGEND)


def write_annual(rows: list[AnnualRow], period: str, out: Path, *,
                 pdf: bool = True) -> dict[str, Path]:
    """Write annual.csv, annual.xlsx, annual.html and (unless pdf=False) annual.pdf."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"annual.{kind}" for kind in ("csv", "xlsx", "html")}
    paths["csv"].write_text(annual_csv(rows, period), encoding="utf-8")
    annual_xlsx(rows, period, paths["xlsx"])
    html = annual_html(rows, period)
    paths["html"].write_text(html, encoding="utf-8")
    if pdf:
        from weasyprint import HTML

        paths["pdf"] = out / "annual.pdf"
        HTML(string=html, base_url=str(out)).write_pdf(paths["pdf"])
    return paths

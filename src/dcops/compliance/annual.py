"""Circular 12's annual report: per-requirement status (fully / partly / not met) per system."""

from __future__ import annotations

from dataclasses import dataclass

from dcops.compliance.findings import SystemReport, Verdict

STATUS = {
    Verdict.MET: ("Đáp ứng đầy đủ", "Fully met"),
    Verdict.PARTLY_MET: ("Đáp ứng một phần", "Partly met"),
    Verdict.NOT_MET: ("Chưa đáp ứng", "Not met"),
    Verdict.MANUAL: ("Chưa có bằng chứng", "No evidence yet"),
    Verdict.NOT_APPLICABLE: ("Không áp dụng", "Not applicable"),
}


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


def annual_rows(reports: list[SystemReport]) -> list[AnnualRow]:
    """Rows for every applicable requirement of every system, in control order."""
    rows = []
    for r in reports:
        for f in r.findings:
            if f.verdict is Verdict.NOT_APPLICABLE:
                continue
            ref = f.refs.get(r.regime) or {}
            clause = ref.get("tcvn11930") or ref.get("tcvn14423") or ""
            rows.append(AnnualRow(r.system, r.level, f.control, f.name_vi, f.name_en,
                                  f"{ref.get('item', '')} §{clause}".strip(), f.verdict,
                                  f.reason))
    return rows


def annual_csv(rows: list[AnnualRow], period: str) -> str:
    """The table as CSV (UTF-8, with header) for the report annex."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([f"Kỳ báo cáo / Period {period}"])
    w.writerow(["Hệ thống/System", "Cấp độ/Level", "Mã/Control", "Yêu cầu", "Requirement",
                "Căn cứ/Reference", "Tình trạng", "Status", "Ghi chú/Note"])
    for row in rows:
        vi, en = STATUS[row.status]
        w.writerow([row.system, row.level, row.control, row.requirement_vi,
                    row.requirement_en, row.reference, vi, en, row.note])
    return buf.getvalue()

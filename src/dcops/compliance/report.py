"""Render assessment reports: findings.json (schema-validated), report.html (Jinja2), report.pdf."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import jsonschema
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from dcops.compliance.catalogue import GROUPS, format_citation
from dcops.compliance.evidence import Evidence, strict_json, strict_loads
from dcops.compliance.findings import (
    VERDICT_LABELS,
    Observation,
    SystemReport,
    Verdict,
    to_json,
)
from dcops.compliance.manifest import MANIFEST_FILE, Approval, build, dumps, finish
from dcops.compliance.notes import EXPLAIN
from dcops.errors import ComplianceError

HERE = Path(__file__).parent
SCHEMA_FILE = HERE / "findings.schema.json"
COLOURS = {Verdict.MET: "#2e7d32", Verdict.PARTLY_MET: "#f9a825", Verdict.NOT_MET: "#c62828",
           Verdict.NOT_APPLICABLE: "#9e9e9e", Verdict.MANUAL: "#1565c0"}
REGIME_LABELS = {
    "tt12": ("Thông tư 12/2022/TT-BTTTT + TCVN 11930:2017",
             "Circular 12/2022 + TCVN 11930:2017"),
    "nd331": ("Nghị định 331/2026/NĐ-CP + TCVN 14423:2025", "Decree 331/2026 + TCVN 14423:2025"),
}


def validate_findings(document: dict[str, Any]) -> None:
    """Raise ComplianceError when findings.json does not follow its published schema."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        raise ComplianceError(f"findings.json invalid at /{path}: {exc.message}") from exc


def summary_svg(report: SystemReport, width: int = 680) -> Markup:
    """Stacked horizontal bars per requirement group (inline SVG, no scripts)."""
    bar_h, gap, label_w = 22, 8, 270
    groups = [g for g in GROUPS if any(f.group == g for f in report.findings)]
    height = len(groups) * (bar_h + gap) + 50
    scale = width - label_w - 50
    total_max = max((sum(report.counts(g).values()) for g in groups), default=1) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="summary">']
    for i, group in enumerate(groups):
        y = i * (bar_h + gap)
        vi, en = GROUPS[group]
        parts.append(f'<text x="0" y="{y + 10}" font-size="9">{escape(group)} {escape(vi)}</text>'
                     f'<text x="0" y="{y + 20}" font-size="8" fill="#555">{escape(en)}</text>')
        x = float(label_w)
        for verdict, n in report.counts(group).items():
            if not n:
                continue
            w = n / total_max * scale
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{COLOURS[Verdict(verdict)]}"><title>{verdict}: {n}</title></rect>')
            parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 15}" font-size="10" fill="#fff" '
                         f'text-anchor="middle">{n}</text>')
            x += w
    y = len(groups) * (bar_h + gap) + 10
    for i, verdict in enumerate(Verdict):
        vi, en = VERDICT_LABELS[verdict]
        x, yy = (i % 3) * 226, y + (i // 3) * 16
        parts.append(f'<rect x="{x}" y="{yy}" width="10" height="10" fill="{COLOURS[verdict]}"/>'
                     f'<text x="{x + 14}" y="{yy + 9}" font-size="8.5">{escape(vi)} / '
                     f'{escape(en)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """Observations of one check that say the same thing (result, value, detail, excerpt,
    command), shown once with every subject: at 100 hosts a check is a few rows, not 100.
    Each subject's own record, source and hash stay in findings.json and manifest.json."""

    subjects: tuple[str, ...]
    result: str
    observed: Any
    detail: str
    excerpt: str
    command: str
    sources: tuple[str, ...]
    first: str
    last: str


def observation_rows(observations: Sequence[Observation]) -> list[ObservationRow]:
    """Group `observations` by what they saw, in order of first appearance."""
    groups: dict[tuple[str, str, str, str, str], list[Observation]] = {}
    for o in observations:
        key = (o.result, json.dumps(o.observed, sort_keys=True, default=str), o.detail,
               o.excerpt, o.command)
        groups.setdefault(key, []).append(o)
    rows = []
    for members in groups.values():
        o = members[0]
        times = sorted(m.time for m in members if m.time)
        rows.append(ObservationRow(
            tuple(m.subject for m in members), o.result, o.observed, o.detail, o.excerpt,
            o.command, tuple(dict.fromkeys(m.source for m in members if m.source)),
            times[0] if times else "", times[-1] if times else ""))
    return rows


def render_html(reports: list[SystemReport], inventory: str, *, manifest_sha256: str = "",
                approval: Approval | None = None,
                crosscheck: dict[str, Any] | None = None) -> str:
    """The report as one HTML document (all systems), Vietnamese and English labels; with a
    loaded crosscheck.json, its agreement table as a section of its own."""
    from dcops.compliance.crosscheck.compare import VERDICT_LABELS as XC_LABELS

    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    template = env.get_template("report.html.j2")
    return template.render(reports=reports, inventory=inventory, groups=GROUPS,
                           labels=VERDICT_LABELS, colours=COLOURS, regimes=REGIME_LABELS,
                           svg=summary_svg, Verdict=Verdict, manifest_sha256=manifest_sha256,
                           cite=format_citation, explain=sorted(EXPLAIN),
                           approval=(approval or Approval()).rows(),
                           observation_rows=observation_rows, crosscheck=crosscheck,
                           xc_labels=XC_LABELS,
                           crosscheck_same_evidence=crosscheck is not None and all(
                               crosscheck.get("evidence_sha256") == r.evidence_hash
                               for r in reports))


def write_reports(reports: list[SystemReport], out: Path, *, inventory: str, version: str,
                  pdf: bool = True, evidence: Evidence | None = None,
                  approval: Approval | None = None,
                  crosscheck: Path | None = None) -> dict[str, Path]:
    """Write findings.json, report.html and (unless pdf=False) report.pdf into `out`; with the
    run's `evidence` also manifest.json, which the PDF carries as an attachment; with a
    `crosscheck` file (crosscheck.json in `out`), its table in the report and its hash in the
    manifest."""
    from dcops.compliance.crosscheck.compare import load_document

    out.mkdir(parents=True, exist_ok=True)
    document = strict_loads(strict_json(to_json(reports, inventory=inventory,
                                                tool_version=version)))
    validate_findings(document)
    paths = {"json": out / "findings.json", "html": out / "report.html"}
    paths["json"].write_text(strict_json(document, indent=2), encoding="utf-8")
    xc = None
    if crosscheck is not None:
        if crosscheck.parent.resolve() != out.resolve():
            raise ComplianceError(f"{crosscheck}: expected crosscheck.json inside {out} (the "
                                  "manifest names files beside the report)")
        try:
            xc = load_document(crosscheck.read_text(encoding="utf-8"), str(crosscheck))
        except OSError as exc:
            raise ComplianceError(f"{crosscheck}: {exc.strerror}") from exc
    manifest = (build(evidence, paths["json"], version=version, inventory=inventory,
                      approval=approval or Approval(), crosscheck=crosscheck)
                if evidence is not None else None)
    html = render_html(reports, inventory, approval=approval, crosscheck=xc,
                       manifest_sha256=manifest["manifest_sha256"] if manifest else "")
    paths["html"].write_text(html, encoding="utf-8")
    attachments: list[Any] = []
    if manifest is not None:
        manifest = finish(manifest, paths["html"])
        paths["manifest"] = out / MANIFEST_FILE
        paths["manifest"].write_text(dumps(manifest), encoding="utf-8")
        attachments.append(paths["manifest"])
    if pdf:
        from weasyprint import HTML, Attachment

        paths["pdf"] = out / "report.pdf"
        HTML(string=html, base_url=str(out)).write_pdf(
            paths["pdf"], attachments=[Attachment(filename=str(a), name=a.name,
                                                  description="dcops evidence manifest")
                                       for a in attachments])
    return paths

"""The result of an assessment: a finding per control, per system, with the evidence behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = "1.0"


class Verdict(StrEnum):
    """The status of a control (the annual report's fully / partly / not met, plus two more)."""

    MET = "met"
    PARTLY_MET = "partly_met"
    NOT_MET = "not_met"
    NOT_APPLICABLE = "not_applicable"
    MANUAL = "manual"  # no automatic or documentary evidence: an auditor must judge


VERDICT_LABELS: dict[Verdict, tuple[str, str]] = {
    Verdict.MET: ("Đạt", "Met"),
    Verdict.PARTLY_MET: ("Đạt một phần", "Partly met"),
    Verdict.NOT_MET: ("Chưa đạt", "Not met"),
    Verdict.NOT_APPLICABLE: ("Không áp dụng", "Not applicable"),
    Verdict.MANUAL: ("Cần đánh giá thủ công", "Manual review"),
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One subject's result for one check: what was seen, from which record, when."""

    subject: str
    result: str  # pass | fail | missing | n/a
    observed: Any
    detail: str = ""
    record: str = ""
    source: str = ""  # collector and where (host address, file)
    command: str = ""
    time: str = ""
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check of a control with the figure it used and every subject's observation."""

    fact: str
    op: str
    expected: str
    text_en: str
    text_vi: str
    observations: tuple[Observation, ...]


@dataclass(frozen=True, slots=True)
class Figure:
    """A parameter value a verdict used and where it came from (catalogue or profile)."""

    name: str
    value: Any
    source: str


@dataclass(slots=True)
class Finding:
    """The verdict of one control for one system."""

    control: str
    group: str
    name_vi: str
    name_en: str
    evidence_kind: str
    verdict: Verdict
    reason: str
    refs: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    document: dict[str, Any] | None = None
    remediation: dict[str, str] = field(default_factory=dict)
    waiver: dict[str, str] | None = None
    # the auditor's reviewed explanation of the verdict (dcops.compliance.notes), never a verdict
    note: dict[str, str] | None = None


@dataclass(slots=True)
class SystemReport:
    """All findings of one information system at its level under one regime."""

    system: str
    display_name: str
    display_name_vi: str
    level: int
    owner: str
    regime: str
    profile: str
    period_start: str
    period_end: str
    assessed_at: str
    evidence_hash: str
    hosts: list[str]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # standby twins in the backup DC (derived from the address plan, not declared hosts):
    # {name, address, twin_of}
    twins: list[dict[str, str]] = field(default_factory=list)

    def counts(self, group: str | None = None) -> dict[str, int]:
        """Number of findings per verdict (optionally for one requirement group)."""
        out = {v.value: 0 for v in Verdict}
        for f in self.findings:
            if group is None or f.group == group:
                out[f.verdict.value] += 1
        return out


def to_json(reports: list[SystemReport], *, inventory: str, tool_version: str) -> dict[str, Any]:
    """The findings.json document (validated against findings.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "dcops", "version": tool_version},
        "inventory": inventory,
        "systems": [
            {**{k: v for k, v in asdict(r).items() if k != "findings"},
             "summary": r.counts(),
             "findings": [{**asdict(f), "verdict": f.verdict.value} for f in r.findings]}
            for r in reports
        ],
    }

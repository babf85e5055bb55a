"""Assess an information system at its level: evaluate each applicable control on the evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dcops.compliance.catalogue import Check, Control, Profile, resolve_param
from dcops.compliance.checks import compare, expected_text
from dcops.compliance.evidence import Document, Evidence, iso
from dcops.compliance.findings import (
    CheckResult,
    Figure,
    Finding,
    Observation,
    SystemReport,
    Verdict,
)
from dcops.compliance.notes import AuditorNote, note_for
from dcops.errors import ComplianceError
from dcops.inventory.addressplan import AddressPlanError
from dcops.inventory.derived import twin_hosts
from dcops.model import SiteModel, System


def annual_period(today: date) -> tuple[date, date]:
    """Circular 12's reporting period containing `today`: 15/12 of one year to 14/12 of the next."""
    start_year = today.year if (today.month, today.day) >= (12, 15) else today.year - 1
    return date(start_year, 12, 15), date(start_year + 1, 12, 14)


@dataclass(slots=True)
class Assessor:
    """Evaluates controls for systems of a site model against collected evidence."""

    model: SiteModel
    catalogue: dict[str, Control]
    evidence: Evidence
    profile: Profile
    regime: str
    now: datetime
    notes: tuple[AuditorNote, ...] = ()  # the inventory's compliance/notes.yml

    def assess(self, system_name: str) -> SystemReport:
        """A report with one finding per control of the catalogue for the system."""
        system = self.model.systems.get(system_name)
        if system is None:
            raise ComplianceError(f"no system {system_name!r} in the inventory (has: "
                                  f"{', '.join(sorted(self.model.systems)) or 'none'})")
        start, end = annual_period(self.now.date())
        report = SystemReport(
            system=system.name, display_name=system.display_name,
            display_name_vi=system.display_name_vi, level=system.level, owner=system.owner,
            regime=self.regime, profile=self.profile.name, period_start=start.isoformat(),
            period_end=end.isoformat(), assessed_at=iso(self.now),
            evidence_hash=self.evidence.digest(),
            hosts=[h.name for h in self.model.hosts_of_system(system.name)],
            notes=list(self.evidence.notes),
            twins=self._twins(system))
        for control in self.catalogue.values():
            finding = self._finding(control, system)
            self._apply_waiver(finding, system)
            note = note_for(self.notes, finding, system.name)
            finding.note = note.as_dict() if note is not None else None
            report.findings.append(finding)
        return report

    def _twins(self, system: System) -> list[dict[str, str]]:
        """The system's standby twins in the backup DC (none when the plan cannot be computed:
        `inventory check` reports why)."""
        try:
            twins = twin_hosts(self.model)
        except AddressPlanError:
            return []
        return [{"name": t.name, "address": t.address or "", "twin_of": ", ".join(t.twin_of)}
                for t in twins if t.system == system.name]

    def _base(self, control: Control, verdict: Verdict, reason: str) -> Finding:
        refs = {k: v for k, v in control.refs.items() if k in (self.regime, "iso27001",
                                                               "four_layer")}
        return Finding(control.id, control.group, control.name_vi, control.name_en,
                       control.evidence, verdict, reason, refs,
                       remediation=dict(control.remediation))

    def _finding(self, control: Control, system: System) -> Finding:
        if system.level not in control.levels:
            return self._base(control, Verdict.NOT_APPLICABLE,
                              f"applies to levels {', '.join(map(str, control.levels))}")
        figures = {n: resolve_param(control, n, self.regime, system.level, self.profile)
                   for n in control.params}
        if control.evidence == "manual":
            finding = self._manual(control, system, figures)
        else:
            finding = self._auto(control, system, figures)
        finding.figures = [Figure(n, v, s) for n, (v, s) in figures.items()]
        return finding

    def _manual(self, control: Control, system: System,
                figures: dict[str, tuple[Any, str]]) -> Finding:
        docs = [d for d in self.evidence.documents
                if d.key == control.document and d.system in ("", system.name)]
        if not docs:
            return self._base(control, Verdict.MANUAL,
                              f"no '{control.document}' document in the evidence registry")
        doc = max(docs, key=lambda d: d.issued)
        expires = self._expiry(doc, figures)
        today = self.now.date()
        info = {"key": doc.key, "title": doc.title, "reference": doc.reference,
                "issued": doc.issued.isoformat(), "expires": expires.isoformat(),
                "owner": doc.owner, "location": doc.location}
        if today > expires:
            finding = self._base(control, Verdict.NOT_MET,
                                 f"document {doc.reference or doc.title} expired on {expires}")
        else:
            finding = self._base(control, Verdict.MET,
                                 f"document {doc.reference or doc.title} valid until {expires}")
        finding.document = info
        return finding

    @staticmethod
    def _expiry(doc: Document, figures: dict[str, tuple[Any, str]]) -> date:
        limits = []
        if doc.expires is not None:
            limits.append(doc.expires)
        if "max_age_days" in figures:
            limits.append(doc.issued + timedelta(days=int(figures["max_age_days"][0])))
        return min(limits) if limits else date.max

    def _subjects(self, check: Check, system: System) -> list[str]:
        if check.subject == "host":
            return [h.name for h in self.model.hosts_of_system(system.name)]
        if check.subject == "system":
            return [f"system:{system.name}"]
        return ["global"]

    def _value(self, raw: Any, figures: dict[str, tuple[Any, str]]) -> Any:
        if isinstance(raw, str) and raw.startswith("$"):
            return figures[raw[1:]][0]
        if isinstance(raw, list):
            return [self._value(v, figures) for v in raw]
        return raw

    def _observe(self, check: Check, subject: str, expected: Any) -> Observation:
        if check.when is not None:
            gate = self.evidence.get(subject, check.when["fact"])
            if gate is None or compare(check.when["op"], gate.value,
                                       check.when.get("value")).result != "pass":
                return Observation(subject, "n/a", None, f"not applicable ({check.when['fact']})")
        fact = self.evidence.get(subject, check.fact)
        if fact is None:
            if check.op == "info":  # nothing to report is not missing evidence for the verdict
                return Observation(subject, "n/a", None, "not reported (no evidence)")
            return Observation(subject, "missing", None, "no evidence")
        declared = self.evidence.get(subject, check.declared) if check.declared else None
        outcome = compare(check.op, fact.value, expected,
                          declared.value if declared is not None else None)
        rec = self.evidence.records.get(fact.record)
        detail = outcome.detail
        if fact.value is None and detail == "never":
            detail = fact.excerpt or "never (no value observed)"
        return Observation(subject, outcome.result, fact.value, detail, fact.record,
                           f"{rec.collector} @ {rec.where}" if rec else "",
                           rec.command if rec else "", rec.ran_at if rec else "", fact.excerpt)

    def _auto(self, control: Control, system: System,
              figures: dict[str, tuple[Any, str]]) -> Finding:
        results = []
        for check in control.checks:
            expected = self._value(check.value, figures)
            obs = tuple(self._observe(check, s, expected) for s in self._subjects(check, system))
            results.append(CheckResult(check.fact, check.op,
                                       expected_text(check, expected) if check.op else "",
                                       check.text_en, check.text_vi, obs))
        verdict, reason = self._verdict(results)
        finding = self._base(control, verdict, reason)
        finding.checks = results
        return finding

    @staticmethod
    def _verdict(results: list[CheckResult]) -> tuple[Verdict, str]:
        """Per subject: failed if any check failed there; the control: all / some / none."""
        per_subject: dict[str, set[str]] = {}
        for r in results:
            for o in r.observations:
                per_subject.setdefault(o.subject, set()).add(o.result)
        if not per_subject:
            return Verdict.MANUAL, "no subject to assess (no hosts for this system)"
        failed = sorted(s for s, res in per_subject.items() if "fail" in res)
        passed = sorted(s for s, res in per_subject.items()
                        if "fail" not in res and "pass" in res)
        missing = sorted(s for s, res in per_subject.items() if res & {"missing"}
                         and "fail" not in res)
        failing = "; ".join(sorted({f"{o.subject}: {r.fact}" for r in results
                                    for o in r.observations if o.result == "fail"}))
        if failed:
            verdict = Verdict.NOT_MET if not passed else Verdict.PARTLY_MET
            return verdict, f"failed on {len(failed)}/{len(per_subject)}: {failing}"
        if not passed:
            if missing:
                return Verdict.MANUAL, "no evidence collected: " + ", ".join(missing)
            return Verdict.NOT_APPLICABLE, "no subject the checks apply to"
        if missing:
            return Verdict.PARTLY_MET, "incomplete evidence for: " + ", ".join(missing)
        return Verdict.MET, f"passed on {len(passed)}/{len(per_subject)}"

    def _apply_waiver(self, finding: Finding, system: System) -> None:
        for waiver in self.profile.waivers:
            if waiver.control != finding.control or waiver.system not in ("", system.name):
                continue
            active = self.now.date() <= waiver.expires
            finding.waiver = {"owner": waiver.owner, "reason": waiver.reason,
                              "expires": waiver.expires.isoformat(),
                              "status": "active" if active else "expired"}

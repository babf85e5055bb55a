"""Compare scanner results with dcops' own observations: one row per host x scanner rule.

Verdicts:
- `agree`: both pass or both fail.
- `disagree`: the results differ; `explained` when the mapping states why (a stricter scanner
  threshold) and the observed value shows that reason, unexplained otherwise.
- `scanner_blind_spot`: the scanner passes, dcops' runtime reading fails, and the scanner ran in
  probe-root mode on a rule that reads configuration files: the scanner's error, not agreement.
- `not_comparable`: the scanner did not decide (notapplicable, notchecked, error...), the rule
  was not in its results, or dcops has no pass/fail observation of the fact on the host.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dcops.compliance.crosscheck.mapping import Mapping, RuleMap
from dcops.compliance.crosscheck.scan import HostScan
from dcops.compliance.findings import Observation, SystemReport

FORMAT = "dcops-crosscheck/1"
VERDICTS = ("agree", "disagree", "scanner_blind_spot", "not_comparable")
VERDICT_LABELS = {
    "agree": ("Thống nhất", "Agree"),
    "disagree": ("Không thống nhất", "Disagree"),
    "scanner_blind_spot": ("Điểm mù của công cụ quét", "Scanner blind spot"),
    "not_comparable": ("Không so sánh được", "Not comparable"),
}
DECIDED = ("pass", "fail")


@dataclass(frozen=True, slots=True)
class Row:
    """One host x scanner rule."""

    host: str
    scanner: str
    rule: str
    title: str
    control: str
    fact: str
    dcops_result: str
    dcops_observed: Any
    dcops_record: str
    scanner_result: str
    verdict: str
    reason: str
    explained: bool = False


def observations(reports: Iterable[SystemReport]) -> dict[tuple[str, str, str], Observation]:
    """(host, control, fact) -> dcops' observation, from assessed systems (first one wins)."""
    out: dict[tuple[str, str, str], Observation] = {}
    for report in reports:
        for finding in report.findings:
            for check in finding.checks:
                for obs in check.observations:
                    out.setdefault((obs.subject, finding.control, check.fact), obs)
    return out


def _explanation(entry: RuleMap, direction: str, observed: Any, scan: HostScan) -> str | None:
    ex = entry.explain
    if ex is None or ex.direction != direction or isinstance(observed, bool) \
            or not isinstance(observed, int):
        return None
    if ex.value:
        raw = scan.values.get(ex.value)
        if raw is None or not raw.lstrip("-").isdigit():
            return None
        want, named = int(raw), f"{ex.value}={raw}"
    else:
        assert ex.threshold is not None  # the loader guarantees one of the two
        want, named = ex.threshold, f"a fixed threshold of {ex.threshold}"
    stricter = observed < want if ex.stricter == "higher" else observed > want
    if not stricter:
        return None
    return (f"thresholds differ: the scanner's profile sets {named}, the host has {observed}, "
            f"which meets the catalogue's figure; both readings agree on the host")


def compare_one(entry: RuleMap, scan: HostScan, obs: Observation | None) -> Row:
    """The row for one mapped rule on one scanned host."""
    result = scan.results.get(entry.rule)
    verdict, reason, explained = _judge(entry, scan, result, obs)
    return Row(scan.host, scan.scanner, entry.rule, scan.titles.get(entry.rule, ""),
               entry.control, entry.fact, obs.result if obs else "missing",
               obs.observed if obs else None, obs.record if obs else "",
               result or "absent", verdict, reason, explained)


def _judge(entry: RuleMap, scan: HostScan, result: str | None,
           obs: Observation | None) -> tuple[str, str, bool]:
    """(verdict, reason, explained) of one comparison."""
    if result is None:
        return "not_comparable", "the rule is not in the scanner's results (not evaluated)", False
    if result not in DECIDED:
        return "not_comparable", f"the scanner did not decide: {result}", False
    if obs is None or obs.result not in DECIDED:
        why = obs.detail if obs else "no observation"
        return ("not_comparable",
                f"no dcops observation of {entry.fact} on {scan.host} ({why})", False)
    if obs.result == result:
        verdict, reason = "agree", f"both {result}"
    elif result == "pass" and scan.probe_root and entry.probe_root_reads:
        verdict = "scanner_blind_spot"
        reason = (f"scanner blind spot: probe-root mode reads config files "
                  f"({entry.probe_root_reads}), not the running daemon; dcops read "
                  f"{obs.observed!r} from the running host ({obs.command or obs.source})")
    elif result == "fail" and scan.probe_root and entry.probe_root_misses:
        verdict = "scanner_blind_spot"
        reason = (f"scanner blind spot: in probe-root mode the scanner does not see "
                  f"{entry.probe_root_misses}; dcops read {obs.observed!r} on the running host "
                  f"({obs.command or obs.source})")
    else:
        stated = _explanation(entry, f"{obs.result}/{result}", obs.observed, scan)
        unexplained = (f"unexplained: dcops {obs.result} (observed {obs.observed!r}), "
                       f"scanner {result}")
        return "disagree", stated or unexplained, stated is not None
    return verdict, reason, False


def compare(mapping: Mapping, scans: Sequence[HostScan],
            seen: dict[tuple[str, str, str], Observation]) -> list[Row]:
    """Every mapped rule of every scan, compared with dcops' observation on the same host."""
    return [compare_one(entry, scan, seen.get((scan.host, entry.control, entry.fact)))
            for scan in scans for entry in mapping.of(scan.scanner).values()]


def summary(rows: Iterable[Row]) -> dict[str, dict[str, int]]:
    """Per scanner: rows, agree, disagree (explained / unexplained), blind spots, not
    comparable."""
    out: dict[str, Counter[str]] = {}
    for row in rows:
        c = out.setdefault(row.scanner, Counter())
        c["rows"] += 1
        c[row.verdict] += 1
        if row.verdict == "disagree":
            c["explained" if row.explained else "unexplained"] += 1
    keys = ("rows", *VERDICTS, "explained", "unexplained")
    return {s: {k: c[k] for k in keys} for s, c in sorted(out.items())}


def document(rows: Sequence[Row], scans: Sequence[HostScan], *, inventory: str,
             evidence_sha256: str, mapping: Mapping, mapping_sha256: str, created: str,
             scanners: dict[str, Any], notes: Sequence[str] = ()) -> dict[str, Any]:
    """crosscheck.json's content."""
    return {
        "format": FORMAT,
        "created": created,
        "inventory": inventory,
        "evidence_sha256": evidence_sha256,
        "mapping": {"file": "mapping.yml", "sha256": mapping_sha256,
                    "openscap_profile": mapping.openscap_profile,
                    "wazuh_policy": mapping.wazuh_policy},
        "scanners": scanners,
        "scans": [{"scanner": s.scanner, "host": s.host, "mode": s.mode, **s.record}
                  for s in scans],
        "summary": summary(rows),
        "rows": [asdict(r) for r in rows],
        "notes": list(notes),
    }


_ROW_KEYS = set(Row.__dataclass_fields__)


def load_document(text: str, source: str) -> dict[str, Any]:
    """A crosscheck.json read back for the report; ComplianceError naming `source` and what is
    wrong when it is not one."""
    from dcops.compliance.evidence import strict_loads
    from dcops.errors import ComplianceError

    try:
        doc = strict_loads(text)
    except ValueError as exc:
        raise ComplianceError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ComplianceError(f"{source}: format {found!r}, expected {FORMAT} (the "
                              "crosscheck.json of `dcops audit crosscheck`)")
    for key in ("rows", "summary", "scans", "mapping", "evidence_sha256"):
        if key not in doc:
            raise ComplianceError(f"{source}: no {key!r}; expected a {FORMAT} document")
    for i, row in enumerate(doc["rows"]):
        missing = _ROW_KEYS - set(row) if isinstance(row, dict) else _ROW_KEYS
        if missing or row["verdict"] not in VERDICTS:
            what = (f"missing {', '.join(sorted(missing))}" if missing
                    else f"verdict {row['verdict']!r} (expected one of {', '.join(VERDICTS)})")
            raise ComplianceError(f"{source}: rows[{i}]: {what}")
    return doc

"""`sigma check` without sigma-cli: every pySigma validator over the rules (sigma-cli's default)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sigma.collection import SigmaCollection
from sigma.plugins import InstalledSigmaPlugins
from sigma.rule import SigmaRule
from sigma.validation import SigmaValidator
from sigma.validators.base import SigmaRuleValidator

from dcops.detect.loader import rule_files

# validators that fetch reference data from the internet on first use
NEEDS_DOWNLOAD = {"attacktag": "MITRE ATT&CK data", "d3_fendtag": "MITRE D3FEND data"}


@dataclass(frozen=True, slots=True)
class LintIssue:
    """One validator finding."""

    where: str
    severity: str
    message: str


def lint(dirs: list[Path]) -> tuple[list[LintIssue], list[str]]:
    """Run every installed pySigma rule validator, as `sigma check` does.

    Returns the issues and the validators skipped because their reference data (ATT&CK,
    D3FEND) must be downloaded and this machine is offline.
    """
    files = rule_files(dirs)
    coll = SigmaCollection.load_ruleset([str(f) for f in files], collect_errors=True)
    out: list[LintIssue] = [
        LintIssue(str(getattr(e, "source", "")), "error", str(e)) for e in coll.errors
    ]
    skipped: list[str] = []
    for name, cls in sorted(InstalledSigmaPlugins.autodiscover().validators.items()):
        if name in NEEDS_DOWNLOAD:
            skipped.append(f"{name}: needs {NEEDS_DOWNLOAD[name]} downloaded (offline)")
            continue
        validator = SigmaValidator([cast("type[SigmaRuleValidator]", cls)])
        try:
            issues = validator.validate_rules(iter(cast("list[SigmaRule]", coll.rules)))
        except RuntimeError as exc:  # reference data download failed (offline)
            skipped.append(f"{name}: {exc}")
            continue
        for issue in issues:
            where = ", ".join(str(r.source.path) if r.source else str(r.id) for r in issue.rules)
            out.append(
                LintIssue(where, issue.severity.name.lower(), issue.description + _extra(issue))
            )
    return out, skipped


def _extra(issue: object) -> str:
    skip = {"rules", "description", "severity"}
    fields = getattr(issue, "__dataclass_fields__", {})
    parts = [f"{k}={getattr(issue, k)!r}" for k in fields if k not in skip]
    return f" ({', '.join(parts)})" if parts else ""

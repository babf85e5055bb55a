"""soc_rules/: every rule runs on its hit and miss samples and is `sigma check` clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dcops.cli.detect import sample_decoders
from dcops.detect import load_rules
from dcops.detect.lint import lint
from dcops.detect.samples import run_samples

SOC_RULES = Path(__file__).resolve().parents[3] / "soc_rules"


def test_every_rule_loads() -> None:
    rs = load_rules([SOC_RULES])
    assert rs.rejected == []
    assert len(rs.rules) >= 10 and len(rs.correlations) >= 4


def test_samples() -> None:
    report = run_samples([SOC_RULES], sample_decoders())  # as `dcops detect test` runs them
    assert report.missing == []
    failed = [f"{r.rule_file}: {r.expect} {r.name}" for r in report.results if not r.ok]
    assert failed == []
    assert {r.expect for r in report.results} == {"hit", "miss"}


def test_sigma_check_clean() -> None:
    issues, _skipped = lint([SOC_RULES])
    assert [f"{i.where}: {i.message}" for i in issues] == []


TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery",
    "lateral-movement", "collection", "command-and-control", "exfiltration", "impact",
    "stealth", "defense-impairment",  # ATT&CK v18 split of defense-evasion
}
TECHNIQUE = re.compile(r"attack\.t\d{4}(\.\d{3})?")


@pytest.mark.parametrize("path", sorted(SOC_RULES.glob("**/*.yml")), ids=lambda p: p.name)
def test_house_style(path: Path) -> None:
    import yaml

    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        keys = list(doc)
        assert keys[:2] == ["title", "id"], "SigmaHQ order starts title, id"
        assert doc.get("falsepositives"), "falsepositives must be filled"
        tags = doc.get("tags", [])
        assert any(TECHNIQUE.fullmatch(t) for t in tags), "needs an ATT&CK technique id"
        for t in tags:  # offline stand-in for pySigma's ATT&CK tag validator
            assert TECHNIQUE.fullmatch(t) or t.removeprefix("attack.") in TACTICS, t
        assert keys[-1] == "level"

"""promtool and amtool over monitoring/: every rule file checks and passes its unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from snmp_it_helpers import need

pytestmark = pytest.mark.integration
MON = Path(__file__).parents[3] / "monitoring"
RULES = sorted((MON / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((MON / "prometheus" / "tests").glob("*.yml"))


def _run(*cmd: str, cwd: Path | None = None) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    assert p.returncode == 0, f"{' '.join(cmd)}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.mark.parametrize("rules", RULES, ids=lambda p: p.name)
def test_promtool_check_rules(rules: Path) -> None:
    need("promtool")
    _run("promtool", "check", "rules", str(rules))


@pytest.mark.parametrize("tests", TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(tests: Path) -> None:
    need("promtool")
    _run("promtool", "test", "rules", tests.name, cwd=tests.parent)


def test_rule_files_all_have_tests() -> None:
    tested = set()
    for t in TESTS:
        import yaml

        tested |= {(t.parent / f).resolve() for f in yaml.safe_load(t.read_text())["rule_files"]}
    assert {r.resolve() for r in RULES} <= tested


def test_prometheus_and_alertmanager_configs_are_valid() -> None:
    need("promtool", "amtool")
    _run("promtool", "check", "config", str(MON / "prometheus" / "prometheus.yml"))
    _run("amtool", "check-config", str(MON / "alertmanager" / "alertmanager.yml"))


def test_house_config_with_shard_targets_is_valid(tmp_path: Path) -> None:
    """The dcops-snmp job with `dcops collect snmp-targets --shards 3` as its static_configs."""
    import yaml

    from dcops.collectors.snmp.shard import scrape_configs, shard_targets

    need("promtool")
    cfg = yaml.safe_load((MON / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "dcops-snmp"]
    job["static_configs"] = scrape_configs(shard_targets(("127.0.0.1", 9731), 3))
    cfg["rule_files"] = [str(MON / "prometheus" / r) for r in cfg["rule_files"]]
    for j in cfg["scrape_configs"]:
        for sd in j.get("file_sd_configs", []):
            sd["files"] = [str(MON / "prometheus" / f) for f in sd["files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    _run("promtool", "check", "config", str(tmp_path / "prometheus.yml"))


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=critical", "site=primary-dc"], "dcops-dc-critical"),
    (["severity=critical", "site=bien-hoa"], "dcops-commune-critical"),  # Phường Biên Hòa
    (["severity=critical", "site=long-thanh"], "dcops-commune-critical"),  # a legacy district
    (["severity=warning", "site=backup-dc"], "dcops-dc"),
    (["severity=warning", "site=long-thanh"], "dcops-noc"),
    (["severity=info", "site=primary-dc"], "dcops-noc"),
])
def test_alertmanager_routes_by_severity_and_site(labels: list[str], receiver: str) -> None:
    need("amtool")
    out = _run("amtool", "config", "routes", "test", "--config.file",
               str(MON / "alertmanager" / "alertmanager.yml"), *labels)
    assert out.strip() == receiver


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL (checked as recording rules by promtool)."""
    import json

    import yaml

    need("promtool")
    dash = json.loads((MON / "dashboards" / "noc-overview.json").read_text())
    rules = [{"record": f"dashboard:q{i}", "expr": t["expr"].replace("$site", ".*")}
             for i, t in enumerate(t for p in dash["panels"] for t in p["targets"])]
    f = tmp_path / "dash.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run("promtool", "check", "rules", str(f))

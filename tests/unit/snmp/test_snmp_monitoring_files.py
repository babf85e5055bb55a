"""House style of monitoring/: every alert has severity only, annotations, a runbook and a test."""

from __future__ import annotations

from pathlib import Path

import yaml

MON = Path(__file__).parents[3] / "monitoring"
REQUIRED = {"SnmpCollectorDown", "SnmpShardDown", "DeviceUnreachable", "InterfaceDown",
            "InterfaceErrorsHigh", "WanLinkSaturated", "WanLinkDown", "CpuHigh", "TemperatureHigh"}


def _alerts() -> list[dict[str, object]]:
    out = []
    for f in sorted((MON / "prometheus" / "rules").glob("*.yml")):
        for g in yaml.safe_load(f.read_text())["groups"]:
            out += [r for r in g["rules"] if "alert" in r]
    return out


def test_required_alerts_exist_in_house_style() -> None:
    alerts = _alerts()
    assert {a["alert"] for a in alerts} >= REQUIRED
    for a in alerts:
        name = str(a["alert"])
        assert name[0].isupper() and "_" not in name
        assert set(a["labels"]) == {"severity"}  # type: ignore[arg-type]
        assert a["labels"]["severity"] in {"info", "warning", "critical"}  # type: ignore[index]
        assert set(a["annotations"]) >= {"summary", "description", "runbook_url"}  # type: ignore[arg-type]
        assert str(a["annotations"]["runbook_url"]).endswith(f"/{name}")  # type: ignore[index]
        assert (MON / "runbooks" / f"{name}.md").is_file(), f"runbook for {name}"


def test_every_alert_has_a_promtool_case_before_and_after_for() -> None:
    tested: dict[str, list[bool]] = {}
    for f in (MON / "prometheus" / "tests").glob("*.yml"):
        for t in yaml.safe_load(f.read_text())["tests"]:
            for case in t.get("alert_rule_test", []):
                tested.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    for a in _alerts():
        cases = tested.get(str(a["alert"]), [])
        assert True in cases and False in cases, f"{a['alert']}: needs firing and not-firing cases"


def test_node_targets_are_file_sd_with_site_and_host() -> None:
    groups = yaml.safe_load((MON / "prometheus" / "targets" / "node.yml").read_text())
    assert groups, "generate with: dcops collect node-targets -o <this file>"
    for g in groups:
        (target,) = g["targets"]
        assert target.rsplit(":", 1)[1] == "9100"
        assert g["labels"]["site"] and g["labels"]["host"]


def test_dashboard_queries_use_metrics_the_collector_exposes() -> None:
    import json
    import re

    known = ("dcops_snmp_", "snmp_if_", "snmp_cpu_", "snmp_temperature_", "snmp_storage_")
    dash = json.loads((MON / "dashboards" / "noc-overview.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    for e in exprs:
        for name in re.findall(r"\b((?:dcops_)?snmp_[a-z_]+)\b", e):
            assert name.startswith(known), f"{name} in {e!r}"

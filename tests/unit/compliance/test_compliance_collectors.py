"""Collectors that need no host: site model, IaC plan, SOC (Protocol), drills, registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dcops.compliance import CatalogueError, Evidence
from dcops.compliance.collect.backup import BackupCollector, parse_time
from dcops.compliance.collect.iac import IacCollector
from dcops.compliance.collect.manual import ManualCollector, load_registry
from dcops.compliance.collect.site import SiteCollector
from dcops.compliance.collect.soc import AlertTiming, IncidentReport, SocCollector
from dcops.inventory import load_inventory
from dcops.model import SiteModel

ROOT = Path(__file__).resolve().parents[3]


class FakeSoc:
    """A SocEvidenceSource with fixed answers."""

    description = "fake"

    def __init__(self, now: datetime) -> None:
        self.now = now

    def last_events(self) -> dict[str, datetime]:
        return {"h1": self.now - timedelta(hours=1), "10.0.0.2": self.now - timedelta(days=3)}

    def alert_timings(self, since: datetime) -> list[AlertTiming]:
        del since
        created = self.now - timedelta(hours=5)
        return [AlertTiming(created, created + timedelta(minutes=10),
                            self.now - timedelta(hours=1))] * 3

    def incidents(self, since: datetime) -> list[IncidentReport]:
        del since
        d = self.now - timedelta(days=5)
        return [IncidentReport("INC-1", d, d + timedelta(hours=2), d + timedelta(hours=48)),
                IncidentReport("INC-2", d, d + timedelta(hours=30), d + timedelta(hours=60))]


def test_soc_collector_through_the_protocol(model: SiteModel) -> None:
    ev = Evidence()
    SocCollector(FakeSoc(datetime.now(UTC))).collect(model, ev)
    assert ev.get("h1", "soc.last_event_age_h").value < 2  # type: ignore[union-attr]
    assert ev.get("h2", "soc.last_event_age_h").value > 70  # by address  # type: ignore[union-attr]
    assert ev.get("system:lgsp", "soc.coverage").value == 0.5  # type: ignore[union-attr]
    assert ev.get("global", "soc.ack_p90_min").value == 10.0  # type: ignore[union-attr]
    assert ev.get("global", "soc.incidents_reported_late").value == ["INC-2"]  # type: ignore[union-attr]


def test_no_soc_store_is_labelled(model: SiteModel) -> None:
    ev = Evidence()
    SocCollector(None).collect(model, ev)
    assert any("no SOC store" in n for n in ev.notes) and not ev.facts


def test_drill_records_newest_per_host(model: SiteModel, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    for days, result in ((200, "pass"), (10, "fail")):
        stamp = (now - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")
        (tmp_path / f"h1-{stamp}.json").write_text(json.dumps({
            "host": "h1", "repository": "r", "snapshot_id": "abc", "snapshot_time": "x",
            "drill_time": (now - timedelta(days=days)).isoformat(), "rpo_seconds": 3600,
            "rto_seconds": 60, "files_verified": 10, "bytes_verified": 100,
            "mismatches": ["/etc/x"] if result == "fail" else [], "restored_to": "/tmp",
            "result": result}), encoding="utf-8")
    ev = Evidence()
    BackupCollector([], tmp_path).collect(model, ev)
    assert ev.get("h1", "dr.last_result").value == "fail"  # type: ignore[union-attr]
    assert 9 < ev.get("h1", "dr.last_drill_age_days").value < 11  # type: ignore[union-attr]


def test_restic_time_with_nanoseconds() -> None:
    t = parse_time("2026-11-20T01:30:00.123456789+07:00")
    assert t == datetime(2026, 11, 19, 18, 30, 0, 123456, tzinfo=UTC)


def test_registry_errors_name_file_and_entry(tmp_path: Path) -> None:
    bad = tmp_path / "evidence.yml"
    bad.write_text("documents:\n  - {key: x, title: y, issued: 2026-13-01}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"evidence.yml.*documents\[0\]\.issued"):
        load_registry(bad)


def test_example_registries_load() -> None:
    for env in ("production", "lab"):
        docs = load_registry(ROOT / "inventories" / env / "compliance" / "evidence.yml")
        assert docs and all(d.issued for d in docs)


def test_site_and_iac_evidence_of_the_example_province() -> None:
    model = load_inventory(ROOT / "inventories" / "production")
    ev = Evidence()
    for collector in (SiteCollector("inventories/production"), IacCollector(),
                      ManualCollector(ROOT / "inventories/production/compliance/evidence.yml")):
        collector.collect(model, ev)
    assert ev.get("system:lgsp", "system.approval").value  # type: ignore[union-attr]
    zones = ev.get("system:lgsp", "iac.zones")
    assert zones is not None and {"app", "db"} <= set(zones.value), ev.notes
    assert ev.get("system:lgsp", "iac.public_admin_rules").value == []  # type: ignore[union-attr]
    assert ev.get("global", "site.dc_distance_km").value > 30  # type: ignore[union-attr]
    assert ev.get("system:lgsp", "iac.dr_twins_missing").value == []  # type: ignore[union-attr]
    assert ev.documents

"""MON-06 from a real SQLite alert store: incidents, their detection and "reported" times.

The store keeps no report times, so the audit trail stands in: first acknowledgement (or
investigation/closure) of an incident's alert = first report, closure of its last alert = full
report. The store's clock is set per step (its `now`), everything else is the real store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dcops.compliance import Assessor, Evidence, Profile, load_catalogue
from dcops.compliance.collect.incidents import BASIS
from dcops.compliance.collect.soc import SocCollector
from dcops.model import SiteModel
from dcops.model.event import Detection

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=10)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the alert store's clock."""
    import dcops.alerts.actions
    import dcops.alerts.chain
    import dcops.alerts.store

    current = [NOW]

    def set_clock(moment: datetime) -> None:
        current[0] = moment

    for module in (dcops.alerts.actions, dcops.alerts.chain, dcops.alerts.store):
        monkeypatch.setattr(module, "now", lambda: current[0])
    return set_clock


def _detect(store: object, host: str, severity: str, when: datetime) -> int:
    from dcops.alerts.models import AlertFilter
    from dcops.alerts.store import AlertStore

    assert isinstance(store, AlertStore)
    store.accept([Detection(f"rule-{host}", f"Rule on {host}", severity, when, (f"ev-{host}",),
                            key=host, host=host)])
    return store.query(AlertFilter(host=host))[0].id


def _store(tmp_path: Path, clock: Callable[[datetime], None]) -> str:
    from dcops.alerts.store import AlertStore

    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    store = AlertStore(url)
    try:
        clock(T0)
        on_time = _detect(store, "web1", "critical", T0)  # INC: reported in 2 h, closed in 40 h
        _detect(store, "web2", "low", T0)  # not serious: not reportable
        late = _detect(store, "db1", "high", T0)  # first action after 30 h, never closed
        fp = _detect(store, "app9", "high", T0)  # closed as a false positive: no incident
        clock(T0 + timedelta(hours=2))
        store.acknowledge(on_time, "analyst1")
        clock(T0 + timedelta(hours=30))
        store.transition(late, "investigating", "analyst2")
        clock(T0 + timedelta(hours=40))
        store.resolve(on_time, "analyst1", "contained")
        store.resolve(fp, "analyst1", "scanner", false_positive=True)
        clock(NOW - timedelta(hours=1))
        _detect(store, "lgsp1", "critical", NOW - timedelta(hours=1))  # 1 h old: not late yet
        clock(NOW)
        assert store.verify_audit().ok
    finally:
        store.close()
    return url


def test_incidents_come_from_the_alert_store(tmp_path: Path,
                                            clock: Callable[[datetime], None]) -> None:
    from dcops.cli.compliance import StoreSoc

    soc = StoreSoc(_store(tmp_path, clock), tmp_path / "spool.db")
    incidents = {i.title.split(":")[0]: i for i in soc.incidents(NOW - timedelta(days=90))}
    assert set(incidents) == {"web1", "db1", "lgsp1"}
    web1, db1, lgsp1 = incidents["web1"], incidents["db1"], incidents["lgsp1"]
    assert web1.detected == T0 and web1.first_report == T0 + timedelta(hours=2)
    assert web1.full_report == T0 + timedelta(hours=40) and not web1.late(NOW)
    assert db1.first_report == T0 + timedelta(hours=30) and db1.full_report is None
    assert db1.late(NOW) == ["first report after 24 h", "full report after 72 h"]
    assert lgsp1.first_report is None and lgsp1.late(NOW) == []
    assert all(i.basis == BASIS for i in incidents.values())
    assert [i.title for i in soc.incidents(NOW - timedelta(days=2))] == [lgsp1.title]


def test_mon06_not_met_for_the_late_incident(tmp_path: Path, model: SiteModel,
                                             clock: Callable[[datetime], None]) -> None:
    from dcops.cli.compliance import StoreSoc

    url = _store(tmp_path, clock)
    ev = Evidence()
    SocCollector(StoreSoc(url, tmp_path / "spool.db")).collect(model, ev)
    fact = ev.get("global", "soc.incidents_reported_late")
    assert fact is not None and len(fact.value) == 1 and fact.value[0].startswith("INC-")
    record = ev.records[fact.record]
    assert record.id == "soc:store:incidents" and "audit trail" in record.output
    assert record.output.count("detected") == 3
    report = Assessor(model, load_catalogue(), ev, Profile(), "tt12", NOW).assess("lgsp")
    mon06 = next(f for f in report.findings if f.control == "MON-06")
    assert mon06.verdict.value == "not_met", mon06.reason
    obs = mon06.checks[0].observations[0]
    assert obs.observed == fact.value and "first report after 24 h" in obs.excerpt

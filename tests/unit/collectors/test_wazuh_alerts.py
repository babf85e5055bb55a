"""Wazuh alerts.json lines tailed into Events (logsource wazuh/alerts, flattened fields)."""

from __future__ import annotations

import json
from pathlib import Path

from dcops.collectors.logfile import FileTailer
from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.model.event import LogSource
from dcops.pipeline import SqliteSpool

ALERT = {
    "timestamp": "2026-11-22T05:00:00.000+0700",
    "rule": {
        "level": 10,
        "description": "sshd: brute force trying to get access to the system.",
        "id": "5712",
        "groups": ["syslog", "sshd", "authentication_failures"],
    },
    "agent": {"id": "001", "name": "web1", "ip": "10.77.0.11"},
    "manager": {"name": "wazuh-manager"},
    "id": "1763762400.12345",
    "full_log": "Nov 22 05:00:00 web1 sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2",
    "decoder": {"name": "sshd"},
    "data": {"srcip": "1.2.3.4", "dstuser": "root"},
    "location": "/var/log/auth.log",
}


def test_alerts_json_tail(tmp_path: Path) -> None:
    log, spool = tmp_path / "alerts.json", SqliteSpool(tmp_path / "s.db")
    log.write_text(json.dumps(ALERT) + "\n" + "{not json\n")
    t = FileTailer(log, spool, spool, normaliser=WazuhAlertNormaliser())
    assert t.poll() == 2
    t2 = FileTailer(log, spool, spool, normaliser=WazuhAlertNormaliser())
    log.write_text(log.read_text() + json.dumps(ALERT) + "\n")  # the same alert again
    t2.poll()
    evs = [e for _, e in spool.fetch("c", 10)]
    assert len(evs) == 2  # redelivered alert (same manager id) is not duplicated
    alert, raw = evs
    assert alert.logsource == LogSource("wazuh", "alerts")
    f = alert.fields
    assert (f["rule.level"], f["agent.name"], f["host.name"], f["source.ip"]) == (
        10,
        "web1",
        "web1",
        "1.2.3.4",
    )
    assert f["rule.groups"] == ["syslog", "sshd", "authentication_failures"]
    assert alert.timestamp.utcoffset() is not None and alert.timestamp.hour == 5
    assert raw.parsed is False

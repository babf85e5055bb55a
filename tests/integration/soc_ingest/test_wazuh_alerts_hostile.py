"""The real `dcops collect wazuh alerts` process: malformed alerts.json lines (not JSON, an array,
invalid UTF-8, nesting deeper than the JSON parser's recursion limit, a 300 kB line cut at the cap)
among valid alerts are counted on /metrics and every valid alert is stored once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_logs_hostile import Collector

from dcops.pipeline import SqliteSpool

pytestmark = pytest.mark.integration


@pytest.fixture
def cleanup() -> Iterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def alert(i: int) -> bytes:
    return json.dumps({
        "timestamp": "2026-11-22T05:00:00.000+0700", "id": f"1763762400.{i}",
        "rule": {"level": 5, "description": "sshd: authentication failed.", "id": "5716"},
        "agent": {"id": "001", "name": "web1"}, "data": {"srcip": "203.0.113.9"},
    }).encode() + b"\n"


def test_collect_wazuh_alerts_counts_malformed_lines_and_stores_every_valid_one(
    tmp_path: Path, cleanup: list[Collector]
) -> None:
    path, spool = tmp_path / "alerts.json", tmp_path / "spool.db"
    bad = [b"{not json\n", b"[1, 2]\n", b"\xff\xfe\n", b"[" * 100_000 + b"\n",
           b'{"full_log": "' + b"x" * 300_000 + b'"}\n']
    path.write_bytes(b"".join(alert(i) + bad[i % len(bad)] for i in range(20)))
    c = Collector(["collect", "wazuh", "alerts", str(path), "--spool", str(spool),
                   "--interval", "0.1"], tmp_path)
    cleanup.append(c)
    with path.open("ab") as f:
        f.write(b"".join(alert(i) for i in range(20, 25)))
    # 25 valid alerts and 20 malformed lines, each stored (the malformed ones raw, unparsed)
    c.wait(lambda: c.value("dcops_intake_stored_total", source="wazuh") >= 45, "every line")
    c.wait(lambda: c.value("dcops_intake_unparsed_total", source="wazuh") == 20,
           "malformed lines counted as unparsed (kept raw)", timeout=10)
    assert c.value("dcops_intake_dropped_total", source="wazuh", reason="malformed") == 0
    assert c.value("dcops_intake_received_total", source="wazuh") == 45
    rc, took, err = c.stop()
    assert rc == 0 and took < 10, (rc, took, err)  # bounded (loaded CI: not 5 s)
    sp = SqliteSpool(spool)
    ids = sorted(str(e.fields.get("id")) for _, e in sp.fetch_after(0, 10_000) if e.parsed)
    sp.close()
    assert ids == sorted(f"1763762400.{i}" for i in range(25))

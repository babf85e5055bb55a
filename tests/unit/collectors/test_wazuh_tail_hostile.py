"""alerts.json with malformed lines among valid alerts, tailed into a real SqliteSpool: every valid
alert stored once, every malformed line kept as a raw event and counted as unparsed (not dropped),
the reader never stops."""

from __future__ import annotations

import json
from pathlib import Path

from dcops.collectors.health import IntakeMetrics
from dcops.collectors.logfile import FileTailer
from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.pipeline import SqliteSpool

CAP = 4096


def alert(i: int, pad: int = 0) -> bytes:
    doc = {
        "timestamp": "2026-11-22T05:00:00.000+0700",
        "rule": {"level": 5, "description": "sshd: authentication failed.", "id": "5716"},
        "agent": {"id": "001", "name": "web1"},
        "id": f"1763762400.{i}",
        "full_log": f"Nov 22 05:00:00 web1 sshd[{i}]: Failed password for u{i}" + " " * pad,
        "data": {"srcip": "203.0.113.9", "dstuser": f"u{i}"},
    }
    return json.dumps(doc).encode() + b"\n"


MALFORMED = [
    b"{not json\n",
    b"[1, 2, 3]\n",  # JSON, not an object
    b'"a string"\n',
    b"\xff\xfe\x00{\n",
    b'{"id": "1", "rule": ' + b"[" * 50_000 + b"\n",  # deep nesting, cut at the cap
    b"{" + b'"k": "' + b"v" * 200_000 + b'"}\n',  # a huge object: cut, so no longer JSON
]


def test_malformed_lines_are_counted_and_every_valid_alert_is_stored(tmp_path: Path) -> None:
    log, spool = tmp_path / "alerts.json", SqliteSpool(tmp_path / "s.db")
    body = b""
    for i in range(60):
        body += alert(i, pad=CAP - 600 if i == 7 else 0)  # one just under the cap
        if i % 10 == 3:
            body += MALFORMED[(i // 10) % len(MALFORMED)]
    log.write_bytes(body)
    stats = IntakeMetrics().source("wazuh")
    norm = WazuhAlertNormaliser()
    t = FileTailer(log, spool, spool, source="wazuh", normaliser=norm, stats=stats,
                   max_message_bytes=CAP, batch_lines=7)
    t.poll()
    with log.open("ab") as f:  # more after a pause, the last malformed line unterminated
        f.write(b"".join(MALFORMED) + alert(60) + b"{half")
    t.poll()
    ids = {e.fields.get("id") for _, e in spool.fetch_after(0, 10_000) if e.parsed}
    assert ids == {f"1763762400.{i}" for i in range(61)}
    malformed = 6 + len(MALFORMED)
    assert norm.stats["malformed"] == malformed
    assert stats.unparsed_total == malformed and stats.drops.get("malformed", 0) == 0
    assert stats.received_total == 61 + malformed
    assert spool.dead_letter_count() == 0 and t.events["normaliser_error"] == 0
    t.close()  # the unterminated line is not complete yet: neither stored nor counted
    assert stats.stored_total == len(spool.fetch_after(0, 10_000))

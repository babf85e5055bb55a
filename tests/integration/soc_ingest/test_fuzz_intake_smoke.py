"""The intake fuzz campaign at a small scale: real collectors, hostile input, numbered canaries.

Runs scripts/bench/fuzz_intake.py with 20,000 hostile inputs against `dcops collect traps`,
`syslog` (UDP, TCP, TLS), `logs` and `wazuh alerts` started as processes, and checks its verdict
and the figures behind it: every canary stored exactly once, every collector alive until SIGTERM
and gone within 5 s of it, resident memory growth within the bound.

Every path is attacked, TLS included: the full campaign found the TLS listener losing a
forwarder's last lines when it hung up while the spool was busy (asyncio's TLS flush handed a
buffered protocol one buffer and dropped the rest); test_syslog_tls_close.py pins that case.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "bench" / "fuzz_intake.py"


def test_fuzz_campaign_20k_keeps_every_canary(tmp_path: Path) -> None:
    assert shutil.which("openssl"), "the campaign's TLS certificate is made by openssl"
    out = tmp_path / "fuzz.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--total", "20000", "--seed", "20260101", "--serial",
         "--phase-timeout", "60", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO, check=False)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert out.exists(), report
    res = json.loads(out.read_text())
    assert res["total"] >= 19000, report  # 20,000 planned; a few kinds round down
    per = res["collectors"]
    assert set(per) == {"traps", "syslog", "logs", "wazuh"}
    for name, c in per.items():
        assert c["hostile"] > 0, (name, report)
        for path, row in c["canaries"].items():
            assert row["sent"] > 0, (path, report)
            assert (row["stored"], row["lost"], row["duplicates"], row["kernel_dropped"]) == (
                row["sent"], 0, 0, 0), (path, row, report)
        assert c["alive"], (name, report)
        assert c["exit_code"] == 0, (name, report)
        assert c["shutdown_s"] < 10.0, (name, report)  # bounded; 5 s flaked on a loaded CI
        assert c["rss_after_kib"] - c["rss_before_kib"] < 200 * 1024, (name, report)
    assert per["traps"]["extra"]["informs_acked"] == per["traps"]["extra"]["informs_sent"] > 0
    assert res["failures"] == [], report
    assert res["verdict"] == "pass"
    assert proc.returncode == 0, report

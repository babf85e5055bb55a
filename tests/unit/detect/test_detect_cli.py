"""`dcops detect check|test|scan` end to end through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dcops.cli import app

SOC_RULES = Path(__file__).resolve().parents[3] / "soc_rules"


def test_check_reports_rejected_rule(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        "title: Bad\nid: 55555555-5555-4555-8555-555555555555\nstatus: test\n"
        "logsource: {product: linux}\ndetection:\n  sel:\n    a|expand: '%x%'\n"
        "  condition: sel\nlevel: low\n"
    )
    r = CliRunner().invoke(app, ["detect", "check", str(tmp_path), "--no-lint"])
    assert r.exit_code == 0
    assert "rejected 1" in r.output and "placeholder" in r.output
    r = CliRunner().invoke(app, ["detect", "check", str(tmp_path), "--no-lint", "--strict"])
    assert r.exit_code == 1


def test_test_command_passes_on_soc_rules() -> None:
    r = CliRunner().invoke(app, ["detect", "test", str(SOC_RULES)])
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output


def test_scan_jsonl(tmp_path: Path) -> None:
    lines = [
        {"id": f"e{i}", "timestamp": f"2026-11-20T03:00:0{i}Z",
         "logsource": {"product": "linux", "service": "sshd"},
         "fields": {"event.action": "ssh_login", "event.outcome": "success",
                    "user.name": "root" if i == 1 else "admin", "source.ip": "10.10.40.5"}}
        for i in range(3)
    ]
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    r = CliRunner().invoke(app, ["detect", "scan", str(f), "--rules", str(SOC_RULES)])
    assert r.exit_code == 0, r.output
    out = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert [(d["rule_title"], d["event_ids"]) for d in out] == [("SSH Login As Root", ["e1"])]

"""`dcops audit` commands on recorded evidence (no hosts needed)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dcops.cli import app
from dcops.compliance import Evidence

ROOT = Path(__file__).resolve().parents[3]


def test_catalogue_lists_controls() -> None:
    result = CliRunner().invoke(app, ["audit", "catalogue", "--json"])
    assert result.exit_code == 0, result.output
    ids = [c["id"] for c in json.loads(result.output)]
    assert len(ids) >= 40 and "SRV-07" in ids
    table = CliRunner().invoke(app, ["audit", "catalogue", "--level", "3"])
    assert table.exit_code == 0, table.output
    # The statuses print (Rich would swallow "[...]" as markup if the cells were not plain text).
    assert "verified]" in table.output and "inference]" in table.output
    assert "A.8.24" in table.output


def test_run_and_annual_from_recorded_evidence(tmp_path: Path, hardened_output: str) -> None:
    from dcops.compliance.collect.hostparse import parse_host
    from dcops.compliance.collect.hostscript import SECTIONS, split

    ev = Evidence()
    for host in ("lab-app1", "lab-db1"):
        sections = split(hardened_output)
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections)
    recorded = tmp_path / "evidence.json"
    recorded.write_text(json.dumps(ev.to_dict()), encoding="utf-8")
    out = tmp_path / "out"
    args = ["-i", str(ROOT / "inventories" / "lab"), "--from-evidence", str(recorded),
            "--out", str(out), "--regime", "nd331"]
    result = CliRunner().invoke(app, ["audit", "run", *args, "--no-pdf"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    lgsp = next(s for s in doc["systems"] if s["system"] == "lgsp")
    assert lgsp["regime"] == "nd331"
    assert {f["control"]: f["verdict"] for f in lgsp["findings"]}["SRV-06"] == "met"
    result = CliRunner().invoke(app, ["audit", "annual", *args, "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert (out / "annual.html").exists() and not (out / "annual.pdf").exists()
    import csv
    import re

    from openpyxl import load_workbook

    with (out / "annual.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))  # the header is line one
    srv06 = next(r for r in rows if (r["Hệ thống / System"], r["Mã / Control"]) == (
        "lgsp", "SRV-06"))
    assert srv06["Tình trạng (TT12)"] == "Đáp ứng đầy đủ"
    assert re.fullmatch(r"\d{4}-12-15 to \d{4}-12-14", srv06["Kỳ báo cáo / Period"])
    sheet = load_workbook(out / "annual.xlsx").worksheets[0]
    assert str(sheet["A1"].value).startswith("Báo cáo") and "Annual report" in str(
        sheet["A2"].value)
    keys = [(line[1].value, line[3].value) for line in sheet.iter_rows(min_row=6)]
    assert keys == [(r["Hệ thống / System"], r["Mã / Control"]) for r in rows]


def test_bad_regime_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "run", "-i", str(ROOT / "inventories" / "lab"),
                                      "--out", str(tmp_path), "--regime", "iso", "--no-ssh"])
    assert result.exit_code == 2  # refused by the option's choices, before any work
    assert "'iso' is not one of" in result.output


def test_soc_adapter_reads_the_spool_and_the_alert_store(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from dcops.cli.compliance import StoreSoc
    from dcops.model.event import Event, LogSource
    from dcops.pipeline.spool import SqliteSpool

    now = datetime.now(UTC)
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.publish([Event(id="e1", timestamp=now - timedelta(hours=2), source="syslog",
                         logsource=LogSource("linux", "sshd"),
                         fields={"host.name": "lab-app1"})])
    spool.close()
    soc = StoreSoc(f"sqlite:///{tmp_path / 'alerts.db'}", tmp_path / "spool.db")
    last = soc.last_events()
    assert set(last) == {"lab-app1"} and now - last["lab-app1"] < timedelta(hours=3)
    assert soc.alert_timings(now - timedelta(days=90)) == []
    assert soc.incidents(now - timedelta(days=90)) == []  # an empty store: no incident

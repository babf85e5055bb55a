"""`dcops iac plan` on the example province, the topology SVG, and errors through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.iac.svg import render

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "inventories" / "production"
SVG_NS = "{http://www.w3.org/2000/svg}"


def test_svg_shows_both_dcs_zones_and_the_wan(plans: dict[str, Any]) -> None:
    svg = render([plans["primary"], plans["backup"]], "test")
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    assert any("Primary DC" in t for t in texts) and any("Backup DC" in t for t in texts)
    assert {"bien-hoa", "tan-phu"} <= set(texts)
    assert "10.11.60.0/24" in texts  # lgsp's replication zone in the backup DC
    assert any("standby" in t for t in texts)
    trunks = [el for el in root.iter(f"{SVG_NS}line") if el.get("class") == "vpn-trunk"]
    # one trunk per DC to the panel of the two district sites (not a line per site)
    assert len(trunks) == 2
    assert all("2 IPsec site connections" in (el.findtext(f"{SVG_NS}title") or "")
               for el in trunks)
    assert any("district sites · 2 sites" in t for t in texts)
    ports = [el for el in root.iter(f"{SVG_NS}g") if el.get("class") == "vpn-port"]
    assert ports and all("host routes via it" in (el.findtext(f"{SVG_NS}title") or "")
                         for el in ports)


def test_cli_plan_primary_prints_and_writes_svg(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from dcops.cli import app

    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["iac", "plan", "--stack", "primary"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "lgsp" in result.output and "primary-dc-lgsp-db-sg" in result.output
    assert "pass / đạt" in result.output and "FAIL" not in result.output
    svg = tmp_path / "state" / "iac" / "topology.svg"
    assert svg.stat().st_size > 1000
    ET.parse(svg)  # well-formed


def test_cli_plan_backup_json(tmp_path: Path) -> None:
    from dcops.cli import app

    out = tmp_path / "topo.svg"
    result = CliRunner().invoke(app, ["iac", "plan", "--stack", "backup", "-i", str(PRODUCTION),
                                      "--svg", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["stack"] == "backup" and data["violations"] == []
    twins = {r["tags"].get("twin") for r in data["resources"] if r["tags"].get("twin")}
    assert {"lgsp-db", "portal-web", "onestop-app", "docmgmt-db1"} <= twins
    assert out.stat().st_size > 1000


def test_cli_bad_flow_names_file_and_key(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(PRODUCTION, inv)
    systems = inv / "group_vars" / "all" / "systems.yml"
    text = systems.read_text(encoding="utf-8")
    bad = text.replace("to_system: lgsp, description: portal calls",
                       "to_system: lgps, description: portal calls", 1)
    assert bad != text
    systems.write_text(bad, encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", "from dcops.cli import main; main()", "iac",
                          "plan", "-i", str(inv), "--no-svg"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 1
    assert "systems.yml" in run.stderr and "lgps" in run.stderr
    assert "portal" in run.stderr and "Traceback" not in run.stderr


def test_cli_lists_the_policies() -> None:
    from dcops.cli import app

    result = CliRunner().invoke(app, ["iac", "policies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("no-public-ingress", "ssh-from-mgmt-only", "dr-twins", "vpn-crypto"):
        assert name in result.output


def test_cli_unknown_zone_name_names_file_and_key(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(PRODUCTION, inv)
    systems = inv / "group_vars" / "all" / "systems.yml"
    text = systems.read_text(encoding="utf-8")
    old = "{from: dmz, to: app, port: 443, description: API gateway"
    assert text.count(old) == 1
    systems.write_text(text.replace(old, old.replace("to: app", "to: web")), encoding="utf-8")
    line = 1 + text[:text.index(old)].count("\n")
    run = subprocess.run([sys.executable, "-c", "from dcops.cli import main; main()", "iac",
                          "plan", "-i", str(inv), "--no-svg"],
                         capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    err = " ".join(run.stderr.split())  # rich may wrap long lines
    assert f"group_vars/all/systems.yml:{line}" in err
    assert "unknown zone 'web'" in err and "dcops_systems.lgsp.flows[0].to" in err
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    assert run.stdout.strip() == ""  # nothing planned from a wrong inventory

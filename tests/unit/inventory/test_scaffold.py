"""`dcops inventory scaffold`: a starting inventory for any of the 34 provinces that
`inventory check` and `iac plan` accept as written; commune codes checked with file and line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.iac.svg import PEER_W
from dcops.inventory import check_inventory, divisions
from dcops.inventory.scaffold import commune_subnet
from dcops.model import SiteKind


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` once in the file and return the 1-based line of the change."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def scaffold(province: str, out: Path, *extra: str) -> Path:
    result = CliRunner().invoke(app, ["inventory", "scaffold", "--province", province,
                                      "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


def check_json(inventory: Path) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(app, ["inventory", "check", "-i", str(inventory), "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def dong_nai(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scaffold("Đồng Nai", tmp_path_factory.mktemp("scaffold") / "dong-nai")


def test_dong_nai_passes_inventory_check_with_its_95_communes(dong_nai: Path) -> None:
    result = CliRunner().invoke(app, ["inventory", "check", "-i", str(dong_nai)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    model, problems = check_inventory(dong_nai)
    assert problems == []
    communes = model.sites_of(SiteKind.COMMUNE)
    official = {str(u.code): u for u in divisions.communes(divisions.province("Dong Nai"))}
    assert len(communes) == 95 and {c.admin_code for c in communes} == set(official)
    for site in communes:
        unit = official[site.admin_code]
        assert (site.display_name_vi, site.admin_type, site.parent) == (unit.name, unit.type, None)
        assert [d.device_class for d in model.devices_at(site.name)] == ["commune_router"]
    assert model.settings.example and model.settings.province_code == "75"
    assert {s.kind for s in model.sites.values()} == {
        SiteKind.PRIMARY_DC, SiteKind.BACKUP_DC, SiteKind.COMMUNE}


@pytest.mark.parametrize(("province", "units"), [("Lai Châu", 38), ("Ho Chi Minh", 168)])
def test_smallest_and_largest_province_pass_inventory_check(tmp_path: Path, province: str,
                                                            units: int) -> None:
    out = scaffold(province, tmp_path / "inv")
    code, problems = check_json(out)
    assert (code, problems) == (0, [])
    model, _ = check_inventory(out)
    assert len(model.sites_of(SiteKind.COMMUNE)) == units


def test_iac_plan_accepts_the_scaffold_and_peers_with_every_commune(tmp_path: Path) -> None:
    out = scaffold("Lai Châu", tmp_path / "lai-chau")
    svg = tmp_path / "topology.svg"
    result = CliRunner().invoke(app, ["iac", "plan", "-i", str(out), "--json", "--svg", str(svg)])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["violations"] == []
    peers = {r["tags"]["peer"] for r in plan["resources"]
             if r["type"] == "openstack:vpnaas/siteConnection:SiteConnection"}
    assert len(peers) == 38 + 1 and "backup-dc" in peers  # every commune and the other DC
    drawn = svg.read_text(encoding="utf-8")
    width = float(re.search(r'width="(\d+)"', drawn)[1])  # type: ignore[index]
    boxes = [float(x) for x in re.findall(
        r'<g id="site-[^"]+" class="wan-site"><title>[^<]*</title><rect x="([\d.]+)" y="[\d.]+" '
        rf'width="{PEER_W}"', drawn)]
    assert len(boxes) == 38 and max(boxes) + PEER_W <= width  # communes in rows, none cut off


def test_commune_lans_follow_one_plan_for_any_province_size() -> None:
    assert commune_subnet(0) == "10.21.1.0/26"
    assert commune_subnet(253) == "10.21.254.0/26"
    assert commune_subnet(254) == "10.22.1.0/26"


def test_refuses_a_non_empty_out_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "inv"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(app, ["inventory", "scaffold", "--province", "Lai Chau",
                                      "--out", str(out)])
    assert result.exit_code == 1 and "not empty" in str(result.exception)  # one error line
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    scaffold("Lai Chau", out, "--overwrite")
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert (out / "hosts.yml").is_file()


def test_unknown_province_is_a_bad_option_naming_close_matches(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inventory", "scaffold", "--province", "Dong Nay",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "did you mean Đồng Nai" in result.output
    assert not (tmp_path / "x").exists()


def test_wrong_commune_codes_are_reported_with_file_and_line(dong_nai: Path,
                                                             tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(dong_nai, inv)
    sites = inv / "group_vars/all/sites.yml"
    hanoi = divisions.communes(divisions.province("Hà Nội"))[0]
    foreign = edit(sites, "admin_code: '25195'", f"admin_code: '{hanoi.code}'")
    unknown = edit(sites, "admin_code: '25210'", "admin_code: '99999'")
    code, problems = check_json(inv)
    assert code == 1
    found = {p["kind"]: p for p in problems}
    assert set(found) == {"foreign-admin-code", "unknown-admin-code"}
    assert (found["foreign-admin-code"]["file"], found["foreign-admin-code"]["line"]) == (
        "group_vars/all/sites.yml", foreign)
    assert "of Thành phố Hà Nội, not of Đồng Nai" in str(found["foreign-admin-code"]["message"])
    assert found["unknown-admin-code"]["line"] == unknown
    assert found["unknown-admin-code"]["key"] == "dcops_sites.phuong-dong-xoai.admin_code"


def test_unknown_province_code_is_reported_with_file_and_line(dong_nai: Path,
                                                             tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(dong_nai, inv)
    line = edit(inv / "group_vars/all/main.yml", "dcops_province_code: '75'",
                "dcops_province_code: '99'")
    code, problems = check_json(inv)
    assert code == 1
    assert [(p["kind"], p["file"], p["line"]) for p in problems] == [
        ("unknown-province", "group_vars/all/main.yml", line)]

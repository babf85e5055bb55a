"""inventories/production is today's Đồng Nai: the official 95 communes as the scaffold writes
them, the systems of the merged province, and both commands clean on it (issue 17)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.inventory import load_inventory
from dcops.inventory.scaffold import commune_sites
from dcops.model import SiteKind, SiteModel

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"
CONNECTION = "openstack:vpnaas/siteConnection:SiteConnection"


@pytest.fixture(scope="module")
def model() -> SiteModel:
    return load_inventory(PRODUCTION)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both stacks planned by the CLI as a user runs it (JSON), with the seconds each took."""
    out: dict[str, Any] = {}
    for stack in ("primary", "backup"):
        started = time.monotonic()
        result = CliRunner().invoke(app, ["iac", "plan", "--stack", stack, "-i", str(PRODUCTION),
                                          "--json", "--no-svg"])
        took = time.monotonic() - started
        assert result.exit_code == 0, result.output[-3000:]
        out[stack] = json.loads(result.stdout)
        print(f"iac plan --stack {stack} (production, 95 communes): {took:.1f} s")
    return out


def test_the_commune_sites_are_the_official_list_as_the_scaffold_writes_it(
        model: SiteModel) -> None:
    sites, routers = commune_sites("Đồng Nai")
    assert len(sites) == len(routers) == 95
    communes = {s.name: s for s in model.sites_of(SiteKind.COMMUNE)}
    assert set(communes) == set(sites)  # (the LANs below follow the official code order)
    for name, spec in sites.items():
        site = communes[name]
        assert (site.display_name, site.display_name_vi, site.admin_code, site.admin_type,
                list(site.subnets), site.parent) == (
            spec["name"], spec["name_vi"], spec["admin_code"], spec["admin_type"],
            spec["subnets"], None), name
    commune_routers = {d.name: d for d in model.devices.values()
                       if d.device_class == "commune_router"}
    assert set(commune_routers) == set(routers)
    for name, spec in routers.items():
        device = commune_routers[name]
        assert (device.address, device.site, device.profile, list(device.wan_uplinks)) == (
            spec["ansible_host"], spec["dcops_site"], spec["dcops_snmp_profile"],
            spec["dcops_wan_uplinks"]), name


def test_no_district_is_left(model: SiteModel) -> None:
    assert model.sites_of(SiteKind.DISTRICT) == []
    assert not [d.name for d in model.devices.values() if d.device_class.startswith("district")]
    assert not [d.name for d in model.devices.values() if d.address.startswith("10.20.")]


def test_the_merged_province_hosts_binh_phuoc_s_system(model: SiteModel) -> None:
    bp = model.systems["bp_docmgmt"]
    assert "Bình Phước" in bp.display_name_vi and (bp.site, bp.dr) == ("primary-dc", True)
    hosts = {h.name: h for h in model.hosts_of_system("bp_docmgmt")}
    assert set(hosts) == {"bp-docmgmt-app1", "bp-docmgmt-db1"}
    assert {h.site for h in hosts.values()} == {"primary-dc"}
    # the systems of the former Đồng Nai keep their hosts, HA groups and addresses
    assert model.hosts["lgsp-app2"].address == "10.10.20.12"
    assert model.hosts["portal-web1"].ha_group == "portal-web"
    assert model.hosts["soc1"].address == model.settings.soc_collector == "10.10.44.21"


def test_inventory_check_is_clean() -> None:
    result = CliRunner().invoke(app, ["inventory", "check", "-i", str(PRODUCTION), "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    assert json.loads(result.stdout) == []


def test_both_stacks_plan_with_no_violation_or_warning_and_a_vpn_per_commune(
        plans: dict[str, Any]) -> None:
    communes = set(commune_sites("Đồng Nai")[0])
    for stack, other in (("primary", "backup-dc"), ("backup", "primary-dc")):
        plan = plans[stack]
        assert (plan["violations"], plan["warnings"]) == ([], []), stack
        peers = [r["tags"]["peer"] for r in plan["resources"] if r["type"] == CONNECTION]
        assert sorted(peers) == sorted([*communes, other]), stack  # 95 communes + the other DC
        kinds = [r["type"].rsplit(":", 1)[1] for r in plan["resources"]]
        # one crypto policy pair serves every site connection
        assert (kinds.count("IkePolicy"), kinds.count("IpSecPolicy")) == (1, 1), stack
        twins = {r["tags"].get("twin") for r in plan["resources"]}
        if stack == "backup":
            assert {"bp-docmgmt-app1", "bp-docmgmt-db1"} <= twins


def test_the_topology_svg_is_readable_at_95_sites(tmp_path: Path) -> None:
    svg = tmp_path / "topology.svg"
    result = CliRunner().invoke(app, ["iac", "plan", "-i", str(PRODUCTION), "--json",
                                      "--svg", str(svg)])
    assert result.exit_code == 0, result.output[-3000:]
    drawn = svg.read_text(encoding="utf-8")
    width, height = (float(v) for v in re.search(  # type: ignore[union-attr]
        r'<svg [^>]*width="(\d+)" height="(\d+)"', drawn).groups())
    assert f'viewBox="0 0 {width:.0f} {height:.0f}"' in drawn  # scales: zoom and pan
    sites = re.findall(r'<g id="site-([^"]+)" class="wan-site">', drawn)
    assert sorted(sites) == sorted(commune_sites("Đồng Nai")[0])
    # grouped: a panel per official type, its count in the heading
    panels = dict(re.findall(r'class="wan-group"><title>([^:]+): (\d+) sites', drawn))
    assert panels == {"Communes / Xã": "72", "Wards / Phường": "23"}
    # one trunk per DC and panel instead of 190 crossing lines
    assert drawn.count('class="vpn-trunk"') == 4
    # the VPN router's port in every zone it joins, and the host routes through it
    plan = json.loads(result.stdout)
    ports = [r for r in plan["resources"] if r["type"].endswith(":Port")]
    mine = re.findall(r'<g id="port-primary-dc-[^"]+" class="vpn-port"><title>([^<]+)</title>',
                      drawn)
    assert len(mine) == len(ports) > 0
    routes = sum(r["type"].endswith(":SubnetRoute") for r in plan["resources"])
    counted = [re.search(r"(\d+) host routes", t) for t in mine]
    assert sum(int(m[1]) for m in counted if m) == routes
    assert drawn.count('class="vpn-route"') >= len(ports)
    boxes = [float(x) for x in
             re.findall(r'class="wan-site"><title>[^<]*</title><rect x="([\d.]+)"', drawn)]
    assert max(boxes) < width  # nothing drawn off the canvas

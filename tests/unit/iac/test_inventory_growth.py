"""Resource counts follow the inventory files: a system appended to a copy of the YAML appears.

The copy of inventories/production gets a level-4 DR system with an HA pair, written into
group_vars/all/systems.yml and hosts.yml the way an engineer would, and is loaded by
dcops.inventory (ansible-core), not built as model objects.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcops.iac import Plan, PolicyContext, evaluate, plan
from dcops.inventory import load_inventory
from dcops.model.site import SiteModel

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "inventories" / "production"

RECORDS = """\
  records:
    name: Provincial electronic records archive
    name_vi: Hệ thống lưu trữ hồ sơ điện tử cấp tỉnh
    level: 4
    owner: Department of Home Affairs (Sở Nội vụ)
    approval: 0321/QĐ-UBND 2025-02-14
    site: primary-dc
    group: records
    dr: true
    zones: [app, db, mgmt]
    flows:
      - {from: app, to: db, port: 5432, description: archive to PostgreSQL}
      - {from: app, to: app, port: 443, to_system: lgsp, description: archive over LGSP}
      - {from: mgmt, to: app, port: 22, description: bastion administration}
      - {from: mgmt, to: db, port: 22, description: bastion administration}
"""
#: records is the 7th system (after bp_docmgmt, inherited from Bình Phước): its zones are
#: 10.10.<block + 6>.0/24.
HOSTS = {
    "records-app1": {"ansible_host": "10.10.26.11", "dcops_zone": "app",
                     "dcops_role": "records_app", "dcops_ha_group": "records-app",
                     "dcops_flavor": "m1.large", "dcops_volume_gb": 200},
    "records-app2": {"ansible_host": "10.10.26.12", "dcops_zone": "app",
                     "dcops_role": "records_app", "dcops_ha_group": "records-app",
                     "dcops_flavor": "m1.large", "dcops_volume_gb": 200},
    "records-db1": {"ansible_host": "10.10.36.11", "dcops_zone": "db", "dcops_role": "db",
                    "dcops_flavor": "m1.xlarge", "dcops_volume_gb": 1000},
}


def _grown_copy(dest: Path) -> Path:
    shutil.copytree(PRODUCTION, dest)
    systems = dest / "group_vars" / "all" / "systems.yml"
    text = systems.read_text(encoding="utf-8")
    systems.write_text(text.rstrip("\n") + "\n" + RECORDS, encoding="utf-8")
    hosts_file = dest / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text(encoding="utf-8"))
    children = data["all"]["children"]
    children["primary_servers"]["hosts"].update(HOSTS)
    children["records"] = {"hosts": dict.fromkeys(HOSTS)}
    children["db_servers"]["hosts"]["records-db1"] = None
    hosts_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                          encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = load_inventory(PRODUCTION)
    model = load_inventory(_grown_copy(tmp_path_factory.mktemp("inv") / "production"))
    return {"base": base, "model": model,
            **{f"{s}-before": plan(base, s) for s in ("primary", "backup")},
            **{s: plan(model, s) for s in ("primary", "backup")}}


def _zones(p: Plan, system: str) -> set[str]:
    return {r.zone for r in p.of_type("networking.Network") if r.system == system}


def _added(before: Plan, after: Plan) -> Counter[str]:
    names = {r.name for r in before.resources}
    assert names <= {r.name for r in after.resources}, "growing the inventory removed resources"
    return Counter(r.kind for r in after.resources if r.name not in names)


def test_the_copy_loads_with_the_new_system(grown: dict[str, Any]) -> None:
    model: SiteModel = grown["model"]
    records = model.systems["records"]
    assert (records.level, records.dr, records.site) == (4, True, "primary-dc")
    assert records.source is not None and records.source.file.endswith("systems.yml")
    assert sorted(h.name for h in model.hosts_of_system("records")) == sorted(HOSTS)
    assert "records" not in grown["base"].systems


def test_primary_gets_the_project_level_4_zones_and_server_group(grown: dict[str, Any]) -> None:
    primary: Plan = grown["primary"]
    assert not _zones(grown["primary-before"], "records")
    assert [r.props["name"] for r in primary.of_type("identity.Project")
            if r.system == "records"] == ["records-primary-dc"]
    assert _zones(primary, "records") == {"dmz", "app", "db", "mgmt", "devmgmt"}
    cidrs = {r.zone: r.props["cidr"] for r in primary.of_type("networking.Subnet")
             if r.system == "records"}
    assert cidrs["app"] == "10.10.26.0/24" and cidrs["devmgmt"] == "10.10.56.0/24"
    groups = [g for g in primary.of_type("compute.ServerGroup") if g.system == "records"]
    assert [(g.props["name"], g.props["policies"]) for g in groups] == [
        ("records-app", "anti-affinity")]
    hints = {r.props["schedulerHints"][0]["group"] for r in primary.of_type("compute.Instance")
             if r.tags.get("host", "").startswith("records-app")}
    assert hints == {groups[0].id}
    assert evaluate(primary, PolicyContext.from_model(grown["model"], "primary")) == []


def test_backup_gets_twins_and_the_replication_network(grown: dict[str, Any]) -> None:
    backup: Plan = grown["backup"]
    twins = sorted(r.tags["twin"] for r in backup.of_type("compute.Instance")
                   if r.system == "records")
    assert twins == ["records-app", "records-db1"]
    assert _zones(backup, "records") == {"dmz", "app", "db", "mgmt", "devmgmt", "replication"}
    repl = backup.named("backup-dc-records-replication-subnet")
    assert repl.props["cidr"] == "10.11.66.0/24"
    sources = {r.props["remoteIpPrefix"] for r in backup.of_type("networking.SecGroupRule")
               if r.system == "records" and r.zone == "replication"}
    assert sources == {"10.10.36.0/24", "10.10.26.0/24"}  # primary db and app of records
    assert backup.named("backup-dc-records-records-db1-standby-data").props["size"] == 1000
    local = backup.named("wan-backup-dc-local-dc-eg").props["endpoints"]
    assert repl.id in local  # replication reaches the backup DC through the DC-DC VPN
    route = backup.named("wan-backup-dc-records-replication-route-dc-10.10.0.0_16")
    assert (route.props["subnetId"], route.props["nextHop"]) == (repl.id, "10.11.66.254")
    assert evaluate(backup, PolicyContext.from_model(grown["model"], "backup")) == []


def test_resource_counts_grow_by_exactly_the_new_system(grown: dict[str, Any]) -> None:
    tenant = {"identity.Project": 1, "identity.RoleAssignment": 1, "networking.Router": 1}
    # per zone: network, subnet, router interface, default-deny group
    per_zone = ("networking.Network", "networking.Subnet", "networking.RouterInterface",
                "networking.SecGroup")
    # 3 internal flows x (ingress + egress), the flow to LGSP (egress here, ingress in lgsp)
    flow_rules = 3 * 2 + 2
    primary = Counter({**tenant, **dict.fromkeys(per_zone, 5)})
    primary.update({"networking.SecGroupRule": flow_rules + 2,  # + egress to replication
                    "compute.ServerGroup": 1, "compute.Instance": 3,
                    "blockstorage.Volume": 3, "compute.VolumeAttach": 3})
    backup = Counter({**tenant, **dict.fromkeys(per_zone, 6)})  # + replication zone
    backup.update({"networking.SecGroupRule": flow_rules + 2,  # + ingress from primary
                   "compute.Instance": 2, "blockstorage.Volume": 2,  # records-app, records-db1
                   "compute.VolumeAttach": 2})
    # the WAN router joins the zones the DC-DC VPN carries: a port, its router interface and
    # a host route to the other DC's /16 each (primary: app and db replicate, mgmt; backup:
    # replication, mgmt); records publishes nothing, so no DMZ joins the commune links
    for counter, zones in ((primary, 3), (backup, 2)):
        counter.update({"networking.Port": zones, "networking.RouterInterface": zones,
                        "networking.SubnetRoute": zones})
    for stack, expected in (("primary", primary), ("backup", backup)):
        before, after = grown[f"{stack}-before"], grown[stack]
        added = _added(before, after)
        assert added == expected, f"{stack}: {added - expected} extra, {expected - added} missing"
        assert len(after.resources) - len(before.resources) == sum(expected.values())

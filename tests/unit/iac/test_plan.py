"""The program under mocks creates what the inventory says, per DC."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from iac_model import build_model, with_system

from dcops.iac import REQUIRED_ZONES, Plan, plan, required_zones, tenant_zones
from dcops.model.site import Flow, Host, SiteKind, System, Zone


def _zones(p: Plan, system: str) -> set[str]:
    return {r.zone for r in p.of_type("networking.Network") if r.system == system}


def test_required_zones_table_follows_circular_12() -> None:
    assert REQUIRED_ZONES[1] == {Zone.DMZ, Zone.APP}
    assert required_zones(3) == {Zone.DMZ, Zone.APP, Zone.DB, Zone.MGMT}
    assert Zone.DEVMGMT in required_zones(4)
    assert Zone.DEVMGMT not in required_zones(3)


def test_each_system_gets_a_project_and_its_level_zones(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    projects = {r.system for r in primary.of_type("identity.Project")}
    assert projects == {"lgsp", "docmgmt", "dc_infra", "wan"}
    assert _zones(primary, "lgsp") == {"dmz", "app", "db", "mgmt"}
    assert _zones(primary, "dc_infra") == {"dmz", "app", "db", "mgmt", "devmgmt"}
    # level 2 declares app+db; the level adds the DMZ
    assert _zones(primary, "docmgmt") == {"dmz", "app", "db"}
    # one subnet, default-deny group and router interface per zone network
    n = len(primary.of_type("networking.Network"))
    assert len(primary.of_type("networking.Subnet")) == n
    assert len(primary.of_type("networking.SecGroup")) == n - 1  # the WAN transit has none
    assert all(r.props["deleteDefaultRules"] is True
               for r in primary.of_type("networking.SecGroup"))


def test_subnets_follow_the_address_plan(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    cidrs = {r.name: r.props["cidr"] for r in primary.of_type("networking.Subnet")}
    assert cidrs["primary-dc-lgsp-dmz-subnet"] == "10.10.10.0/24"
    assert cidrs["primary-dc-docmgmt-db-subnet"] == "10.10.31.0/24"
    assert cidrs["wan-primary-dc-transit-subnet"] == "10.10.250.0/24"
    assert len(set(cidrs.values())) == len(cidrs)
    gw1 = primary.named("primary-dc-lgsp-lgsp-gw1")
    assert gw1.props["networks"][0]["fixedIpV4"] == "10.10.10.11"


def test_flows_become_rules_and_nothing_else(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    db_in = [r for r in primary.of_type("networking.SecGroupRule")
             if r.system == "lgsp" and r.zone == "db" and r.props["direction"] == "ingress"]
    assert sorted((r.props["portRangeMin"], r.props["remoteIpPrefix"]) for r in db_in) == [
        (22, "10.10.40.0/24"), (5432, "10.10.20.0/24")]
    public = [r for r in primary.of_type("networking.SecGroupRule")
              if r.props.get("remoteIpPrefix") == "0.0.0.0/0"]
    assert [(r.system, r.zone, r.props["portRangeMin"]) for r in public] == [("lgsp", "dmz", 443)]


def test_ha_groups_are_anti_affinity_server_groups(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    groups = primary.of_type("compute.ServerGroup")
    assert sorted(g.props["name"] for g in groups) == ["lgsp-app", "lgsp-gw"]
    assert all(g.props["policies"] == "anti-affinity" for g in groups)
    gw = [r for r in primary.of_type("compute.Instance") if r.tags.get("host", "").startswith(
        "lgsp-gw")]
    hints = {r.props["schedulerHints"][0]["group"] for r in gw}
    assert hints == {primary.named("primary-dc-lgsp-lgsp-gw-sg").id}


def test_router_gateway_only_where_the_dmz_is_published(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    routers = {r.system: r.props.get("externalNetworkId")
               for r in primary.of_type("networking.Router")}
    assert routers["lgsp"] == "ext-net-id"
    assert routers["docmgmt"] is None
    assert routers["wan"] == "ext-net-id"


def test_backup_mirrors_dr_systems_with_twins_and_replication(plans: dict[str, Any]) -> None:
    backup: Plan = plans["backup"]
    projects = {r.system for r in backup.of_type("identity.Project")}
    assert projects == {"lgsp", "docmgmt", "dc_infra", "wan"}  # dc_infra: backup1 lives there
    twins = {(r.system, r.tags.get("twin")) for r in backup.of_type("compute.Instance")
             if r.tags.get("twin")}
    assert twins == {("lgsp", "lgsp-gw"), ("lgsp", "lgsp-app"), ("lgsp", "lgsp-db1"),
                     ("docmgmt", "docmgmt-app1"), ("docmgmt", "docmgmt-db1")}
    assert "replication" in _zones(backup, "lgsp")
    assert "replication" not in _zones(backup, "dc_infra")
    repl = [r for r in backup.of_type("networking.SecGroupRule")
            if r.system == "lgsp" and r.zone == "replication"]
    assert {r.props["remoteIpPrefix"] for r in repl} == {"10.10.30.0/24", "10.10.20.0/24"}
    db_twin = backup.named("backup-dc-lgsp-lgsp-db1-standby")
    assert db_twin.props["powerState"] == "active"
    vol = backup.named("backup-dc-lgsp-lgsp-db1-standby-data")
    assert vol.props["size"] == 500


def test_wan_connects_each_dc_to_the_other_and_every_district(plans: dict[str, Any]) -> None:
    for stack, other in (("primary", "backup-dc"), ("backup", "primary-dc")):
        p: Plan = plans[stack]
        peers = {r.tags["peer"] for r in p.of_type("vpnaas.SiteConnection")}
        assert peers == {other, "bien-hoa", "tan-phu"}  # communes hang off districts
        ike = p.of_type("vpnaas.IkePolicy")[0].props
        assert (ike["encryptionAlgorithm"], ike["authAlgorithm"], ike["pfs"]) == (
            "aes-256", "sha256", "group14")
    conn = plans["primary"].named("wan-primary-dc-to-bien-hoa")
    assert conn.props["peerAddress"] == "10.20.1.1"  # the district router from the inventory
    peer_eg = plans["primary"].named("wan-primary-dc-peer-bien-hoa-eg")
    assert peer_eg.props["endpoints"] == ["10.20.1.0/24"]


def test_every_resource_is_tagged(plans: dict[str, Any]) -> None:
    for stack in ("primary", "backup"):
        for res in plans[stack].resources:
            assert res.system and res.zone and res.tags.get("level"), res.name


def test_adding_a_system_adds_its_zones_groups_and_twin() -> None:
    base = build_model()
    new = System("hr", "HR", "Nhân sự", 3, "DoHA", "primary-dc", dr=True,
                 zones=(Zone.APP, Zone.DB), flows=(Flow(Zone.APP, Zone.DB, 5432),))
    hosts = [Host(f"hr-app{i}", f"10.10.23.1{i}", "primary-dc", systems=("hr",), zone=Zone.APP,
                  ha_group="hr-app", volume_gb=50) for i in (1, 2)]
    grown = with_system(base, new, *hosts)
    before = {s: plan(base, s) for s in ("primary", "backup")}
    after = {s: plan(grown, s) for s in ("primary", "backup")}
    assert not _zones(before["primary"], "hr")
    assert _zones(after["primary"], "hr") == {z.value for z in tenant_zones(
        new, SiteKind.PRIMARY_DC)} == {"dmz", "app", "db", "mgmt"}
    assert [g.props["name"] for g in after["primary"].of_type("compute.ServerGroup")
            if g.system == "hr"] == ["hr-app"]
    assert [r.tags["twin"] for r in after["backup"].of_type("compute.Instance")
            if r.system == "hr"] == ["hr-app"]
    assert "replication" in _zones(after["backup"], "hr")
    added = len(after["primary"].resources) - len(before["primary"].resources)
    # project, operator role, router, 4 x (net, subnet, rif, sg), 2 flow rules, group,
    # 2 x (vm, vol, attach), 2 replication egress rules (db 5432, app 873) to the backup DC,
    # and on the WAN router 3 x (port, router interface, host route to the backup DC's /16)
    # for the zones the DC-DC VPN carries (db and app replicate, mgmt administers)
    assert added == 1 + 1 + 1 + 4 * 4 + 2 + 1 + 2 * 3 + 2 + 3 * 3


def test_hosts_outside_their_zone_subnet_are_reported() -> None:
    from dcops.inventory.planchecks import plan_problems

    base = build_model()
    assert plan_problems(base) == []
    moved = replace(base.hosts["lgsp-db1"], address="10.10.31.11")
    found = plan_problems(replace(base, hosts={**base.hosts, "lgsp-db1": moved}))
    assert len(found) == 1 and "lgsp-db1" in found[0].message
    assert "10.10.30.0/24" in found[0].message and found[0].key == "lgsp-db1.ansible_host"


def test_plans_after_asyncio_run_left_no_event_loop() -> None:
    """asyncio.run() leaves the main thread without a current loop; the Pulumi SDK asks for one
    (an `audit run` after an asyncio test failed with "There is no current event loop")."""
    import asyncio
    import threading

    asyncio.run(asyncio.sleep(0))
    assert plan(build_model(), "primary").resources
    out: list[Plan] = []
    t = threading.Thread(target=lambda: out.append(plan(build_model(), "primary")))
    t.start()
    t.join(120)
    assert out and out[0].resources  # a worker thread has no loop either

"""The WAN carries the zones the inventory says must cross it, attached to the VPN and routed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dcops.iac import Plan, PolicyContext, PolicyViolation, evaluate, plan
from dcops.iac.layout import IacInputError, host_address_problem, stack_site
from dcops.iac.reach import dhcp_pool, wan_port_address, wan_zones
from dcops.inventory.planchecks import plan_problems
from dcops.model.site import SiteModel


def _check(plans: dict[str, Any], stack: str, mutated: Plan) -> list[PolicyViolation]:
    return evaluate(mutated, PolicyContext.from_model(plans["model"], stack))


def _reach(model: SiteModel, stack: str) -> set[tuple[str, str, str]]:
    return {(w.system, w.zone.value, w.link)
            for w in wan_zones(model, stack_site(model, stack))}


def test_zones_each_link_carries_follow_the_inventory(model: SiteModel) -> None:
    assert _reach(model, "primary") == {
        ("lgsp", "app", "dc"), ("lgsp", "db", "dc"), ("lgsp", "mgmt", "dc"),  # DR + admin
        ("lgsp", "dmz", "district"),  # publishes 443
        ("docmgmt", "app", "dc"), ("docmgmt", "db", "dc"),  # DR, no mgmt zone, no DMZ ports
        ("dc_infra", "mgmt", "dc")}  # not DR: administration only
    assert _reach(model, "backup") == {
        ("lgsp", "replication", "dc"), ("lgsp", "mgmt", "dc"), ("lgsp", "dmz", "district"),
        ("docmgmt", "replication", "dc"), ("dc_infra", "mgmt", "dc")}


def test_addresses_of_the_two_routers_on_a_zone() -> None:
    assert wan_port_address("10.11.60.0/24") == "10.11.60.254"
    assert dhcp_pool("10.11.60.0/24") == ("10.11.60.2", "10.11.60.253")


def test_local_endpoint_groups_list_the_zone_subnets(plans: dict[str, Any]) -> None:
    backup: Plan = plans["backup"]
    dc = backup.named("wan-backup-dc-local-dc-eg")
    district = backup.named("wan-backup-dc-local-district-eg")
    assert dc.props["type"] == "subnet" and dc.tags["link"] == "dc"
    assert set(dc.props["endpoints"]) == {backup.named(f"backup-dc-{s}-subnet").id for s in (
        "lgsp-replication", "lgsp-mgmt", "docmgmt-replication", "dc_infra-mgmt")}
    assert district.props["endpoints"] == [backup.named("backup-dc-lgsp-dmz-subnet").id]
    for conn in backup.of_type("vpnaas.SiteConnection"):
        expected = dc if conn.tags["peer"] == "primary-dc" else district
        assert conn.props["localEpGroupId"] == expected.id, conn.name
    transit = backup.named("wan-backup-dc-transit-subnet").id
    assert all(transit not in g.props["endpoints"]
               for g in backup.of_type("vpnaas.EndpointGroup"))


def test_each_carried_subnet_is_on_the_vpn_router_and_routed(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    router = primary.named("wan-primary-dc-router").id
    db = primary.named("primary-dc-lgsp-db-subnet")
    port = primary.named("wan-primary-dc-lgsp-db-port")
    assert port.props["fixedIps"] == [{"subnetId": db.id, "ipAddress": "10.10.30.254"}]
    assert port.props["networkId"] == primary.named("primary-dc-lgsp-db-net").id
    rif = primary.named("wan-primary-dc-lgsp-db-rif")
    assert (rif.props["routerId"], rif.props["portId"]) == (router, port.id)
    assert (rif.system, rif.zone) == ("lgsp", "db")  # tags inherited from the port
    routes = {(r.props["subnetId"], r.props["destinationCidr"], r.props["nextHop"])
              for r in primary.of_type("networking.SubnetRoute")}
    assert (db.id, "10.11.0.0/16", "10.10.30.254") in routes
    dmz = primary.named("primary-dc-lgsp-dmz-subnet").id
    assert {(d, h) for s, d, h in routes if s == dmz} == {
        ("10.20.1.0/24", "10.10.10.254"), ("10.20.3.0/24", "10.10.10.254")}
    # the DMZ is not routed to the other DC, nor the database to the districts
    assert not {d for s, d, _ in routes if s == dmz} & {"10.11.0.0/16"}
    assert not {d for s, d, _ in routes if s == db.id} & {"10.20.1.0/24", "10.20.3.0/24"}
    pools = db.props["allocationPools"]
    assert pools == [{"start": "10.10.30.2", "end": "10.10.30.253"}]  # .254 is the VPN router's


def test_replication_subnet_left_out_of_the_dc_link_fails(plans: dict[str, Any]) -> None:
    backup: Plan = plans["backup"]
    eg = backup.named("wan-backup-dc-local-dc-eg")
    repl = backup.named("backup-dc-lgsp-replication-subnet")
    cut = backup.with_props(eg.name, endpoints=[e for e in eg.props["endpoints"]
                                                if e != repl.id])
    found = _check(plans, "backup", cut)
    assert [(v.policy, v.resource) for v in found] == [("wan-endpoints", repl.name)]
    assert "10.11.60.0/24" in found[0].message and "DC-DC" in found[0].message


def test_primary_replication_sources_must_be_dc_endpoints(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    eg = primary.named("wan-primary-dc-local-dc-eg")
    db = primary.named("primary-dc-docmgmt-db-subnet")
    cut = primary.with_props(eg.name, endpoints=[e for e in eg.props["endpoints"] if e != db.id])
    found = _check(plans, "primary", cut)
    assert [(v.policy, v.resource) for v in found] == [("wan-endpoints", db.name)]


def test_endpoint_not_attached_to_the_vpn_router_fails(plans: dict[str, Any]) -> None:
    backup: Plan = plans["backup"]
    cut = backup.without("wan-backup-dc-lgsp-mgmt-port", "wan-backup-dc-lgsp-mgmt-rif")
    found = _check(plans, "backup", cut)
    assert [(v.policy, v.resource) for v in found] == [
        ("wan-endpoints", "wan-backup-dc-local-dc-eg")]
    assert "backup-dc-lgsp-mgmt-subnet is not attached" in found[0].message


def test_missing_host_route_fails(plans: dict[str, Any]) -> None:
    primary: Plan = plans["primary"]
    route = "wan-primary-dc-lgsp-dmz-route-district-10.20.3.0_24"
    found = _check(plans, "primary", primary.without(route))
    assert [(v.policy, v.resource) for v in found] == [
        ("wan-endpoints", "primary-dc-lgsp-dmz-subnet")]
    assert "10.20.3.0/24" in found[0].message and "tan-phu" in found[0].message
    wrong_hop = primary.with_props(route, nextHop="10.10.10.1")  # the zone's own router
    assert [v.policy for v in _check(plans, "primary", wrong_hop)] == ["wan-endpoints"]


def test_router_addresses_are_not_host_addresses(model: SiteModel) -> None:
    assert host_address_problem("10.10.30.11", "10.10.30.0/24") is None
    assert "VPN router" in str(host_address_problem("10.10.30.254", "10.10.30.0/24"))
    assert "gateway" in str(host_address_problem("10.10.30.1", "10.10.30.0/24"))
    assert "outside" in str(host_address_problem("10.10.31.5", "10.10.30.0/24"))
    taken = replace(model.hosts["lgsp-db1"], address="10.10.30.254")
    grown = replace(model, hosts={**model.hosts, "lgsp-db1": taken})
    problems = plan_problems(grown)
    assert [p.kind for p in problems] == ["address-outside-zone"]
    assert "lgsp-db1" in problems[0].message and "VPN router" in problems[0].message
    with pytest.raises(IacInputError, match="VPN router"):  # an error, not a silent DHCP
        plan(grown, "primary")
    dhcp = replace(grown, hosts={**grown.hosts, "lgsp-db1": replace(taken, dhcp=True)})
    db1 = plan(dhcp, "primary").named("primary-dc-lgsp-lgsp-db1")
    assert "fixedIpV4" not in db1.props["networks"][0]  # marked dcops_dhcp: DHCP, as declared

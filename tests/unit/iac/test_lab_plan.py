"""The lab inventory is planned by the IaC: zones carved from each DC's cloud_prefix (not the lab
bridge), lab hosts on DHCP, the WAN peering with the other DC's cloud prefix."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from dcops.iac import Plan, evaluate, plan
from dcops.iac.resources import PolicyContext
from dcops.inventory import load_inventory
from dcops.inventory.planchecks import plan_problems
from dcops.model.site import SiteModel

LAB = Path(__file__).resolve().parents[3] / "inventories" / "lab"


@pytest.fixture(scope="module")
def lab() -> dict[str, Any]:
    model = load_inventory(LAB)
    return {"model": model, "primary": plan(model, "primary"), "backup": plan(model, "backup")}


def _cidrs(p: Plan) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(r.props["cidr"]) for r in p.of_type("networking.Subnet")]


def test_the_lab_declares_a_cloud_prefix_apart_from_its_bridge() -> None:
    model = load_inventory(LAB)
    assert plan_problems(model) == []
    for name, prefix in (("primary-dc", "10.10.0.0/16"), ("backup-dc", "10.11.0.0/16")):
        site = model.sites[name]
        assert site.cloud_prefix == prefix and site.plan_prefix == prefix
        assert site.wan_prefixes == (prefix,)
        assert not ipaddress.ip_network(prefix).overlaps(ipaddress.ip_network(site.subnets[0]))
    assert model.sites["bien-hoa"].wan_prefixes == model.sites["bien-hoa"].subnets


def test_every_zone_subnet_is_carved_from_the_cloud_prefix(lab: dict[str, Any]) -> None:
    for stack, prefix in (("primary", "10.10.0.0/16"), ("backup", "10.11.0.0/16")):
        cidrs = _cidrs(lab[stack])
        assert len(cidrs) >= 8, stack
        assert all(c.subnet_of(ipaddress.IPv4Network(prefix)) for c in cidrs), (stack, cidrs)
    db = lab["primary"].named("primary-dc-lgsp-db-subnet")
    assert db.props["cidr"] == "10.10.30.0/24"  # lgsp is the first system: db block 30 + 0


def test_lab_hosts_are_planned_on_dhcp_not_on_their_bridge_address(
        lab: dict[str, Any]) -> None:
    model: SiteModel = lab["model"]
    assert all(h.dhcp for h in model.hosts.values())
    instances = {r.props["name"]: r for r in lab["primary"].of_type("compute.Instance")}
    assert {"lab-app1", "lab-db1", "lab-ca1", "lab-mon1"} <= set(instances)
    for host in ("lab-app1", "lab-db1", "lab-ca1", "lab-mon1"):
        (network,) = instances[host].props["networks"]
        assert "fixedIpV4" not in network, host  # DHCP from the zone's pool
    backup = {r.props["name"] for r in lab["backup"].of_type("compute.Instance")}
    assert "lab-backup1" in backup and "lab-app1-standby" in backup


def test_the_wan_peers_with_the_other_dcs_cloud_prefix(lab: dict[str, Any]) -> None:
    peer = lab["primary"].named("wan-primary-dc-peer-backup-dc-eg")
    assert peer.props["endpoints"] == ["10.11.0.0/16"]  # not the lab bridge 10.77.1.0/24
    commune = lab["primary"].named("wan-primary-dc-peer-bien-hoa-eg")
    assert commune.props["endpoints"] == ["10.78.1.0/24"]
    routes = {r.props["destinationCidr"] for r in lab["backup"].of_type("networking.SubnetRoute")}
    assert "10.10.0.0/16" in routes and "10.77.0.0/24" not in routes


def test_the_lab_plan_passes_every_policy(lab: dict[str, Any]) -> None:
    for stack in ("primary", "backup"):
        violations = evaluate(lab[stack], PolicyContext.from_model(lab["model"], stack))
        assert violations == [], (stack, violations)

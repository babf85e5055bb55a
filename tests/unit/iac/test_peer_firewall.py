"""The baseline firewall lets a cluster's members talk, and nobody else.

The Alertmanager pair (9093 from each Prometheus, 9094 tcp and udp gossip) and the event bus (6222
routes between the nodes, 4222 from the hosts running collectors and detection) are opened by the
`peers` of the roles' meta/ports.yml, turned into `dcops_peer_rules` by the dcops_derived inventory
plugin (dcops.inventory.peerrules) and rendered by the baseline's nftables template through
ansible-playbook itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_derived_growth import LAB, PRODUCTION, ROOT, _render, ansible_list

from dcops.errors import InventoryError
from dcops.inventory.ansible_io import read
from dcops.inventory.peerrules import peer_rules

PEER_PORTS = ("dport 9093 ", "dport 9094 ", "dport 4222 ", "dport 6222 ")
SOC1, SOC2 = "10.10.44.21/32", "10.11.44.21/32"


def _peer_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if any(p in line for p in PEER_PORTS)]


def test_monitoring_pair_opens_api_and_gossip_to_the_other_member_only(tmp_path: Path) -> None:
    for host, other in (("soc1", SOC2), ("soc2", SOC1)):
        lines = _peer_lines(_render(PRODUCTION, host, "baseline", "etc/nftables.conf.j2",
                                    tmp_path / host))
        assert lines == [
            f'ip saddr {{ {other} }} tcp dport 9093 accept comment "monitoring_server: '
            "Alertmanager API, reached by the Prometheus of both DCs when the pair is clustered "
            '(peers soc1, soc2)"',
            f'ip saddr {{ {other} }} tcp dport 9094 accept comment "monitoring_server: '
            'Alertmanager cluster gossip (TCP) between the pair (peers soc1, soc2)"',
            f'ip saddr {{ {other} }} udp dport 9094 accept comment "monitoring_server: '
            'Alertmanager cluster gossip (UDP) between the pair (peers soc1, soc2)"',
        ], host


def test_bus_node_opens_routes_to_the_other_nodes_and_clients_to_the_monitoring_hosts(
        tmp_path: Path) -> None:
    lines = _peer_lines(_render(PRODUCTION, "bus2", "baseline", "etc/nftables.conf.j2", tmp_path))
    assert lines == [
        f'ip saddr {{ {SOC1}, {SOC2} }} tcp dport 4222 accept comment "event_bus: NATS clients '
        '(collectors, detection workers) over mutual TLS (peers soc1, soc2)"',
        'ip saddr { 10.10.44.41/32, 10.10.44.43/32 } tcp dport 6222 accept comment "event_bus: '
        'NATS cluster routes between the bus nodes over mutual TLS (peers bus1, bus2, bus3)"',
    ]


def test_a_web_zone_host_gets_no_peer_rule(tmp_path: Path) -> None:
    text = _render(PRODUCTION, "portal-web1", "baseline", "etc/nftables.conf.j2", tmp_path)
    assert "dport 8443" in text or "dport 22" in text  # the firewall did render
    assert _peer_lines(text) == []


def test_only_the_cluster_members_get_dcops_peer_rules() -> None:
    hv = ansible_list(PRODUCTION)["_meta"]["hostvars"]
    assert sorted(h for h, v in hv.items() if v.get("dcops_peer_rules")) == [
        "bus1", "bus2", "bus3", "soc1", "soc2"]
    assert not [r for rule in hv["soc1"]["dcops_peer_rules"] for r in rule["sources"]
                if not r.endswith("/32")]


def test_ports_follow_the_roles_variables() -> None:
    raw = read(PRODUCTION)
    for host in ("soc1", "soc2"):
        raw.hostvars[host] = {**raw.hostvars[host],
                              "monitoring_server_alertmanager_cluster_port": 9794}
    raw.hostvars["bus1"] = {**raw.hostvars["bus1"], "event_bus_cluster_port": 7222}
    rules = peer_rules(ROOT, raw)
    assert {(r["protocol"], r["port"]) for r in rules["soc1"]} == {
        ("tcp", 9093), ("tcp", 9794), ("udp", 9794)}
    assert {(r["protocol"], r["port"]) for r in rules["bus1"]} == {("tcp", 4222), ("tcp", 7222)}
    assert {(r["protocol"], r["port"]) for r in rules["bus2"]} == {("tcp", 4222), ("tcp", 6222)}


def test_one_monitoring_host_opens_nothing_and_the_lab_bus_only_to_its_peers() -> None:
    """The lab keeps one monitoring host (Alertmanager on loopback, no pair rule); its three
    bus nodes (lab-backup1, lab-ca1, lab-mon1) get routes from each other, clients from lab-mon1."""
    rules = peer_rules(ROOT, read(LAB))
    assert sorted(rules) == ["lab-backup1", "lab-ca1", "lab-mon1"]
    assert {(r["port"], tuple(r["sources"])) for r in rules["lab-mon1"]} == {
        (6222, ("10.77.0.13/32", "10.77.0.14/32"))}
    assert {(r["port"], tuple(r["sources"])) for r in rules["lab-ca1"]} == {
        (4222, ("10.77.0.15/32",)), (6222, ("10.77.0.13/32", "10.77.0.15/32"))}


def test_a_peer_without_an_ip_address_is_an_error_naming_it() -> None:
    raw = read(LAB)
    raw.groups["monitoring"] = ("lab-mon1", "lab-ca1")
    raw.hostvars["lab-ca1"] = {**raw.hostvars["lab-ca1"], "ansible_host": "ca1.example"}
    with pytest.raises(InventoryError, match=r"peer lab-ca1 of role \w+ has "
                       r"ansible_host 'ca1.example': expected an IPv4 address") as err:
        peer_rules(ROOT, raw)
    assert str(err.value).startswith("hosts.yml:"), err.value  # where ansible_host is written
    assert "(key: lab-ca1.ansible_host)" in str(err.value)


def test_peers_that_are_not_host_names_are_an_error_naming_the_ports_file() -> None:
    raw = read(LAB)
    raw.hostvars["lab-mon1"] = {**raw.hostvars["lab-mon1"], "event_bus_client_hosts": "lab-mon1"}
    with pytest.raises(InventoryError, match="is not a list of inventory host names") as err:
        peer_rules(ROOT, raw)
    assert "playbooks/roles/event_bus/meta/ports.yml" in str(err.value)
    assert "ports[0].peers" in str(err.value)

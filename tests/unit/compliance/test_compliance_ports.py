"""SRV-16: the ports a host may listen on are the catalogue's baseline plus what its declared
services and the dcops roles site.yml applies to it open (each role's meta/ports.yml, templated
with the role's defaults and the host's inventory variables); anything else still fails.

The `ports` section below is `ss -H -tulnp` as recorded on lab-app1 after playbooks/baseline.yml,
snmp.yml and node_exporter.yml (systemd mode, 2026-12-03): snmpd's trap socket sits on an
ephemeral UDP port of 0.0.0.0.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcops.compliance import Assessor, Evidence, Finding, Profile, load_catalogue
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, split
from dcops.compliance.collect.site import SiteCollector
from dcops.errors import InventoryError
from dcops.inventory import load_inventory
from dcops.inventory.ansible_io import read
from dcops.inventory.roleports import match, project_root, role_ports

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "inventories" / "lab"
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
CONVERGED = """\
udp UNCONN 0      0       127.0.0.1:161   0.0.0.0:* users:(("snmpd",pid=2654,fd=8))
udp UNCONN 0      0      10.77.0.11:161   0.0.0.0:* users:(("snmpd",pid=2654,fd=6))
udp UNCONN 0      0         0.0.0.0:33620 0.0.0.0:* users:(("snmpd",pid=2654,fd=7))
tcp LISTEN 0      4096   10.77.0.11:9100  0.0.0.0:* users:(("prometheus-node",pid=2846,fd=3))
tcp LISTEN 0      128       0.0.0.0:22    0.0.0.0:* users:(("sshd",pid=31,fd=3))
tcp LISTEN 0      128          [::]:22       [::]:* users:(("sshd",pid=31,fd=4))
--- ephemeral 32768\t60999
"""
# a port nobody declared, and a second ephemeral-range socket owned by another process
ROGUE = ('tcp LISTEN 0      5         0.0.0.0:4444  0.0.0.0:* users:(("nc",pid=77,fd=3))\n'
         'udp UNCONN 0      0         0.0.0.0:40001 0.0.0.0:* users:(("python3",pid=78,fd=3))\n')


def _ports(host: str) -> dict[str, str]:
    raw = read(LAB)
    root = project_root(LAB)
    assert root == ROOT
    return {p.port: p.source() for p in role_ports(root, raw)[host]}


def test_lab_host_ports_come_from_its_roles_with_their_variables() -> None:
    ports = _ports("lab-app1")
    assert set(ports) == {"tcp/22", "tcp/9100", "udp/161", "udp/ephemeral:snmpd"}
    assert ports["tcp/9100"].startswith("role node_exporter (playbooks/node_exporter.yml: "
                                        "servers:!backup_twins; node_exporter_port=9100 "
                                        "(role default))")
    assert "snmp_agent_listen=['udp:10.77.0.11:161'" in ports["udp/161"]
    assert "trapsess" in ports["udp/ephemeral:snmpd"]
    assert "baseline_ssh_port=22" in ports["tcp/22"]


def test_inventory_variables_move_or_drop_a_roles_port() -> None:
    raw = read(LAB)
    raw.hostvars["lab-app1"]["node_exporter_port"] = 9200
    raw.hostvars["lab-db1"]["node_exporter_enabled"] = False
    raw.hostvars["lab-db1"]["snmp_agent_trap_target"] = ""
    got = role_ports(ROOT, raw)
    app = {p.port: p for p in got["lab-app1"]}
    assert "tcp/9100" not in app
    assert "node_exporter_port=9200 (inventory)" in app["tcp/9200"].variable
    assert {p.port for p in got["lab-db1"]} == {"tcp/22", "udp/161"}


def test_host_patterns_follow_ansible() -> None:
    raw = read(LAB)
    assert match("servers:!db_servers", raw) == set(raw.groups["servers"]) - {"lab-db1"}
    assert "lab-db1" in raw.groups["servers"]
    assert match("servers:&lgsp", raw) == {"lab-app1", "lab-db1"}
    assert match("monitoring,ca", raw) == {"lab-mon1", "lab-ca1"}
    assert match("no_such_group", raw) == set()


@pytest.mark.parametrize(("body", "key"), [
    ("ports:\n  - {protocol: tcp, port: 1, variable: x}\n", "ports[0]"),
    ("ports: {protocol: tcp}\n", "ports"),
    ("ports:\n  - {protocol: tcp, port: '{{ x_name }}', variable: x_name, why: w}\n",
     "ports[0].port"),
])
def test_bad_port_declaration_names_file_and_entry(tmp_path: Path, body: str, key: str) -> None:
    (tmp_path / "playbooks" / "roles" / "x" / "meta").mkdir(parents=True)
    (tmp_path / "playbooks" / "roles" / "x" / "defaults").mkdir()
    (tmp_path / "playbooks" / "roles" / "x" / "defaults" / "main.yml").write_text(
        "x_name: not-a-port\n", encoding="utf-8")
    (tmp_path / "playbooks" / "roles" / "x" / "meta" / "ports.yml").write_text(body, "utf-8")
    (tmp_path / "playbooks" / "site.yml").write_text(
        "- ansible.builtin.import_playbook: x.yml\n", encoding="utf-8")
    (tmp_path / "playbooks" / "x.yml").write_text("- hosts: servers\n  roles: [x]\n", "utf-8")
    with pytest.raises(InventoryError) as err:
        role_ports(tmp_path, read(LAB))
    assert "playbooks/roles/x/meta/ports.yml" in str(err.value) and key in str(err.value)


def test_inventory_without_playbooks_declares_only_services(tmp_path: Path) -> None:
    inventory = tmp_path / "inventories" / "lab"
    shutil.copytree(LAB, inventory)
    model = load_inventory(inventory)
    ev = Evidence()
    SiteCollector(str(inventory)).collect(model, ev)
    db = ev.get("lab-db1", "ports.declared")
    assert db is not None and db.value == {"tcp/5432": "dcops_services: postgresql"}
    assert "role ports unknown" in ev.records[db.record].output


def _srv16(ports: str) -> Finding:
    model = load_inventory(LAB)
    ev = Evidence()
    SiteCollector(str(LAB)).collect(model, ev)
    output = (Path(__file__).parent / "data" / "hardened.txt").read_text(encoding="utf-8")
    output = re.sub(r"^@@DCOPS@@ ports\n.*?^@@DCOPS@@ rc \d+\n",
                    lambda _m: f"@@DCOPS@@ ports\n{ports}@@DCOPS@@ rc 0\n", output,
                    count=1, flags=re.S | re.M)
    for host in ("lab-app1", "lab-db1"):
        sections = split(output)
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections, NOW)
    report = Assessor(model, load_catalogue(), ev, Profile(), "tt12", NOW).assess("lgsp")
    return next(f for f in report.findings if f.control == "SRV-16")


def test_converged_host_is_met_and_says_where_each_port_came_from() -> None:
    finding = _srv16(CONVERGED)
    assert finding.verdict.value == "met", finding.reason
    obs = finding.checks[0].observations[0]
    assert obs.observed == ["tcp/22", "tcp/9100", "udp/161", "udp/ephemeral:snmpd"]
    assert "tcp/9100 (role node_exporter (playbooks/node_exporter.yml" in obs.detail
    assert "udp/ephemeral:snmpd (role snmp_agent" in obs.detail
    assert "udp 0.0.0.0:33620 snmpd" in obs.excerpt and "ephemeral range 32768-60999" in obs.excerpt


def test_a_port_nobody_declared_still_fails() -> None:
    finding = _srv16(ROGUE + CONVERGED)
    assert finding.verdict.value == "not_met"
    obs = finding.checks[0].observations[0]
    assert obs.result == "fail"
    assert obs.detail.startswith("not in baseline: tcp/4444, udp/ephemeral:python3;")


def test_an_alertmanager_pair_opens_its_api_and_gossip_ports_only_when_clustered() -> None:
    """monitoring_server's ports follow the inventory's monitoring group as the role's defaults do
    (`groups` reaches the templates): one host keeps Alertmanager on loopback, two cluster it."""
    raw = read(LAB)
    alone = {p.port for p in role_ports(ROOT, raw)["lab-mon1"]}
    assert "tcp/9090" in alone and not alone & {"tcp/9093", "tcp/9094", "udp/9094"}
    raw.groups["monitoring"] = ("lab-mon1", "lab-ca1")
    pair = {p.port: p.source() for p in role_ports(ROOT, raw)["lab-mon1"]}
    assert {"tcp/9090", "tcp/9093", "tcp/9094", "udp/9094"} <= set(pair)
    assert "monitoring_server_alertmanager_cluster_port=9094" in pair["udp/9094"]

"""Derived, not declared: twins, zone networks and node targets follow the site model.

dcops.inventory.derived computes them from the address plan; the dcops_derived inventory plugin
hands them to Ansible (`ansible-inventory --list` is run for real here), and a copy of the
production inventory grown by one system changes exactly that system's twins, networks, targets
and firewall rules.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_inventory_growth import HOSTS, _grown_copy

from dcops.inventory import load_inventory
from dcops.inventory.addressplan import address_plan, dc_sites, subnet_cidr, twin_units
from dcops.inventory.derived import node_targets, twin_hosts, zone_networks
from dcops.model.site import SiteModel

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "inventories" / "production"
LAB = ROOT / "inventories" / "lab"
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}


def ansible_list(inventory: Path) -> dict[str, Any]:
    """`ansible-inventory --list` of an inventory directory, as Ansible itself builds it."""
    out = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    copy = _grown_copy(tmp_path_factory.mktemp("inv") / "production")
    return {"base": load_inventory(PRODUCTION), "model": load_inventory(copy), "path": copy,
            "ansible-base": ansible_list(PRODUCTION), "ansible": ansible_list(copy)}


def _planned_twins(model: SiteModel) -> dict[str, tuple[str, str]]:
    backup = dc_sites(model)["backup"]
    return {f"{u.unit}-standby": (u.system, subnet_cidr(model, backup, u.system, u.zone))
            for u in twin_units(model)}


def test_twins_are_the_address_plans_with_free_addresses_in_their_subnet() -> None:
    model = load_inventory(PRODUCTION)
    twins = twin_hosts(model)
    planned = _planned_twins(model)
    # 16 + the event bus nodes bus1-3 - soc1 (HA group soc runs in both DCs: soc2 is its twin)
    assert sorted(t.name for t in twins) == sorted(planned) and len(twins) == 18
    assert not [t for t in twins if "soc" in t.twin_of or "soc1" in t.twin_of]
    addresses = [t.address for t in twins]
    assert None not in addresses and len(set(addresses)) == len(addresses)
    assert not set(addresses) & {h.address for h in model.hosts.values()}
    for t in twins:
        assert ipaddress.ip_address(t.address) in ipaddress.ip_network(planned[t.name][1])
        assert t.site == "backup-dc" and t.system == planned[t.name][0]
    by_name = {t.name: t for t in twins}
    assert by_name["lgsp-db-standby"].address == "10.11.30.11"  # lgsp-db1's host part
    assert by_name["lgsp-db-standby"].twin_of == ("lgsp-db1", "lgsp-db2")
    assert by_name["bastion1-standby"].address == "10.11.44.12"  # .11 is backup1's


def test_zone_networks_are_the_address_plan_grouped_by_zone() -> None:
    model = load_inventory(PRODUCTION)
    plan = address_plan(model)
    nets = zone_networks(model)
    assert {c for cidrs in nets.values() for c in cidrs} == set(plan)
    for zone, cidrs in nets.items():
        assert {plan[c][2] for c in cidrs} == {zone}
    assert "10.10.34.0/24" in nets["db"] and "10.11.20.0/24" in nets["app"]


def test_ansible_sees_the_twins_and_the_networks_of_production() -> None:
    data = ansible_list(PRODUCTION)
    model = load_inventory(PRODUCTION)
    twins = {t.name: t for t in twin_hosts(model)}
    assert sorted(data["backup_twins"]["hosts"]) == sorted(twins)
    assert set(twins) <= set(data["backup_servers"]["hosts"])
    hv = data["_meta"]["hostvars"]
    for name, t in twins.items():
        assert hv[name]["ansible_host"] == t.address
        assert hv[name]["dcops_twin_of"] == list(t.twin_of)
        assert hv[name]["dcops_site"] == "backup-dc"  # from group_vars/backup_dc.yml
        assert name in data[t.system]["hosts"]  # the system group (same name in production)
    assert hv["lgsp-db1"]["dcops_zone_networks"] == zone_networks(model)
    assert "baseline_nftables_zone_networks" not in hv["lgsp-db1"]  # the role derives it


def test_an_unloadable_plugin_fails_the_inventory_instead_of_dropping_the_twins() -> None:
    env = {**_env(), "ANSIBLE_INVENTORY_PLUGINS": "/nonexistent"}
    out = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(PRODUCTION), "--list"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode != 0 and "zz-derived.dcops.yml" in out.stderr, out.stderr[-2000:]


def test_ansible_lab_has_no_twins_and_the_flat_lab_network() -> None:
    data = ansible_list(LAB)
    assert "backup_twins" not in data
    (host, hv), *_ = data["_meta"]["hostvars"].items()
    assert set(hv["dcops_zone_networks"]["db"]) == {"10.77.0.0/24"}, host


def test_dcops_reads_only_declared_hosts_with_the_plugin_source_present() -> None:
    assert (PRODUCTION / "zz-derived.dcops.yml").is_file()
    model = load_inventory(PRODUCTION)
    assert not [h for h in model.hosts if h.endswith("-standby")]


def test_growth_adds_exactly_the_new_systems_twins(grown: dict[str, Any]) -> None:
    before = {t.name: t for t in twin_hosts(grown["base"])}
    after = {t.name: t for t in twin_hosts(grown["model"])}
    assert set(after) - set(before) == {"records-app-standby", "records-db1-standby"}
    assert {n: after[n] for n in before} == before
    assert after["records-db1-standby"].address == "10.11.36.11"
    old, new = grown["ansible-base"], grown["ansible"]
    assert set(new["backup_twins"]["hosts"]) - set(old["backup_twins"]["hosts"]) == {
        "records-app-standby", "records-db1-standby"}
    assert sorted(new["records"]["hosts"]) == sorted([*HOSTS, "records-app-standby",
                                                      "records-db1-standby"])


def test_growth_adds_exactly_the_new_systems_zone_networks(grown: dict[str, Any]) -> None:
    before, after = zone_networks(grown["base"]), zone_networks(grown["model"])
    added = {(z, c) for z, cs in after.items() for c in cs} - {
        (z, c) for z, cs in before.items() for c in cs}
    removed = {(z, c) for z, cs in before.items() for c in cs} - {
        (z, c) for z, cs in after.items() for c in cs}
    assert not removed
    assert added == {(z, f"10.{dc}.{block + 6}.0/24")
                     for z, block in (("dmz", 10), ("app", 20), ("db", 30), ("mgmt", 40),
                                      ("devmgmt", 50)) for dc in (10, 11)} | {
        ("replication", "10.11.66.0/24")}
    hv = grown["ansible"]["_meta"]["hostvars"]["records-db1"]
    assert hv["dcops_zone_networks"] == after


def test_growth_adds_exactly_the_new_systems_node_targets(grown: dict[str, Any]) -> None:
    def key(groups: list[dict[str, Any]]) -> dict[str, Any]:
        return {g["labels"]["host"]: g for g in groups}

    before, after = key(node_targets(grown["base"])), key(node_targets(grown["model"]))
    assert set(after) - set(before) == set(HOSTS)
    assert {h: after[h] for h in before} == before
    assert after["records-db1"] == {"targets": ["10.10.36.11:9100"], "labels": {
        "site": "primary-dc", "host": "records-db1", "role": "db", "zone": "db"}}


RENDER_PLAY = """\
- name: Render one template of a role for one host, with the role's defaults
  hosts: "{{ target }}"
  gather_facts: false
  roles:
    - role: render_one
"""


def _render(inventory: Path, host: str, role_name: str, template: str, tmp: Path) -> str:
    """A role's template rendered for `host` by ansible-playbook itself (the role's defaults, the
    inventory and the plugin's variables with Ansible's precedence), written locally."""
    role = tmp / "roles" / "render_one"
    (role / "defaults").mkdir(parents=True)
    (role / "tasks").mkdir()
    source = ROOT / "playbooks" / "roles" / role_name
    (role / "defaults" / "main.yml").write_text(
        (source / "defaults" / "main.yml").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp / f"{host}.out"
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump([{
        "name": "Render", "ansible.builtin.template": {
            "src": str(source / "templates" / template), "dest": str(out), "mode": "0600"}}]),
        encoding="utf-8")
    (tmp / "play.yml").write_text(RENDER_PLAY, encoding="utf-8")
    env = {**_env(), "ANSIBLE_ROLES_PATH": str(tmp / "roles")}
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory),
                          str(tmp / "play.yml"), "-e", f"target={host}",
                          "-e", "ansible_connection=local",
                          "-e", f"ansible_python_interpreter={sys.executable}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return out.read_text(encoding="utf-8")


def test_new_db_host_firewall_opens_5432_to_the_new_app_subnet(grown: dict[str, Any],
                                                               tmp_path: Path) -> None:
    text = _render(grown["path"], "records-db1", "baseline", "etc/nftables.conf.j2", tmp_path)
    rules = [line.strip() for line in text.splitlines() if "dport 5432" in line]
    assert len(rules) == 1, rules
    sources = rules[0].split("{", 1)[1].split("}", 1)[0].replace(" ", "").split(",")
    assert "10.10.26.0/24" in sources and "10.11.26.0/24" in sources  # records app, both DCs
    assert "comment \"records/app -> records/db" in rules[0]
    scrape = [line.strip() for line in text.splitlines() if "dport 9100" in line]
    assert len(scrape) == 1 and "10.10.44.21/32" in scrape[0], scrape  # soc1 only


def test_monitoring_server_renders_the_generators_node_targets(grown: dict[str, Any],
                                                               tmp_path: Path) -> None:
    """The role's node.yml at deploy time equals `dcops collect node-targets` (grown copy)."""
    text = _render(grown["path"], "soc1", "monitoring_server",
                   "etc/prometheus/targets/node.yml.j2", tmp_path)
    assert yaml.safe_load(text) == node_targets(grown["model"])
    assert "records-db1" in text and "-standby" not in text


def test_committed_node_targets_are_the_generators_output() -> None:
    """monitoring/prometheus/targets/node.yml is only an example of what the role renders."""
    committed = ROOT / "monitoring" / "prometheus" / "targets" / "node.yml"
    assert yaml.safe_load(committed.read_text(encoding="utf-8")) == node_targets(
        load_inventory(PRODUCTION)), "regenerate: dcops collect node-targets -o " + str(committed)


def test_the_iac_gives_each_twin_the_address_ansible_knows_it_by(grown: dict[str, Any]) -> None:
    from dcops.iac import plan

    model = grown["model"]
    backup = plan(model, "backup")
    fixed = {r.props["name"]: r.props["networks"][0].get("fixedIpV4")
             for r in backup.of_type("compute.Instance") if r.tags.get("twin")}
    assert fixed == {t.name: t.address for t in twin_hosts(model)}
    assert fixed["records-db1-standby"] == "10.11.36.11"


def test_monitoring_server_does_not_also_copy_the_example_node_targets() -> None:
    """node.yml is rendered from the inventory; copying the committed example over it would
    change it back on every run (and point a lab at production addresses)."""
    role = ROOT / "playbooks" / "roles" / "monitoring_server"
    out = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"@{role / 'defaults' / 'main.yml'}", "-e", f"role_path={role}",
         "-m", "ansible.builtin.debug", "-a", "var=monitoring_server_target_files"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "monitoring_server_target_files" in out.stdout
    assert "node.yml" not in out.stdout, out.stdout


def test_a_backup_dc_member_without_the_shared_ha_group_is_still_a_duplicate_twin(
        tmp_path: Path) -> None:
    """soc2 runs in the backup DC because it shares soc1's HA group; without it, the plan would
    build soc1's cold twin beside it, and `inventory check` says how to fix that."""
    import shutil

    from dcops.errors import InventoryError

    copy = tmp_path / "production"
    shutil.copytree(PRODUCTION, copy)
    hosts = copy / "hosts.yml"
    text = hosts.read_text(encoding="utf-8")
    soc2 = text.index("        soc2:\n")
    end = text.index("dcops_ha_group: soc\n", soc2)
    hosts.write_text(text[:end] + "dcops_ha_group: soc-backup\n"
                     + text[end + len("dcops_ha_group: soc\n"):], encoding="utf-8")
    with pytest.raises(InventoryError, match=r"hosts.yml:\d+: host soc2 at backup-dc duplicates "
                       r"the standby twin of dc_infra/soc .*give it and the primaries one "
                       r"dcops_ha_group to run the unit in both DCs"):
        load_inventory(copy)

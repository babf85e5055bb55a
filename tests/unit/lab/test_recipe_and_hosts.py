"""Pure parts of the lab: recipe hash, host catalogue, names, package list, client files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dcops.errors import LabError
from dcops.lab.aptrepo import package_list
from dcops.lab.hosts import CATALOGUE, check_lab_name, lab_hosts
from dcops.lab.recipe import BASE_PACKAGES, Recipe
from dcops.lab.sshconf import (
    HEADER_STATIC,
    dump,
    inventory,
    known_hosts,
    lab_connection,
    ssh_config,
    static_connection,
)
from dcops.lab.state import HostRecord, LabState

REPO = Path(__file__).resolve().parents[3]


def test_recipe_hash_is_stable_and_changes_with_the_recipe() -> None:
    base = Recipe()
    assert base.digest() == Recipe().digest()
    assert len(base.digest()) == 12
    assert base.image_name == f"base-{base.digest()}"
    # order and duplicates of the package list do not matter; content does
    shuffled = dataclasses.replace(base, packages=(*tuple(reversed(BASE_PACKAGES)), "sudo"))
    assert shuffled.digest() == base.digest()
    changed = {
        dataclasses.replace(base, packages=(*BASE_PACKAGES, "vim")).digest(),
        dataclasses.replace(base, suite="trixie").digest(),
        dataclasses.replace(base, script_version=base.script_version + 1).digest(),
        dataclasses.replace(base, variant="buildd").digest(),
    }
    assert base.digest() not in changed
    assert len(changed) == 4


def test_base_has_what_the_lab_and_ansible_need() -> None:
    for pkg in ("openssh-server", "python3", "python3-apt", "sudo", "systemd-sysv", "dbus"):
        assert pkg in BASE_PACKAGES


def test_default_hosts_and_growth() -> None:
    three = lab_hosts(3)
    assert [(h.name, h.address, h.role, h.zone) for h in three] == [
        ("lab-app1", "10.77.0.11", "lgsp_app", "app"),
        ("lab-db1", "10.77.0.12", "db", "db"),
        ("lab-backup1", "10.77.0.13", "backup", "mgmt"),
    ]
    seven = lab_hosts(7)
    assert [h.name for h in seven[3:]] == ["lab-ca1", "lab-mon1", "lab-node06", "lab-node07"]
    assert seven[-1].address == "10.77.0.17"
    fleet = lab_hosts(200)
    assert len({h.address for h in fleet}) == 200 and fleet[-1].address == "10.77.0.210"
    assert fleet[-1].name == "lab-node200"
    with pytest.raises(LabError, match="between 1 and 200"):
        lab_hosts(0)


@pytest.mark.parametrize("name", ["lab", "ans", "soc-t1", "t1a2b3c"])
def test_good_lab_names(name: str) -> None:
    assert check_lab_name(name) == name


@pytest.mark.parametrize("name", ["", "Lab", "-x", "a_b", "a-b-c", "averyverylongname", "1ab"])
def test_bad_lab_names(name: str) -> None:
    with pytest.raises(LabError, match="lab name"):
        check_lab_name(name)


def test_package_list_ignores_comments_and_duplicates() -> None:
    assert package_list("# c\nchrony\n\n  auditd # why\nchrony\n") == ["chrony", "auditd"]
    shipped = package_list()
    assert "chrony" in shipped
    assert all(" " not in p for p in shipped)


def test_committed_inventory_is_generated_from_the_catalogue() -> None:
    committed = (REPO / "inventories/lab/hosts.yml").read_text()
    assert committed == dump(inventory(list(CATALOGUE), static_connection()), HEADER_STATIC)
    doc = yaml.safe_load(committed)["all"]["children"]
    assert doc["primary_servers"]["hosts"]["lab-db1"]["dcops_services"] == ["postgresql"]
    assert set(doc["lgsp"]["hosts"]) == {"lab-app1", "lab-db1"}
    assert set(doc["backup_servers"]["hosts"]) == {"lab-backup1"}
    assert doc["backup_dc"]["vars"]["dcops_site"] == "backup-dc"


def test_client_files_route_through_the_controller(tmp_path: Path) -> None:
    hosts = lab_hosts(2)
    text = ssh_config(hosts, ctl_netns="x-ctl", key=tmp_path / "k", known_hosts=tmp_path / "kh",
                      control=tmp_path / "cm")
    assert "Host lab-app1 10.77.0.11" in text
    assert text.count("ProxyCommand ip netns exec x-ctl nc %h %p") == 2
    assert "StrictHostKeyChecking yes" in text
    lines = known_hosts({hosts[0]: "ssh-ed25519 AAAA"})
    assert lines == "lab-app1,10.77.0.11 ssh-ed25519 AAAA\n"
    conn = lab_connection("x", ctl_netns="x-ctl", key=tmp_path / "k", known=tmp_path / "kh")
    assert 'ProxyCommand="ip netns exec x-ctl nc %h %p"' in conn["ansible_ssh_common_args"]
    doc = yaml.safe_load(dump(inventory(hosts, conn), "---\n"))
    assert doc["all"]["children"]["lab_hosts"]["vars"]["ansible_user"] == "ansible"
    assert "backup_servers" not in doc["all"]["children"]["lab_hosts"]["children"]


def test_state_round_trip(tmp_path: Path) -> None:
    state = LabState("x", "chroot", "/b", "/r", 42,
                     {"lab-app1": HostRecord("lab-app1", "10.77.0.11", "x-lab-app1", "/m", 7, 8)})
    state.save(tmp_path / "state.json")
    assert LabState.load(tmp_path / "state.json") == state
    assert LabState.load(tmp_path / "missing.json") is None

"""`dcops inventory check`: the production inventory is clean; each injected mistake is reported
with its kind, file, line and key, all at once, and the command exits 1."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.cli.common import vault_password_file
from dcops.errors import InventoryError
from dcops.inventory import Problem, check_inventory, load_inventory
from dcops.inventory.ansible_io import find_vault_password_files
from dcops.model import SiteKind, Zone

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "production"
    shutil.copytree(PRODUCTION, target)
    return target


def edit(path: Path, old: str, new: str, count: int = 1) -> int:
    """Replace `old` in the file and return the 1-based line where the change lands."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return line


def only(problems: list[Problem], kind: str) -> list[Problem]:
    return [p for p in problems if p.kind == kind]


def test_production_inventory_is_clean_and_complete() -> None:
    model = load_inventory(PRODUCTION)
    assert model.settings.environment == "production"
    # today's Đồng Nai (since 1 July 2025): no districts, 95 communes, wards and special zones
    assert model.sites_of(SiteKind.DISTRICT) == []
    assert len(model.sites_of(SiteKind.COMMUNE)) == 95
    # the systems of the merged province, Bình Phước's inherited one included
    assert {"lgsp", "portal", "one_stop", "docmgmt", "bp_docmgmt"} <= set(model.systems)
    for system in model.systems.values():
        assert 1 <= system.level <= 5
        assert system.owner
    primary, = model.sites_of(SiteKind.PRIMARY_DC)
    backup, = model.sites_of(SiteKind.BACKUP_DC)
    assert primary.location and backup.location
    assert primary.location.distance_km(backup.location) >= 30
    for commune in model.sites_of(SiteKind.COMMUNE):
        assert commune.admin_code and commune.parent is None, commune.name
        assert any(d.device_class == "commune_router" for d in model.devices_at(commune.name))
    for dc in (primary, backup):
        classes = {d.device_class for d in model.devices_at(dc.name)}
        assert {"core_switch", "firewall", "wan_router"} <= classes
    roles = {h.role for h in model.hosts.values()}
    assert {"monitoring", "backup", "ca", "db"} <= roles
    # SNMPv3 authPriv from the vault, decrypted with the example key
    snmp = model.devices["dc1-core-sw1"].snmp
    assert snmp is not None and snmp.version == "3" and snmp.priv_key is not None
    assert snmp.priv_key.reveal().startswith("example-priv-")
    assert "example-priv" not in repr(snmp)


def test_ansible_precedence_host_vars_beat_group_vars(inventory: Path) -> None:
    host_vars = inventory / "host_vars"
    host_vars.mkdir()
    (host_vars / "dc1-core-sw1.yml").write_text("---\ndcops_snmp_port: 1161\n")
    model = load_inventory(inventory)
    snmp = model.devices["dc1-core-sw1"].snmp
    assert snmp is not None and snmp.port == 1161
    other = model.devices["dc1-core-sw2"].snmp
    assert other is not None and other.port == 161


def test_vault_closed_still_checks(inventory: Path) -> None:
    for key in inventory.glob(".vault-pass-*"):  # the main and the collector Vault keys
        key.unlink()
    model, problems = check_inventory(inventory)
    assert problems == []
    snmp = model.devices["dc1-fw1"].snmp
    assert snmp is not None and snmp.auth_key is not None and not snmp.auth_key.available


def test_injected_mistakes_are_all_reported_with_file_line_and_key(inventory: Path) -> None:
    gv = inventory / "group_vars"
    hosts = inventory / "hosts.yml"
    lines = {
        "bad-level": edit(gv / "all/systems.yml", "    level: 2\n", "    level: 7\n"),
        "missing-level": edit(gv / "all/systems.yml", "    level: 4\n", ""),
        "unknown-site": edit(gv / "backup_dc.yml", "dcops_site: backup-dc", "dcops_site: mars-dc"),
        "unknown-group": edit(gv / "all/systems.yml", "    group: portal\n",
                              "    group: portal_servers\n"),
        "unknown-zone": edit(gv / "all/systems.yml", "{from: dmz, to: app, port: 443,",
                             "{from: dmz, to: web, port: 443,"),
        "duplicate-address": edit(hosts, "ansible_host: 10.10.20.12", "ansible_host: 10.10.20.11"),
        "insecure-snmp": edit(hosts, "dcops_site: xa-tri-an}",
                              "dcops_site: xa-tri-an, dcops_snmp_version: '2c'}"),
        "dc-too-close": edit(gv / "all/sites.yml", "latitude: 10.9390\n      longitude: 107.2410",
                             "latitude: 10.9390\n      longitude: 106.9000"),
    }
    # a device without credentials, a plaintext secret, a malformed file
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars/dc1-fw2.yml").write_text("---\ndcops_snmp: null\n")
    (inventory / "host_vars/dc1-fw1.yml").write_text(
        "---\ndcops_snmp:\n  version: '3'\n  user: noc\n  auth_protocol: SHA\n"
        "  auth_key: cleartext\n  priv_protocol: AES\n  priv_key: cleartext2\n")
    (gv / "broken.yml").write_text("---\nfoo: [unclosed\nbar: 1\n")

    _, problems = check_inventory(inventory)
    kinds = {p.kind for p in problems}
    expected = {*lines, "missing-snmp", "plaintext-secret", "malformed-yaml"}
    assert expected <= kinds, f"missing kinds: {expected - kinds}"
    assert len(kinds) >= 6

    level = only(problems, "bad-level")[0]
    assert level.source is not None
    assert (level.source.file, level.source.line) == ("group_vars/all/systems.yml",
                                                      lines["bad-level"])
    assert level.key == "dcops_systems.docmgmt.level"

    missing = only(problems, "missing-level")[0]
    assert missing.key == "dcops_systems.dc_infra.level"
    assert missing.source is not None and missing.source.file == "group_vars/all/systems.yml"

    site = only(problems, "unknown-site")
    assert site and all(p.source and p.source.file == "group_vars/backup_dc.yml" and
                        p.source.line == lines["unknown-site"] for p in site)
    assert {p.key for p in site} >= {"backup1.dcops_site", "dc2-fw1.dcops_site"}

    group = only(problems, "unknown-group")[0]
    assert group.key == "dcops_systems.portal.group"
    assert group.source and group.source.line == lines["unknown-group"]

    zone = only(problems, "unknown-zone")[0]
    assert zone.key == "dcops_systems.lgsp.flows[0].to"
    assert zone.source and zone.source.line == lines["unknown-zone"]

    dup = only(problems, "duplicate-address")[0]
    assert "10.10.20.11" in dup.message and dup.key == "lgsp-app2.ansible_host"
    assert dup.source and (dup.source.file, dup.source.line) == ("hosts.yml",
                                                                 lines["duplicate-address"])

    insecure = only(problems, "insecure-snmp")[0]
    assert insecure.key == "xa-tri-an-rtr1.dcops_snmp.version" and insecure.source is not None

    close = only(problems, "dc-too-close")[0]
    assert close.key == "dcops_sites.backup-dc.location" and close.source is not None
    assert close.source.file == "group_vars/all/sites.yml"

    plain = only(problems, "plaintext-secret")
    assert {p.key for p in plain} == {"dcops_snmp.auth_key", "dcops_snmp.priv_key"}
    assert all(p.source and p.source.file == "host_vars/dc1-fw1.yml" for p in plain)

    nocreds = only(problems, "missing-snmp")[0]
    assert nocreds.key == "dc1-fw2.dcops_snmp"

    broken = only(problems, "malformed-yaml")[0]
    assert broken.source and broken.source.file == "group_vars/broken.yml"
    assert broken.source.line in (3, 4)


def test_cli_check_exits_1_and_names_every_problem(inventory: Path) -> None:
    edit(inventory / "group_vars/all/systems.yml", "    level: 2\n", "    level: 0\n")
    edit(inventory / "group_vars/primary_dc.yml", "dcops_site: primary-dc", "dcops_site: nowhere")
    result = CliRunner().invoke(app, ["inventory", "check", "-i", str(inventory), "--json"])
    assert result.exit_code == 1
    reported = json.loads(result.stdout)
    kinds = {r["kind"] for r in reported}
    assert {"bad-level", "unknown-site"} <= kinds
    assert all(r["file"] and r["line"] and r["key"] for r in reported)

    with pytest.raises(InventoryError, match=r"problem\(s\) in the inventory"):
        load_inventory(inventory)


def test_cli_check_and_show_on_clean_inventory() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["inventory", "check", "-i", str(PRODUCTION)])
    assert result.exit_code == 0, result.stdout
    assert "OK" in result.stdout
    shown = runner.invoke(app, ["inventory", "show", "-i", str(PRODUCTION), "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["systems"]["lgsp"]["level"] == 3
    assert data["devices"]["dc1-fw1"]["snmp"]["auth_key"] == "***"
    assert not re.search(r"example-(auth|priv)-", shown.stdout)
    tree = runner.invoke(app, ["inventory", "show", "-i", str(PRODUCTION)])
    assert tree.exit_code == 0 and "Biên Hòa" in tree.stdout


def test_lab_inventory_allows_v2c_only_because_it_is_the_lab(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(REPO / "inventories" / "lab", lab, ignore=shutil.ignore_patterns("generated"))
    model, problems = check_inventory(lab)
    assert not only(problems, "insecure-snmp")
    assert any(d.snmp and d.snmp.version == "2c" for d in model.devices.values())
    edit(lab / "group_vars/all/main.yml", "dcops_environment: lab", "dcops_environment: staging")
    _, problems = check_inventory(lab)
    assert only(problems, "insecure-snmp")


def test_model_zones_are_typed() -> None:
    model = load_inventory(PRODUCTION)
    assert model.hosts["lgsp-db1"].zone is Zone.DB
    assert model.hosts["lgsp-db1"].systems == ("lgsp",)
    assert model.hosts["lgsp-db1"].services == ("postgresql",)


@pytest.mark.parametrize("env", ["DCOPS_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"])
def test_the_vault_key_of_the_environment_comes_through_the_cli_only(
        inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    """The inventory package reads no environment variable: `dcops` reads it and passes the key."""
    keys = [k for k in inventory.glob(".vault-pass-*") if "collector" not in k.name]
    assert len(keys) == 1
    moved = tmp_path / "elsewhere.key"
    keys[0].rename(moved)
    monkeypatch.setenv(env, str(moved))
    assert [v for v, _ in find_vault_password_files(inventory)] == ["collector"]
    assert vault_password_file() == moved
    given = find_vault_password_files(inventory, vault_password_file())
    assert given == [("default", moved)]  # a key from elsewhere: not the directory's collector
    keys[0].write_bytes(moved.read_bytes())
    assert [v for v, _ in find_vault_password_files(inventory, keys[0])] == ["default",
                                                                              "collector"]

"""`dcops inventory merge A B`: two former provinces' inventories (built here by hand) are merged
when they do not collide, and every collision is reported with its file and line in A and B."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.inventory.ansible_io import read

REPO = Path(__file__).resolve().parents[3]

MAIN = """\
dcops_province: {name}
dcops_province_vi: {name_vi}
dcops_environment: production
dcops_min_dc_distance_km: 30
dcops_ntp_servers: [{ntp}]
dcops_soc_collector: 10.10.40.21
baseline_ssh_port: 22
"""

SITES_A = """\
dcops_sites:
  primary-dc:
    kind: primary_dc
    name: Dong Nai DC (primary)
    name_vi: Trung tâm dữ liệu Đồng Nai (chính)
    location: {latitude: 10.9447, longitude: 106.8243}
    subnets: [10.10.0.0/16]
  backup-dc:
    kind: backup_dc
    name: Dong Nai DC (backup)
    name_vi: Trung tâm dữ liệu Đồng Nai (dự phòng)
    location: {latitude: 10.939, longitude: 107.241}
    subnets: [10.11.0.0/16]
  tam-phuoc:
    kind: commune
    name: Tam Phuoc Ward
    name_vi: Phường Tam Phước
    subnets: [10.21.1.0/26]
"""

SYSTEMS_A = """\
dcops_systems:
  portal:
    name: Public-service portal
    level: 2
    owner: Provincial People's Committee Office
    site: primary-dc
    dr: true
    zones: [dmz, app]
  docmgmt:
    name: Document management
    level: 2
    owner: Department of Home Affairs
    site: primary-dc
    dr: true
    zones: [app]
"""

HOSTS_A = """\
all:
  children:
    primary_dc:
      vars:
        dcops_site: primary-dc
      children:
        primary_servers:
    primary_servers:
      hosts:
        portal-web1: {ansible_host: 10.10.10.11, dcops_zone: dmz}
        portal-app1: {ansible_host: 10.10.20.11, dcops_zone: app}
        docmgmt-app1: {ansible_host: 10.10.21.11, dcops_zone: app}
    portal:
      hosts:
        portal-web1:
        portal-app1:
    docmgmt:
      hosts:
        docmgmt-app1:
"""

SITES_B = """\
dcops_sites:
  tdl-binh-phuoc:
    kind: primary_dc
    name: Binh Phuoc DC (primary)
    name_vi: Trung tâm dữ liệu Bình Phước (chính)
    location: {latitude: 11.53, longitude: 106.89}
    subnets: [10.40.0.0/16]
  tdl-binh-phuoc-dp:
    kind: backup_dc
    name: Binh Phuoc DC (backup)
    name_vi: Trung tâm dữ liệu Bình Phước (dự phòng)
    location: {latitude: 11.83, longitude: 106.60}
    subnets: [10.41.0.0/16]
  dong-xoai:
    kind: commune
    name: Dong Xoai Ward
    name_vi: Phường Đồng Xoài
    subnets: [%s]
"""

PORTAL_B = """\
  portal:
    name: Binh Phuoc portal
    level: 1
    owner: Binh Phuoc People's Committee Office
    site: tdl-binh-phuoc
    zones: [dmz, app]
"""

SYSTEMS_B = """\
dcops_systems:
%s  one_stop:
    name: One-stop office
    level: 2
    owner: Binh Phuoc People's Committee Office
    site: tdl-binh-phuoc
    dr: true
    zones: [app]
  hr:
    name: Civil servants records
    level: 1
    owner: Binh Phuoc Department of Home Affairs
    site: tdl-binh-phuoc
    zones: [app]
"""

HOSTS_B = """\
all:
  children:
    bp_primary_dc:
      vars:
        dcops_site: tdl-binh-phuoc
      children:
        bp_servers:
    bp_servers:
      hosts:
%s        onestop-app1: {ansible_host: 10.40.%d.11, dcops_zone: app}
        hr-app1: {ansible_host: 10.40.%d.11, dcops_zone: app}
    one_stop:
      hosts:
        onestop-app1:
    hr:
      hosts:
        hr-app1:
%s"""

SERVERS = """\
    servers:
      children:
        %s:
"""

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def province_a(root: Path) -> Path:
    return write(root, {
        "group_vars/all/main.yml": MAIN.format(name="Dong Nai", name_vi="Đồng Nai",
                                               ntp="10.10.40.41"),
        "group_vars/all/sites.yml": SITES_A, "group_vars/all/systems.yml": SYSTEMS_A,
        "group_vars/servers.yml": "servers_timezone: Asia/Ho_Chi_Minh\n",
        "group_vars/primary_servers.yml": "primary_backup_window: '01:00'\n",
        "hosts.yml": HOSTS_A + SERVERS % "primary_servers",
        "known_hosts.txt": f"# province A\n10.10.10.11 {KEY_A}\n"})


def province_b(root: Path, conflicts: bool = False, names: bool = False) -> Path:
    """Binh Phuoc; with `conflicts`: host portal-web1 and system portal as in A, a commune
    subnet inside A's, another NTP server and another SSH key for A's 10.10.10.11; with `names`:
    only the names collide (host portal-web1, system portal, commune tam-phuoc holding hr-app1)."""
    portal_hosts = ("        portal-web1: {ansible_host: 10.40.10.11, dcops_zone: dmz}\n"
                    if conflicts or names else "")
    portal_group = "    portal:\n      hosts:\n        portal-web1:\n" if conflicts or names else ""
    first = 21 if conflicts or names else 20
    if names:
        root = write(root, {
            "group_vars/all/sites.yml": (SITES_B % "10.51.1.0/26").replace("dong-xoai:",
                                                                         "tam-phuoc:"),
            "group_vars/all/systems.yml": SYSTEMS_B % PORTAL_B,
            "hosts.yml": (HOSTS_B % (portal_hosts, first, first + 1, portal_group)).replace(
                "dcops_zone: app}\n    one_stop", "dcops_zone: app, dcops_site: tam-phuoc}\n"
                "    one_stop") + SERVERS % "bp_servers"})
    return write(root, {
        "group_vars/all/main.yml": MAIN.format(name="Binh Phuoc", name_vi="Bình Phước",
                                               ntp="10.40.40.41" if conflicts else "10.10.40.41"),
        "group_vars/servers.yml": "servers_timezone: Asia/Ho_Chi_Minh\n",
        "group_vars/bp_servers.yml": "bp_backup_window: '02:00'\n",
        **({} if names else {
            "group_vars/all/sites.yml": SITES_B % ("10.21.1.32/27" if conflicts
                                                   else "10.51.1.0/26"),
            "group_vars/all/systems.yml": SYSTEMS_B % (PORTAL_B if conflicts else ""),
            "hosts.yml": HOSTS_B % (portal_hosts, first, first + 1, portal_group)
            + SERVERS % "bp_servers"}),
        "known_hosts.txt": f"10.40.{first}.11 {KEY_B}\n" + (f"10.10.10.11 {KEY_B}\n"
                                                             if conflicts else "")})


def line_of(file: Path, text: str) -> int:
    lines = file.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def run(*args: str) -> tuple[int, str]:
    """Exit code and output, with rich's boxes and line wrapping flattened to single spaces."""
    result = CliRunner().invoke(app, list(args))
    if args[-1] != "--json" and "--json" not in args:
        return result.exit_code, re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)
    return result.exit_code, result.output


def dcops(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command (its one error path: cli.failures), output and exit code."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "dcops", *args], capture_output=True, text=True,
                          env=env, check=False, timeout=120)


@pytest.mark.parametrize("side", ["a", "b"])
def test_each_fixture_province_passes_inventory_check(tmp_path: Path, side: str) -> None:
    root = province_a(tmp_path / side) if side == "a" else province_b(tmp_path / side)
    code, output = run("inventory", "check", "-i", str(root))
    assert code == 0, output


def test_conflicting_provinces_are_reported_where_they_are_and_nothing_is_written(
        tmp_path: Path) -> None:
    a, b = province_a(tmp_path / "dong-nai"), province_b(tmp_path / "binh-phuoc", True)
    code, _ = run("inventory", "check", "-i", str(b))
    assert code == 0, "B must be valid alone: the conflicts are only between A and B"
    out = tmp_path / "merged"
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--json")
    assert code == 1, output
    report = json.loads(output)
    assert report["written"] is False
    assert not out.exists()
    found = {(f["kind"], f["message"].split(" ")[1]): f for f in report["findings"]}

    def where(finding: dict[str, dict[str, object]], side: str) -> tuple[object, object]:
        return Path(str(finding[side]["file"])).relative_to(tmp_path).as_posix(), \
            finding[side]["line"]

    host = found[("duplicate-host", "portal-web1")]
    assert host["blocking"]
    assert where(host, "a") == ("dong-nai/hosts.yml", line_of(a / "hosts.yml", "portal-web1:"))
    assert where(host, "b") == ("binh-phuoc/hosts.yml", line_of(b / "hosts.yml", "portal-web1:"))
    system = found[("system-in-both", "portal")]
    assert "level 2 in A, 1 in B" in system["message"]
    assert "portal-app1, portal-web1" in system["message"]
    assert where(system, "a") == ("dong-nai/group_vars/all/systems.yml", 2)
    assert where(system, "b") == ("binh-phuoc/group_vars/all/systems.yml", 2)
    subnet = found[("overlapping-subnet", "10.21.1.0/26")]
    assert "10.21.1.32/27 of site dong-xoai" in subnet["message"]
    assert where(subnet, "a") == ("dong-nai/group_vars/all/sites.yml",
                                  line_of(a / "group_vars/all/sites.yml", "10.21.1.0/26"))
    assert where(subnet, "b") == ("binh-phuoc/group_vars/all/sites.yml",
                                  line_of(b / "group_vars/all/sites.yml", "10.21.1.32/27"))
    ntp = found[("group-var-conflict", "all:")]
    assert "dcops_ntp_servers" in ntp["message"]
    assert where(ntp, "b") == ("binh-phuoc/group_vars/all/main.yml", 5)
    key = found[("known-host-conflict", "10.10.10.11")]
    assert where(key, "a") == ("dong-nai/known_hosts.txt", 2)
    assert where(key, "b") == ("binh-phuoc/known_hosts.txt", 2)
    # --force renames the names, but overlapping addresses still block
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--json",
                       "--force")
    assert code == 1, output
    kinds = {(f["kind"], f["blocking"]) for f in json.loads(output)["findings"]}
    assert {("renamed", False), ("overlapping-subnet", True)} <= kinds
    assert ("duplicate-host", True) not in kinds
    assert not out.exists()
    # the table form says the same, in both languages
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out))
    assert code == 1
    assert "xung đột" in output and "duplicate-host" in output
    assert not out.exists()


def test_clean_provinces_merge_into_an_inventory_check_accepts(tmp_path: Path) -> None:
    a, b = province_a(tmp_path / "dong-nai"), province_b(tmp_path / "binh-phuoc")
    before = {p: p.read_bytes() for p in [*a.rglob("*"), *b.rglob("*")] if p.is_file()}
    out = tmp_path / "dong-nai-2025"
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out),
                       "--name", "Đồng Nai", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["written"] is True
    assert not [f for f in report["findings"] if f["blocking"]]
    assert {f["kind"] for f in report["findings"]} == {"second-dc"}
    assert {p: p.read_bytes() for p in before} == before, "A and B are never written"

    code, output = run("inventory", "check", "-i", str(out))
    assert code == 0, output
    code, output = run("inventory", "show", "-i", str(out), "--json")
    model = json.loads(output)
    assert model["settings"]["province_vi"] == "Đồng Nai"
    assert {"portal-web1", "portal-app1", "docmgmt-app1", "onestop-app1", "hr-app1"} == \
        set(model["hosts"])
    assert list(model["systems"]) == ["portal", "docmgmt", "one_stop", "hr"]
    assert model["hosts"]["onestop-app1"]["site"] == "tdl-binh-phuoc"
    assert model["hosts"]["portal-web1"]["site"] == "primary-dc"
    raw = read(out)  # group variables reach the hosts they did before the merge
    assert raw.hostvars["hr-app1"]["bp_backup_window"] == "02:00"
    assert raw.hostvars["portal-web1"]["primary_backup_window"] == "01:00"
    assert "bp_backup_window" not in raw.hostvars["portal-web1"]
    assert {h: v["servers_timezone"] for h, v in raw.hostvars.items()} == dict.fromkeys(
        model["hosts"], "Asia/Ho_Chi_Minh")
    known = (out / "known_hosts.txt").read_text(encoding="utf-8")
    assert f"10.10.10.11 {KEY_A}" in known and f"10.40.20.11 {KEY_B}" in known

    # a second run refuses the now non-empty --out (a usage error), unless --overwrite
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out))
    assert code == 2 and "not empty" in output
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--overwrite")
    assert code == 0, output
    other = write(tmp_path / "notes", {"keep.txt": "not a merge\n"})
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(other), "--overwrite")
    assert code == 2 and "not an earlier merge" in output
    assert (other / "keep.txt").is_file()


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    a = province_a(tmp_path / "a")
    done = dcops("inventory", "merge", str(a), str(tmp_path / "missing"), "--out",
                 str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    line, = done.stderr.strip().splitlines()
    assert "missing: not a directory" in line
    code, output = run("inventory", "merge", str(a), str(a), "--out", str(tmp_path / "out"))
    assert code == 2 and "same inventory" in output
    b = province_b(tmp_path / "b")
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(a / "merged"))
    assert code == 2 and "never writes into A or B" in output
    assert not (a / "merged").exists()


def test_secrets_of_b_under_other_vault_keys_block_the_merge(tmp_path: Path) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret

    a, b = province_a(tmp_path / "a"), province_b(tmp_path / "b")
    (a / ".vault-pass-a").write_text("key-of-a\n", encoding="utf-8")
    (b / ".vault-pass-b").write_text("key-of-b\n", encoding="utf-8")
    vault = VaultLib([("default", VaultSecret(b"key-of-b"))])
    cipher = vault.encrypt("not-a-real-password").decode()
    write(b, {"group_vars/all/secrets.yml": "backup_restic_password: !vault |\n"
              + "".join(f"  {line}\n" for line in cipher.splitlines())})
    out = tmp_path / "out"
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--json")
    assert code == 1, output
    finding, = [f for f in json.loads(output)["findings"] if f["kind"] == "vault-keys-differ"]
    assert finding["b"]["file"] == str(b / "group_vars/all/secrets.yml")
    assert not out.exists()


def test_force_renames_b_s_colliding_names_and_merges(tmp_path: Path) -> None:
    a, b = province_a(tmp_path / "dong-nai"), province_b(tmp_path / "binh-phuoc", names=True)
    code, output = run("inventory", "check", "-i", str(b))
    assert code == 0, output
    out = tmp_path / "dong-nai-2025"
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--json")
    assert code == 1
    assert {f["kind"] for f in json.loads(output)["findings"] if f["blocking"]} == {
        "duplicate-host", "system-in-both", "site-in-both"}
    assert not out.exists()

    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--json",
                       "--force")
    assert code == 0, output
    renamed = {f["message"] for f in json.loads(output)["findings"] if f["kind"] == "renamed"}
    assert renamed == {
        "host portal-web1 of B is portal-web1-binh-phuoc in the merged inventory",
        "site tam-phuoc of B is tam-phuoc-binh-phuoc in the merged inventory",
        "system portal of B is portal_binh_phuoc in the merged inventory",
        "group portal of B is portal_binh_phuoc in the merged inventory"}
    code, output = run("inventory", "check", "-i", str(out))
    assert code == 0, output
    model = json.loads(run("inventory", "show", "-i", str(out), "--json")[1])
    assert model["hosts"]["portal-web1"]["systems"] == ["portal"]
    assert model["hosts"]["portal-web1-binh-phuoc"]["systems"] == ["portal_binh_phuoc"]
    assert model["hosts"]["hr-app1"]["site"] == "tam-phuoc-binh-phuoc"
    assert model["sites"]["tam-phuoc"]["subnets"] == ["10.21.1.0/26"]
    assert model["sites"]["tam-phuoc-binh-phuoc"]["subnets"] == ["10.51.1.0/26"]
    assert "portal-web1-binh-phuoc" not in (b / "hosts.yml").read_text(encoding="utf-8")


def test_a_merge_inventory_check_would_refuse_is_not_written(tmp_path: Path) -> None:
    """Clean on their own and without conflicts, but B's backup DC sits next to A's primary DC:
    the merged province's DCs are too close, so the merged tree fails the check and is dropped."""
    a, b = province_a(tmp_path / "dong-nai"), province_b(tmp_path / "binh-phuoc")
    sites = b / "group_vars/all/sites.yml"
    sites.write_text(sites.read_text(encoding="utf-8").replace(
        "{latitude: 11.83, longitude: 106.60}", "{latitude: 10.95, longitude: 106.83}"),
        encoding="utf-8")
    assert run("inventory", "check", "-i", str(b))[0] == 0
    out = tmp_path / "dong-nai-2025"
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(out), "--json")
    assert code == 1, output
    problem, = [f for f in json.loads(output)["findings"] if f["kind"] == "merged-problem"]
    assert "tdl-binh-phuoc-dp" in problem["message"] and "km" in problem["message"]
    assert problem["a"]["file"] == str(out / "group_vars/all/dcops-merge.yml")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no half-built tree"


def test_an_encrypted_file_holding_the_systems_is_never_rewritten_in_clear(
        tmp_path: Path) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret

    a, b = province_a(tmp_path / "dong-nai"), province_b(tmp_path / "binh-phuoc")
    (a / ".vault-pass-a").write_text("key-of-a\n", encoding="utf-8")
    systems = a / "group_vars/all/systems.yml"
    vault = VaultLib([("default", VaultSecret(b"key-of-a"))])
    systems.write_bytes(vault.encrypt(systems.read_text(encoding="utf-8")))
    assert run("inventory", "check", "-i", str(a))[0] == 0
    out = tmp_path / "out"
    done = dcops("inventory", "merge", str(a), str(b), "--out", str(out))
    assert done.returncode == 1
    line, = done.stderr.strip().splitlines()
    assert "encrypted file holds dcops_systems" in line and "systems.yml" in line
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_overlapping_cloud_prefixes_block_the_merge(tmp_path: Path) -> None:
    """Two DCs whose IaC carves zones from the same cloud prefix would get the same zone subnets:
    the merge names both cloud_prefix lines, as it does for LAN subnets."""
    a, b = province_a(tmp_path / "dong-nai"), province_b(tmp_path / "binh-phuoc")
    for root, dc in ((a, "primary-dc"), (b, "tdl-binh-phuoc")):
        sites = root / "group_vars/all/sites.yml"
        text = sites.read_text(encoding="utf-8")
        head, tail = text.split(f"  {dc}:\n", 1)
        sites.write_text(f"{head}  {dc}:\n    cloud_prefix: 172.20.0.0/16\n{tail}",
                         encoding="utf-8")
    code, output = run("inventory", "merge", str(a), str(b), "--out", str(tmp_path / "m"),
                       "--json")
    assert code == 1, output
    found = [f for f in json.loads(output)["findings"] if f["kind"] == "overlapping-subnet"]
    assert len(found) == 1, found
    assert found[0]["blocking"]
    assert found[0]["message"].startswith(
        "cloud prefix 172.20.0.0/16 of site primary-dc (A) overlaps cloud prefix 172.20.0.0/16 "
        "of site tdl-binh-phuoc (B)")
    for side, root in (("a", a), ("b", b)):
        assert found[0][side]["line"] == line_of(root / "group_vars/all/sites.yml",
                                                 "cloud_prefix")
    assert not (tmp_path / "m").exists()

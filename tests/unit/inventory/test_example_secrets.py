"""Committed example and lab secrets are found by fingerprint and refused outside their place.

`inventory check -i inventories/production` (an inventory that declares itself an example) passes
but names every example secret it found; a copy that no longer declares itself an example fails,
whatever its key files are called; the lab's secrets pass only in the lab; fresh secrets pass.
Playbooks refuse the same inventories before touching any host.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from dcops.errors import ExampleSecretError
from dcops.inventory import check_inventory, load_inventory
from dcops.inventory.ansible_io import clear_text, read
from dcops.inventory.examples import (
    ExampleInventoryWarning,
    fingerprint,
    known_secrets,
    scan,
)

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"
LAB = REPO / "inventories" / "lab"
BIN = Path(sys.executable).parent
VAULT_BLOCK = re.compile(r"!vault \|\n((?:[ \t]+\S+\n)+)")


def _vaulted(raw_values: object) -> list[str]:
    out: list[str] = []
    if isinstance(raw_values, dict):
        for value in raw_values.values():
            out += _vaulted(value)
    elif isinstance(raw_values, list):
        for value in raw_values:
            out += _vaulted(value)
    else:
        vaulted, clear = clear_text(raw_values)
        if vaulted:
            assert clear is not None, "a committed Vault value does not decrypt with its keys"
            out.append(clear)
    return out


@pytest.mark.parametrize(("inventory", "scope"), [(PRODUCTION, "example"), (LAB, "lab")])
def test_every_committed_secret_is_listed_with_its_scope(inventory: Path, scope: str) -> None:
    """A new example secret fails here until its fingerprint is in example_secrets.yml."""
    known = known_secrets()
    raw = read(inventory)
    keys = sorted(inventory.glob(".vault-pass-*"))
    assert len(keys) == 2  # the main and the collector Vault keys
    values = [k.read_text() for k in keys] + _vaulted(raw.globals)
    for hostvars in raw.hostvars.values():
        values += _vaulted(hostvars)
    assert len(set(values)) >= 7
    for value in set(values):
        secret = known.get(fingerprint(value))
        assert secret is not None, f"{inventory.name}: a committed secret is not listed"
        assert secret.scope == scope


def test_every_example_stack_secret_is_listed() -> None:
    known = known_secrets()
    for stack in ("primary", "backup"):
        doc = yaml.safe_load((REPO / "pulumi" / f"Pulumi.{stack}.yaml").read_text())
        for value in (doc["encryptionsalt"], doc["config"]["dcops:vpnPsk"]["secure"]):
            assert known[fingerprint(value)].scope == "example"
    assert known[fingerprint("dcops-EXAMPLE-ONLY")].kind == "pulumi-passphrase"


def test_the_example_inventory_passes_and_warns_naming_its_example_secrets() -> None:
    with pytest.warns(ExampleInventoryWarning) as caught:
        model, problems = check_inventory(PRODUCTION)
    assert problems == [] and model.settings.example
    # Only ours: a ResourceWarning of another test's garbage (an unclosed event loop) can be
    # caught here first, as it was once in CI.
    ours = [w for w in caught if issubclass(w.category, ExampleInventoryWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    text = str(ours[0].message)
    assert "EXAMPLE INVENTORY" in text and "dcops_example: true (group_vars/all/main.yml:" in text
    for named in ("vault key (.vault-pass-EXAMPLE-ONLY)",
                  "vault key (.vault-pass-collector-EXAMPLE-ONLY)",
                  "dcops_snmp.auth_key (group_vars/network_devices/snmp.yml:",
                  "snmp_agent_noc_priv_key (group_vars/all/roles.yml:",
                  "backup_restic_password", "pki_ca_root_key_passphrase",
                  "encryptionsalt (../../pulumi/Pulumi.primary.yaml:7)",
                  "dcops:vpnPsk (../../pulumi/Pulumi.backup.yaml:"):
        assert named in text, named


def test_cli_check_of_the_example_names_the_keys_on_stderr() -> None:
    """What a user sees: exit 0, OK on stdout, the loud warning and every example key on stderr."""
    proc = subprocess.run([str(BIN / "dcops"), "inventory", "check", "-i", str(PRODUCTION)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK ")
    assert proc.stderr.startswith("warning: \n" + "!" * 78)
    assert "Example secrets found / khóa mẫu (13):" in proc.stderr
    assert "vault key (.vault-pass-EXAMPLE-ONLY): Ansible Vault key of the example" in proc.stderr


def _copy(source: Path, target: Path, *, example: bool) -> Path:
    shutil.copytree(source, target)
    main = target / "group_vars" / "all" / "main.yml"
    text = main.read_text()
    if not example:
        text = re.sub(r"^dcops_example: true\n", "", text, flags=re.M)
    main.write_text(text)
    return target


def test_a_copy_without_the_declaration_fails_whatever_its_key_files_are_called(
        tmp_path: Path) -> None:
    real = _copy(PRODUCTION, tmp_path / "inventories" / "real", example=False)
    for key in real.glob(".vault-pass-*"):  # renamed keys are still the example keys
        key.rename(key.with_name(key.name.replace("EXAMPLE-ONLY", "province")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExampleInventoryWarning)  # no longer an example: no banner
        model, problems = check_inventory(real)
    assert not model.settings.example
    refused = {(p.kind, p.key, str(p.source)) for p in problems}
    assert {k for k, _, _ in refused} == {"example-secret"}
    assert ("example-secret", "vault key", ".vault-pass-province") in refused
    assert ("example-secret", "vault key", ".vault-pass-collector-province") in refused
    keys = {key for _, key, _ in refused}
    assert {"dcops_snmp.auth_key", "dcops_snmp.priv_key", "snmp_agent_noc_auth_key",
            "snmp_agent_noc_priv_key", "backup_restic_password",
            "pki_ca_root_key_passphrase"} <= keys
    message = next(p.message for p in problems if p.key == "dcops_snmp.auth_key")
    assert "published in the dcops repository" in message and "sha256:" in message
    result = subprocess.run([str(BIN / "dcops"), "inventory", "check", "-i", str(real)],
                            capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 1
    assert "example-secret" in result.stdout and "dcops_snmp.auth_key" in result.stdout


def test_a_vault_key_given_under_any_name_is_recognised(tmp_path: Path) -> None:
    real = _copy(PRODUCTION, tmp_path / "real", example=False)
    for key in real.glob(".vault-pass-*"):
        key.unlink()
    given = tmp_path / "province-key"
    given.write_text((PRODUCTION / ".vault-pass-EXAMPLE-ONLY").read_text())
    _, problems = check_inventory(real, given)
    assert any(p.key == "vault key" and str(p.source).endswith("province-key")
               for p in problems)


def test_pulumi_stacks_sealed_with_the_example_passphrase_are_found(tmp_path: Path) -> None:
    """A project copy whose stacks name the inventory: their sealed key and PSK are flagged."""
    real = _copy(PRODUCTION, tmp_path / "inventories" / "real", example=False)
    program = tmp_path / "pulumi"
    program.mkdir()
    shutil.copy(REPO / "pulumi" / "Pulumi.yaml", program)
    stack = (REPO / "pulumi" / "Pulumi.primary.yaml").read_text()
    (program / "Pulumi.primary.yaml").write_text(
        stack.replace("../inventories/production", "../inventories/real"))
    found = {(f.key, str(f.source)) for f in scan(read(real))}
    assert ("encryptionsalt", "../../pulumi/Pulumi.primary.yaml:7") in found
    assert ("dcops:vpnPsk", "../../pulumi/Pulumi.primary.yaml:14") in found


def test_lab_secrets_pass_only_in_the_lab(tmp_path: Path) -> None:
    assert check_inventory(LAB)[1] == []
    moved = _copy(LAB, tmp_path / "lab-as-production", example=False)
    main = moved / "group_vars" / "all" / "main.yml"
    main.write_text(main.read_text().replace("dcops_environment: lab", "dcops_environment: test")
                    .replace("dcops_allow_snmp_v2c: true", "dcops_allow_snmp_v2c: false"))
    problems = [p for p in check_inventory(moved)[1] if p.kind == "example-secret"]
    assert {p.key for p in problems} >= {"vault key", "dcops_snmp.auth_key",
                                         "backup_restic_password"}
    assert all("lab secrets are accepted only where dcops_environment is lab" in p.message
               for p in problems)


def _reencrypt(inventory: Path) -> None:
    """Fresh keys and values for every Vault value (what "Real secrets" in the README does)."""
    old = VaultLib([(vid, VaultSecret(k.read_bytes().strip())) for vid, k in
                    (("default", inventory / ".vault-pass-EXAMPLE-ONLY"),
                     ("collector", inventory / ".vault-pass-collector-EXAMPLE-ONLY"))])
    new_keys = {"default": secrets.token_urlsafe(24), "collector": secrets.token_urlsafe(24)}
    for key in inventory.glob(".vault-pass-*"):
        key.unlink()
    (inventory / ".vault-pass-main").write_text(new_keys["default"])
    (inventory / ".vault-pass-collector-main").write_text(new_keys["collector"])
    for file in inventory.rglob("*.yml"):
        text = file.read_text()

        def fresh(match: re.Match[str]) -> str:
            indent = re.match(r"[ \t]+", match.group(1))
            assert indent is not None
            body = "".join(line.strip() + "\n" for line in match.group(1).splitlines())
            old.decrypt(body)  # it was a committed value
            vid = "collector" if body.startswith("$ANSIBLE_VAULT;1.2;AES256;collector") \
                else "default"
            sealed = VaultLib().encrypt(secrets.token_urlsafe(18),
                                        VaultSecret(new_keys[vid].encode()), vid).decode()
            return "!vault |\n" + "".join(indent.group(0) + line + "\n"
                                          for line in sealed.splitlines())

        file.write_text(VAULT_BLOCK.sub(fresh, text))


def test_fresh_secrets_pass(tmp_path: Path) -> None:
    real = _copy(PRODUCTION, tmp_path / "real", example=False)
    _reencrypt(real)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExampleInventoryWarning)
        model, problems = check_inventory(real)
    assert problems == []
    device = model.devices["dc1-fw1"]
    assert device.snmp is not None and device.snmp.auth_key is not None
    assert device.snmp.auth_key.available  # the new collector key opens it


def test_ssh_evidence_refuses_an_example_inventory_before_connecting() -> None:
    from dcops.compliance.collect.ssh import SshCollector, Target
    from dcops.compliance.evidence import Evidence

    with pytest.warns(ExampleInventoryWarning):
        model = load_inventory(PRODUCTION)
    host = next(iter(model.hosts))
    collector = SshCollector([Target(host, "192.0.2.1", known_hosts="/nonexistent")])
    with pytest.raises(ExampleSecretError, match="refusing to collect evidence over SSH"):
        collector.collect(model, Evidence())


def _guard(inventory: Path, vault: Path, *limit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "--vault-password-file", str(vault),
         *limit, str(REPO / "playbooks" / "site.yml")],
        capture_output=True, text=True, timeout=600, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_STDOUT_CALLBACK": "default"})


def test_playbooks_refuse_the_example_and_its_copy_before_touching_a_host(
        tmp_path: Path) -> None:
    """site.yml stops at the trust guard: no fact gathered, no host contacted (all made up)."""
    example = _guard(PRODUCTION, PRODUCTION / ".vault-pass-EXAMPLE-ONLY")
    assert example.returncode != 0
    said = " ".join(example.stdout.split())  # the result callback wraps long messages
    assert "declares itself an example (dcops_example: true)" in said
    assert "Gathering Facts" not in said
    real = _copy(PRODUCTION, tmp_path / "real", example=False)
    copy = _guard(real, PRODUCTION / ".vault-pass-EXAMPLE-ONLY", "--limit", "lgsp-app1")
    assert copy.returncode != 0
    assert ("backup_restic_password, pki_ca_root_key_passphrase, snmp_agent_noc_auth_key, "
            "snmp_agent_noc_priv_key, monitoring_server_webhook_token: published"
            ) in " ".join(copy.stdout.split())
    assert "Gathering Facts" not in copy.stdout

"""Read an Ansible inventory with ansible-core's own inventory and variable managers.

Variables come out with exactly Ansible's precedence (inventory file < group_vars/all < group_vars
of child groups < host_vars). Values keep the file and line Ansible's YAML loader gave them, so
problems can be reported where the user has to look.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode
from ansible.vars.manager import VariableManager
from ansible.vars.plugins import get_vars_from_inventory_sources
from yaml import MarkedYAMLError

from dcops.model import SourceRef

YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the inventory: its kind, what is wrong, where, and which key."""

    kind: str
    message: str
    source: SourceRef | None
    key: str = ""


@dataclass(slots=True)
class RawInventory:
    """What Ansible sees: every host with its merged variables, the groups, the global variables."""

    path: Path
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> hosts (recursive)
    globals: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    vault_open: bool = False


def position(value: object, base: Path | None = None) -> SourceRef | None:
    """The file and line Ansible's YAML loader recorded for a value, if any."""
    pos = getattr(value, "ansible_pos", None)
    if not pos or not pos[0]:
        return None
    file = str(pos[0])
    if base is not None:
        with contextlib.suppress(ValueError):
            file = os.path.relpath(file, base)
    return SourceRef(file=file, line=int(pos[1]))


def key_position(mapping: object, key: str, base: Path | None = None) -> SourceRef | None:
    """Where `key` sits in a loaded mapping (keys keep their own line), else the mapping."""
    if isinstance(mapping, dict):
        for k in mapping:
            if k == key:
                found = position(k, base)
                if found is not None:
                    return found
    return position(mapping, base)


def find_vault_password_file(inventory: Path) -> Path | None:
    """The vault password file: $DCOPS_VAULT_PASSWORD_FILE, $ANSIBLE_VAULT_PASSWORD_FILE, or the
    single `.vault-pass-*` file of the inventory directory (the lab and example province keys)."""
    for env in ("DCOPS_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"):
        value = os.environ.get(env)
        if value:
            return Path(value)
    directory = inventory if inventory.is_dir() else inventory.parent
    candidates = sorted(directory.glob(".vault-pass-*"))
    return candidates[0] if len(candidates) == 1 else None


def _yaml_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(YAML_SUFFIXES):
                yield Path(root) / name


def scan_yaml(path: Path, base: Path) -> list[Problem]:
    """Parse every YAML file of the inventory and report syntax errors with file and line."""
    problems = []
    for file in _yaml_files(path):
        try:
            text = file.read_text(encoding="utf-8")
            list(AnsibleLoader(text, file_name=str(file)).get_single_data() or [])
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problems.append(Problem(
                "malformed-yaml", f"malformed YAML: {exc.problem or exc.context}",
                SourceRef(os.path.relpath(file, base), line)))
        except (UnicodeDecodeError, AnsibleError) as exc:
            problems.append(Problem("malformed-yaml", f"cannot read: {exc}",
                                       SourceRef(os.path.relpath(file, base))))
        except TypeError:
            pass  # a scalar document: valid YAML, judged by the checks
    return problems


def read(path: Path, vault_password_file: Path | None = None) -> RawInventory:
    """Load the inventory at `path` the way ansible-playbook would."""
    path = path.resolve()
    base = path if path.is_dir() else path.parent
    raw = RawInventory(path=path)
    raw.problems.extend(scan_yaml(path, base))

    loader = DataLoader()
    vault_file = vault_password_file or find_vault_password_file(path)
    if vault_file is not None:
        secret = vault_file.read_text(encoding="utf-8").strip().encode()
        loader.set_vault_secrets([("default", VaultSecret(secret))])
        raw.vault_open = True
    try:
        inventory = InventoryManager(loader=loader, sources=[str(path)])
    except AnsibleError as exc:
        raw.problems.append(Problem("malformed-inventory", str(exc), SourceRef(str(path))))
        return raw
    variables = VariableManager(loader=loader, inventory=inventory)

    for name, group in inventory.groups.items():
        raw.groups[name] = tuple(sorted(h.name for h in group.get_hosts()))
    try:
        all_group = inventory.groups["all"]
        raw.globals = dict(all_group.get_vars())
        raw.globals.update(get_vars_from_inventory_sources(
            loader, inventory._sources, [all_group], "task"))
    except AnsibleError as exc:
        raw.problems.append(Problem("malformed-yaml", str(exc), None))
    for host in inventory.get_hosts():
        try:
            hv = variables.get_vars(host=host, include_hostvars=False, include_delegate_to=False)
        except AnsibleError as exc:
            raw.problems.append(Problem("malformed-yaml", f"host {host.name}: {exc}", None))
            continue
        raw.hostvars[host.name] = dict(hv)
        raw.host_groups[host.name] = tuple(sorted(
            g.name for g in host.get_groups() if g.name not in ("all", "ungrouped")))
    return raw


def clear_text(value: object) -> tuple[bool, str | None]:
    """(is_vaulted, clear value or None when the vault is closed) for a secret variable."""
    if isinstance(value, AnsibleVaultEncryptedUnicode):
        try:
            return True, str(value.data)
        except AnsibleError:
            return True, None
    if value is None:
        return False, None
    return False, str(value)

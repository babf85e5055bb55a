"""Read an Ansible inventory with ansible-core's own inventory and variable managers.

Variables come out with exactly Ansible's precedence (inventory file < group_vars/all < group_vars
of child groups < host_vars). Values keep the file and line Ansible's YAML loader gave them, so
problems can be reported where the user has to look.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
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

from dcops.errors import InventoryError
from dcops.inventory.ansible_quiet import parse_warnings_silenced
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
    vault_files: list[Path] = field(default_factory=list)  # the Vault keys that were given
    loader: Any = None  # ansible's DataLoader with the vault secrets (templates connection vars)

    @property
    def example(self) -> bool:
        """The inventory declares itself an example (`dcops_example: true`)."""
        return declares_example(self.globals)


def declares_example(variables: dict[str, Any]) -> bool:
    """`dcops_example` set true (YAML boolean, or a string Ansible reads as true)."""
    value = variables.get("dcops_example", False)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return value is True or value == 1


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


COLLECTOR_KEY_PREFIX = ".vault-pass-collector-"


def find_vault_password_file(inventory: Path, given: Path | None = None) -> Path | None:
    """The main vault password file: `given` (an option, or the environment as read by the CLI),
    else the single `.vault-pass-*` file (other than `.vault-pass-collector-*`) of the inventory
    directory (the lab and example province keys)."""
    if given is not None:
        return given
    directory = inventory if inventory.is_dir() else inventory.parent
    candidates = [p for p in sorted(directory.glob(".vault-pass-*"))
                  if not p.name.startswith(COLLECTOR_KEY_PREFIX)]
    return candidates[0] if len(candidates) == 1 else None


def find_vault_password_files(inventory: Path,
                              given: Path | None = None) -> list[tuple[str, Path]]:
    """(vault id, file) of every key to try: the main key (see find_vault_password_file) and,
    when the keys come from the inventory directory, its `.vault-pass-collector-*` key (vault id
    `collector`: the SNMP credentials the SOC server's collectors decrypt, and nothing else)."""
    main = find_vault_password_file(inventory, given)
    keys = [("default", main)] if main is not None else []
    directory = inventory if inventory.is_dir() else inventory.parent
    if main is None or main.parent.resolve() == directory.resolve():
        keys += [("collector", p) for p in sorted(directory.glob(COLLECTOR_KEY_PREFIX + "*"))]
    return keys


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


def _vault_key(file: Path) -> bytes:
    try:
        return file.read_text(encoding="utf-8").strip().encode()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InventoryError(f"vault password file: {why}; expected a readable file "
                             f"holding the Vault password", file=str(file)) from exc


_READING = threading.local()
PLUGIN_DIR = Path(__file__).parent / "ansible_plugins"


def reading_inventory() -> bool:
    """dcops itself is reading an inventory (the dcops_derived plugin then adds nothing)."""
    return bool(getattr(_READING, "depth", 0))


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    _READING.depth = getattr(_READING, "depth", 0) + 1
    try:
        yield
    finally:
        _READING.depth -= 1


def read(path: Path, vault_password_file: Path | None = None) -> RawInventory:
    """Load the inventory at `path` the way ansible-playbook would, declared hosts only: the
    `dcops_derived` plugin's source (standby twins, zone networks) adds nothing here, since
    dcops.inventory.derived computes the same from the model."""
    path = path.resolve()
    base = path if path.is_dir() else path.parent
    raw = RawInventory(path=path)
    raw.problems.extend(scan_yaml(path, base))

    loader = DataLoader()
    keys = find_vault_password_files(path, vault_password_file)
    if keys:
        loader.set_vault_secrets([(vault_id, VaultSecret(_vault_key(file)))
                                  for vault_id, file in keys])
        raw.vault_open = True
        raw.vault_files = [file for _, file in keys]
    raw.loader = loader
    try:
        _plugins_ready()
        from ansible.plugins.loader import inventory_loader

        inventory_loader.add_directory(str(PLUGIN_DIR))  # found wherever dcops runs
        with (parse_warnings_silenced(any(p.kind == "malformed-yaml" for p in raw.problems)),
              _reading()):
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


@cache
def _plugins_ready() -> bool:
    """Ansible's plugin loader (lookups such as ansible.builtin.env), initialised once."""
    from ansible.plugins.loader import init_plugin_loader

    with warnings.catch_warnings():  # "already configured" when ansible did it first
        warnings.simplefilter("ignore")
        init_plugin_loader()
    return True


def render(value: object, variables: dict[str, Any], loader: Any = None) -> str:
    """`value` templated with `variables` (a host's variables) as Ansible would, lookups included.

    Used for connection variables such as `ansible_ssh_common_args`, which may name files
    through other variables (the lab's `{{ dcops_lab_dir }}/known_hosts`).
    """
    text = str(value)
    if "{{" not in text and "{%" not in text:
        return text
    from ansible.template import Templar

    _plugins_ready()
    templar = Templar(loader=loader or DataLoader(), variables=variables)
    try:
        return str(templar.template(value))
    except AnsibleError as exc:
        name = variables.get("inventory_hostname", "?")
        raise InventoryError(f"host {name}: cannot template {text!r}: {exc}") from exc


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

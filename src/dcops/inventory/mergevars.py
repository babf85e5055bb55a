"""What `inventory merge` compares besides the site model: group variables and SSH host keys.

Group variables come from `group_vars/<group>[.yml]` files and from `vars:` of groups in the
inventory's own YAML files, each with the file and line of its key. Values are compared as plain
data; Vault values by their clear text when the vault is open, else by their ciphertext.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode

from dcops.inventory.ansible_io import RawInventory, clear_text, key_position
from dcops.model import SourceRef

VARS_DIRS = ("group_vars", "host_vars")
VAR_SUFFIXES = (".yml", ".yaml", ".json")
KNOWN_HOSTS = "known_hosts.txt"


@dataclass(frozen=True, slots=True)
class GroupVar:
    """One group variable: its comparable value and where its key is written."""

    value: object
    source: SourceRef | None


def plain(value: object) -> object:
    """`value` as plain comparable data (Vault values: clear text, else the ciphertext)."""
    if isinstance(value, AnsibleVaultEncryptedUnicode):
        _, clear = clear_text(value)
        return ("vault", clear if clear is not None else bytes(value._ciphertext))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def group_var_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(group, file) of every variables file under `root/group_vars`, in name order."""
    base = root / "group_vars"
    if not base.is_dir():
        return
    for entry in sorted(base.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for dirpath, dirs, files in os.walk(entry):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(VAR_SUFFIXES) and not name.startswith("."):
                        yield entry.name, Path(dirpath) / name
        elif entry.suffix in VAR_SUFFIXES or not entry.suffix:
            yield entry.stem if entry.suffix else entry.name, entry


def inventory_files(root: Path) -> Iterator[Path]:
    """YAML files Ansible reads as inventory sources (everything but group_vars, host_vars)."""
    for dirpath, dirs, files in os.walk(root):
        top = Path(dirpath) == root
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and not (top and d in VARS_DIRS))
        for name in sorted(files):
            if name.endswith((".yml", ".yaml")) and not name.startswith("."):
                yield Path(dirpath) / name


def _load(raw: RawInventory, file: Path) -> Any:
    try:
        return raw.loader.load_from_file(str(file))
    except AnsibleError:
        return None  # a file Ansible cannot read is reported by `inventory check`


def _inline(spec: object, group: str, out: dict[str, dict[str, GroupVar]], base: Path) -> None:
    if not isinstance(spec, dict):
        return
    variables = spec.get("vars")
    if isinstance(variables, dict):
        for key, value in variables.items():
            out.setdefault(group, {}).setdefault(
                str(key), GroupVar(plain(value), key_position(variables, key, base)))
    children = spec.get("children")
    if isinstance(children, dict):
        for child, child_spec in children.items():
            _inline(child_spec, str(child), out, base)


def group_vars(raw: RawInventory) -> dict[str, dict[str, GroupVar]]:
    """group -> variable -> value and key position, from group_vars and inline `vars:`."""
    root = raw.path if raw.path.is_dir() else raw.path.parent
    out: dict[str, dict[str, GroupVar]] = {}
    for group, file in group_var_files(root):
        data = _load(raw, file)
        if isinstance(data, dict):
            for key, value in data.items():
                out.setdefault(group, {}).setdefault(
                    str(key), GroupVar(plain(value), key_position(data, key, root)))
    if raw.path.is_dir():
        for file in inventory_files(root):
            data = _load(raw, file)
            if isinstance(data, dict):
                for group, spec in data.items():
                    _inline(spec, str(group), out, root)
    return out


@dataclass(frozen=True, slots=True)
class KnownHost:
    """One `host keytype key` pair of a known_hosts file, with its line."""

    host: str
    keytype: str
    key: str
    line: int


def known_hosts(root: Path) -> tuple[list[KnownHost], int]:
    """Entries of `root/known_hosts.txt` per host name, and how many hashed lines were skipped."""
    file = root / KNOWN_HOSTS
    if not file.is_file():
        return [], 0
    entries: list[KnownHost] = []
    hashed = 0
    for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        fields = text.split()
        if not fields or fields[0].startswith("#") or fields[0].startswith("@"):
            continue
        if fields[0].startswith("|"):
            hashed += 1
            continue
        if len(fields) < 3:
            continue
        entries.extend(KnownHost(host, fields[1], fields[2], number)
                       for host in fields[0].split(","))
    return entries, hashed

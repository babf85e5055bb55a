"""Write the merged inventory of a clean comparison, and prove `inventory check` accepts it.

Layout of the result: A's files where they were; B's inventory files under `<B's name>/`
(Ansible reads every YAML file of an inventory directory, subdirectories too); each group's
variables of both sides under `group_vars/<group>/` (B's files prefixed with B's name); the
province's sites, systems and name in `group_vars/all/dcops-merge.yml`; host_vars of both;
known_hosts.txt of A followed by B's lines A lacks. Vault key files are never copied.

The tree is built beside `--out`, checked, and only then moved to `--out`, so a failed merge
leaves nothing behind and never touches A or B.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from dcops.errors import InventoryError
from dcops.inventory.ansible_io import find_vault_password_file
from dcops.inventory.merge import (
    MERGED_KEYS,
    VAULT_HEADER,
    Comparison,
    Finding,
    Side,
    load_side,
)
from dcops.inventory.mergevars import KNOWN_HOSTS, VARS_DIRS, group_var_files, plain
from dcops.model import SourceRef

MERGE_FILE = "dcops-merge.yml"


def check_out(out: Path, a: Path, b: Path, overwrite: bool) -> None:
    """Refuse an --out that is A, B, inside or around them, or not empty (unless overwrite)."""
    target = out.resolve()
    for side in (a.resolve(), b.resolve()):
        if target == side or side in target.parents or target in side.parents:
            raise InventoryError(f"--out {out} is or holds inventory {side}: the merge never "
                                 "writes into A or B (expected a new directory)")
    if target.exists() and not target.is_dir():
        raise InventoryError(f"--out {out} is a file (expected a new or empty directory)")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise InventoryError(f"--out {out} is not empty (expected a new or empty directory; "
                                 "--overwrite replaces an earlier merge)")
        if not (target / "group_vars" / "all" / MERGE_FILE).is_file():
            raise InventoryError(f"--out {out} is not an earlier merge (it has no group_vars/all/"
                                 f"{MERGE_FILE}): --overwrite replaces only those")


def _files(root: Path) -> Iterator[Path]:
    """Every file of an inventory but dot files (Vault keys), variables and known_hosts."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (path.is_dir() or any(p.startswith(".") for p in rel.parts)
                or rel.parts[0] in VARS_DIRS or rel == Path(KNOWN_HOSTS)):
            continue
        yield path


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        raise InventoryError(f"two files would land on {dst.name}", file=str(src))
    shutil.copy2(src, dst)


def _dump(data: object) -> str:
    from ansible.parsing.yaml.dumper import AnsibleDumper  # keeps !vault values as they are

    return yaml.dump(data, Dumper=AnsibleDumper, sort_keys=False, allow_unicode=True, width=100)


def _group_vars(side: Side, prefix: str, dest: Path, shared: set[str]) -> None:
    """Copy a side's group_vars; groups both sides have become directories; `all` is stripped
    of MERGED_KEYS (kept in dcops-merge.yml)."""
    root = side.path / "group_vars"
    for group, file in group_var_files(side.path):
        rel = file.relative_to(root)
        if group in shared or group == "all":  # both sides' files in group_vars/<group>/
            if len(rel.parts) == 1:
                rel = Path(group) / f"{prefix or 'main'}{file.suffix}"
            elif prefix:
                rel = Path(*rel.parts[:-1], f"{prefix}-{rel.name}")
        target = dest / rel
        data = side.raw.loader.load_from_file(str(file)) if group == "all" else None
        if isinstance(data, dict) and any(k in data for k in MERGED_KEYS):
            if file.read_text(encoding="utf-8", errors="replace").startswith(VAULT_HEADER):
                raise InventoryError(  # rewriting it would write its secrets in clear
                    f"an encrypted file holds {', '.join(k for k in MERGED_KEYS if k in data)};"
                    " expected them in a clear file (encrypt single values with "
                    "ansible-vault encrypt_string instead)", file=str(file))
            rest = {k: v for k, v in data.items() if k not in MERGED_KEYS}
            if rest:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f"---\n# From {file} without {', '.join(MERGED_KEYS)} "
                                  f"(in {MERGE_FILE}).\n{_dump(rest)}", encoding="utf-8")
            continue
        _copy(file, target)


def _table(variables: dict[str, Any], key: str) -> dict[str, Any]:
    value = plain(variables.get(key))
    return value if isinstance(value, dict) else {}


def _merged_globals(c: Comparison, name: str | None) -> str:
    globals_a, globals_b = c.a.raw.globals, c.b.raw.globals
    data: dict[str, Any] = {
        "dcops_province": name or plain(globals_a.get("dcops_province", "")),
        "dcops_province_vi": name or plain(globals_a.get("dcops_province_vi", "")),
        "dcops_sites": {**_table(globals_a, "dcops_sites"), **_table(globals_b, "dcops_sites")},
        "dcops_systems": {**_table(globals_a, "dcops_systems"),
                          **_table(globals_b, "dcops_systems")},
    }
    header = (f"---\n# Written by `dcops inventory merge {c.a.path} {c.b.path}`: the sites and "
              "information systems of both\n# former provinces (A's first: the address plan "
              "numbers systems in this order).\n")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _known_hosts(c: Comparison, dest: Path) -> None:
    lines_a = ((c.a.path / KNOWN_HOSTS).read_text(encoding="utf-8").splitlines()
               if (c.a.path / KNOWN_HOSTS).is_file() else [])
    lines_b = ((c.b.path / KNOWN_HOSTS).read_text(encoding="utf-8").splitlines()
               if (c.b.path / KNOWN_HOSTS).is_file() else [])
    seen = {line.strip() for line in lines_a}
    extra = [line for line in lines_b
             if line.strip() and not line.lstrip().startswith("#") and line.strip() not in seen]
    if not lines_a and not extra:
        return
    text = "\n".join(lines_a)
    if extra:
        text += f"\n# From {c.b.path / KNOWN_HOSTS} (inventory merge):\n" + "\n".join(extra)
    (dest / KNOWN_HOSTS).write_text(text + "\n", encoding="utf-8")


def _build(c: Comparison, dest: Path, name: str | None) -> None:
    prefix = c.b.path.resolve().name
    if prefix in {p.name for p in c.a.path.iterdir()}:
        prefix = f"merged-{prefix}"
    for file in _files(c.a.path):
        _copy(file, dest / file.relative_to(c.a.path))
    for file in _files(c.b.path):
        _copy(file, dest / prefix / file.relative_to(c.b.path))
    shared = ({g for g, _ in group_var_files(c.a.path)}
              & {g for g, _ in group_var_files(c.b.path)})
    _group_vars(c.a, "", dest / "group_vars", shared)
    _group_vars(c.b, prefix, dest / "group_vars", shared)
    (dest / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (dest / "group_vars" / "all" / MERGE_FILE).write_text(_merged_globals(c, name),
                                                          encoding="utf-8")
    for side in (c.a, c.b):
        host_vars = side.path / "host_vars"
        if host_vars.is_dir():
            for file in sorted(p for p in host_vars.rglob("*") if p.is_file()):
                _copy(file, dest / "host_vars" / file.relative_to(host_vars))
    _known_hosts(c, dest)


def write_merged(c: Comparison, out: Path, name: str | None = None, overwrite: bool = False,
                 vault_password_file: Path | None = None) -> list[Finding]:
    """Write the merge of a clean comparison to `out`; the problems `inventory check` would find
    in it instead (then nothing is written)."""
    check_out(out, c.a.path, c.b.path, overwrite)
    out.parent.resolve().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.merge-", dir=out.resolve().parent))
    try:
        _build(c, work, name)
        # the merged tree holds no Vault key: it opens with A's (the same as B's, or _vault
        # in merge.py has objected)
        key = find_vault_password_file(c.a.path, vault_password_file)
        problems = load_side(work, key).problems
        if problems:
            return [Finding("merged-problem", f"the merged inventory would fail `inventory "
                            f"check`: {p.message} (key: {p.key})",
                            SourceRef(str(out / p.source.file), p.source.line)
                            if p.source else None) for p in problems]
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
        return []
    finally:
        if work.exists():
            shutil.rmtree(work)

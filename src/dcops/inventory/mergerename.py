"""`inventory merge --force`: a copy of B with the hosts, sites and systems A also has renamed.

Only names are changed (a host, a site and every `dcops_site`/`parent`/`site` naming it, a system
and its flows, and its Ansible group when A has a group of that name); addresses, subnets and
group variables are not, so their conflicts still block the merge. Files that change are
rewritten from their data (their comments are lost); the others are copied as they are.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dcops.inventory.merge import Comparison, Finding, compare
from dcops.inventory.mergevars import VAR_SUFFIXES, VARS_DIRS, inventory_files
from dcops.model import SourceRef


@dataclass(frozen=True, slots=True)
class Renames:
    """Old name -> new name of B's hosts, sites, systems and Ansible groups."""

    hosts: dict[str, str]
    sites: dict[str, str]
    systems: dict[str, str]
    groups: dict[str, str]

    def listing(self) -> list[tuple[str, str, str]]:
        """(what, old, new) of every rename, for the report."""
        return [(what, old, new) for what, table in (("host", self.hosts), ("site", self.sites),
                                                      ("system", self.systems),
                                                      ("group", self.groups))
                for old, new in sorted(table.items())]


def plan_renames(c: Comparison) -> Renames:
    """New names for B's hosts, sites and systems that A also has (suffix: B's directory)."""
    slug = re.sub(r"[^a-z0-9]+", "_", c.b.path.resolve().name.lower()).strip("_") or "b"
    dash, under = "-" + slug.replace("_", "-"), "_" + slug
    a, b = c.a.model, c.b.model
    hosts = {h: h + dash for h in sorted((set(b.hosts) | set(b.devices))
                                         & (set(a.hosts) | set(a.devices)))}
    sites = {s: s + dash for s in sorted(set(b.sites) & set(a.sites))}
    systems = {s: s + under for s in sorted(set(b.systems) & set(a.systems))}
    groups: dict[str, str] = {}
    declared = c.b.raw.globals.get("dcops_systems") or {}
    for system in systems:
        spec = declared.get(system) if isinstance(declared, dict) else None
        group = str(spec.get("group", system)) if isinstance(spec, dict) else system
        if group in c.a.raw.groups:
            groups[group] = group + under
    return Renames(hosts, sites, systems, groups)


class _Renamer:
    def __init__(self, renames: Renames) -> None:
        self.r = renames
        self.changed = False

    def name(self, table: dict[str, str], value: object) -> Any:
        if isinstance(value, str) and value in table:
            self.changed = True
            return table[value]
        return value

    def variables(self, data: object) -> None:
        """dcops_site in a mapping of variables; dcops_sites and dcops_systems of group all."""
        if not isinstance(data, dict):
            return
        if "dcops_site" in data:
            data["dcops_site"] = self.name(self.r.sites, data["dcops_site"])
        sites = data.get("dcops_sites")
        if isinstance(sites, dict):
            data["dcops_sites"] = {self.name(self.r.sites, k): v for k, v in sites.items()}
            for spec in sites.values():
                if isinstance(spec, dict) and "parent" in spec:
                    spec["parent"] = self.name(self.r.sites, spec["parent"])
        systems = data.get("dcops_systems")
        if isinstance(systems, dict):
            for system, spec in systems.items():
                self._system(str(system), spec)
            data["dcops_systems"] = {self.name(self.r.systems, k): v for k, v in systems.items()}

    def _system(self, system: str, spec: object) -> None:
        if not isinstance(spec, dict):
            return
        if "site" in spec:
            spec["site"] = self.name(self.r.sites, spec["site"])
        if system in self.r.systems:
            group = str(spec.get("group", system))
            spec["group"] = self.r.groups.get(group, group)
            self.changed = True
        for flow in spec.get("flows") or ():
            if isinstance(flow, dict):
                for end in ("from_system", "to_system"):
                    if end in flow:
                        flow[end] = self.name(self.r.systems, flow[end])

    def group_tree(self, groups: object) -> Any:
        """A mapping of group name -> group spec (an inventory file, or `children:`)."""
        if not isinstance(groups, dict):
            return groups
        out = {}
        for group, spec in groups.items():
            if isinstance(spec, dict):
                self.variables(spec.get("vars"))
                hosts = spec.get("hosts")
                if isinstance(hosts, dict):
                    for host_vars in hosts.values():
                        self.variables(host_vars)
                    spec["hosts"] = {self.name(self.r.hosts, h): v for h, v in hosts.items()}
                if "children" in spec:
                    spec["children"] = self.group_tree(spec["children"])
            out[self.name(self.r.groups, group)] = spec
        return out


def _load(file: Path) -> Any:
    from ansible.parsing.yaml.loader import AnsibleLoader

    return AnsibleLoader(file.read_text(encoding="utf-8"), file_name=str(file)).get_single_data()


def _dump(data: object) -> str:
    from ansible.parsing.yaml.dumper import AnsibleDumper

    return "---\n" + yaml.dump(data, Dumper=AnsibleDumper, sort_keys=False, allow_unicode=True,
                               width=100)


def _target(rel: Path, renames: Renames) -> Path:
    """group_vars/<group>[.yml] and host_vars/<host>[.yml] follow their renamed owner."""
    if len(rel.parts) < 2 or rel.parts[0] not in VARS_DIRS:
        return rel
    table = renames.groups if rel.parts[0] == "group_vars" else renames.hosts
    owner = rel.parts[1]
    stem, suffix = (owner[: -len(s)], s) if (s := next(
        (x for x in VAR_SUFFIXES if owner.endswith(x)), "")) else (owner, "")
    if stem in table:
        return Path(rel.parts[0], table[stem] + suffix, *rel.parts[2:])
    return rel


def renamed_copy(c: Comparison, dest: Path, renames: Renames) -> Path:
    """B copied to `dest/<B's name>` with `renames` applied; returns the copy's path."""
    source = c.b.path
    target = dest / source.resolve().name
    sources = set(inventory_files(source))
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = file.relative_to(source)
        out = target / _target(rel, renames)
        out.parent.mkdir(parents=True, exist_ok=True)
        is_vars = rel.parts[0] in VARS_DIRS and file.suffix in (".yml", ".yaml")
        if file in sources or is_vars:
            renamer = _Renamer(renames)
            data = _load(file)
            if file in sources:
                data = renamer.group_tree(data)
            else:
                renamer.variables(data)
            if renamer.changed:
                out.write_text(f"# Renamed by `dcops inventory merge --force` from {file}.\n"
                               + _dump(data), encoding="utf-8")
                continue
        shutil.copy2(file, out)
    return target


def _back(ref: SourceRef | None, copy: Path, original: Path) -> SourceRef | None:
    if ref is None or not ref.file.startswith(str(copy)):
        return ref
    return SourceRef(str(original) + ref.file[len(str(copy)):], ref.line)


def forced(c: Comparison, work: Path, vault_password_file: Path | None
           ) -> tuple[Comparison, list[Finding]]:
    """Compare A with a renamed copy of B (in `work`): the comparison to write from, and its
    findings (B's locations pointing at B again) after one note per rename."""
    renames = plan_renames(c)
    if not renames.listing():
        return c, list(c.findings)
    copy = renamed_copy(c, work, renames)
    forced_c = compare(c.a.path, copy, vault_password_file)
    b = c.b.model
    where = {**{n: x.source for n, x in b.hosts.items()},
             **{n: x.source for n, x in b.devices.items()}}
    notes = [Finding("renamed", f"{what} {old} of B is {new} in the merged inventory", None,
                     c.b.ref({"host": where, "site": {n: s.source for n, s in b.sites.items()},
                              "system": {n: s.source for n, s in b.systems.items()}}
                             .get(what, {}).get(old)) if what != "group" else None,
                     blocking=False)
             for what, old, new in renames.listing()]
    return forced_c, notes + [replace(f, b=_back(f.b, copy, c.b.path)) for f in forced_c.findings]

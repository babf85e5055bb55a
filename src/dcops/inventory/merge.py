"""Compare two former provinces' inventories before merging them (Vietnam, 1 July 2025).

Every finding names where it is written in A and in B. Blocking findings (conflicts) keep
`inventory merge` from writing; notes are what the engineer should know about the merged result.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dcops.errors import InventoryError
from dcops.inventory.addressplan import AddressPlanError, address_plan
from dcops.inventory.ansible_io import Problem, RawInventory, find_vault_password_files, read
from dcops.inventory.build import build
from dcops.inventory.checks import CHECKS
from dcops.inventory.examples import fingerprint
from dcops.inventory.mergevars import GroupVar, group_vars, known_hosts
from dcops.inventory.planchecks import Where
from dcops.model import Site, SiteKind, SiteModel, SourceRef

#: Variables of group `all` that the merge combines itself instead of comparing.
VAULT_HEADER = "$ANSIBLE_VAULT;"
MERGED_KEYS = ("dcops_sites", "dcops_systems", "dcops_province", "dcops_province_vi")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found comparing A and B: its kind, what it is, where in A and in B."""

    kind: str
    message: str
    a: SourceRef | None = None
    b: SourceRef | None = None
    blocking: bool = True


@dataclass(slots=True)
class Side:
    """One former province's inventory: what Ansible read, its model, its own problems."""

    path: Path
    raw: RawInventory
    model: SiteModel
    problems: list[Problem]

    def ref(self, source: SourceRef | None) -> SourceRef | None:
        """`source` with the inventory directory in front, so A's and B's files differ."""
        if source is None:
            return SourceRef(str(self.path))
        return SourceRef(str(self.path / source.file), source.line)


@dataclass(slots=True)
class Comparison:
    """Both sides and every finding."""

    a: Side
    b: Side
    vault_password_file: Path | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> list[Finding]:
        """The conflicts: findings that keep the merge from being written."""
        return [f for f in self.findings if f.blocking]


def load_side(path: Path, vault_password_file: Path | None) -> Side:
    """Read one inventory exactly as `inventory check` does."""
    if not path.is_dir():
        raise InventoryError("inventory directory not found (expected a directory holding an "
                             "Ansible YAML inventory)", file=str(path))
    raw = read(path, vault_password_file)
    model, problems = build(raw)
    for check in CHECKS:
        problems.extend(check(model, raw))
    return Side(path, raw, model, problems)


def _hosts(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    a, b = c.a.model, c.b.model
    for name in sorted(set(a.hosts) | set(a.devices)):
        if name in b.hosts or name in b.devices:
            one, other = a.hosts.get(name) or a.devices[name], b.hosts.get(name) or b.devices[name]
            what = "device" if name in a.devices or name in b.devices else "host"
            out.append(Finding("duplicate-host",
                               f"{what} {name} is in both inventories (A: {one.address} at "
                               f"{one.site}; B: {other.address} at {other.site})",
                               c.a.ref(one.source), c.b.ref(other.source)))
    return out


def _sites(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    a, b = c.a.model, c.b.model
    for name in sorted(set(a.sites) & set(b.sites)):
        one, two = a.sites[name], b.sites[name]
        same = (one.kind, one.subnets) == (two.kind, two.subnets)
        detail = ("same kind and subnets" if same else f"A: {one.kind} {list(one.subnets)}; "
                  f"B: {two.kind} {list(two.subnets)}")
        out.append(Finding("site-in-both", f"site {name} is in both ({detail})",
                           c.a.ref(one.source), c.b.ref(two.source)))
    return out


def _systems(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    a, b = c.a.model, c.b.model
    for name in sorted(set(a.systems) & set(b.systems)):
        one, two = a.systems[name], b.systems[name]
        level = (f"same level {one.level}" if one.level == two.level
                 else f"level {one.level} in A, {two.level} in B")
        hosts_a = ", ".join(h.name for h in a.hosts_of_system(name)) or "none"
        hosts_b = ", ".join(h.name for h in b.hosts_of_system(name)) or "none"
        out.append(Finding("system-in-both",
                           f"system {name} is in both ({level}); hosts in A: {hosts_a}; "
                           f"hosts in B: {hosts_b}", c.a.ref(one.source), c.b.ref(two.source)))
    return out


def _endpoints(side: Side) -> dict[tuple[str, int], list[tuple[str, SourceRef | None]]]:
    seen: dict[tuple[str, int], list[tuple[str, SourceRef | None]]] = defaultdict(list)
    for host in side.model.hosts.values():
        seen[(host.address, 0)].append((host.name, host.source))
    for device in side.model.devices.values():
        port = device.snmp.port if device.snmp is not None else 161
        seen[(device.address, port)].append((device.name, device.source))
    return seen


def _addresses(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    in_b = _endpoints(c.b)
    for (address, port), owners in sorted(_endpoints(c.a).items()):
        for name_b, where_b in in_b.get((address, port), ()):
            for name_a, where_a in owners:
                label = f"{address} (SNMP port {port})" if port else address
                out.append(Finding("duplicate-address",
                                   f"address {label}: {name_a} in A, {name_b} in B",
                                   c.a.ref(where_a), c.b.ref(where_b)))
    return out


def _plan(model: SiteModel) -> dict[str, tuple[str, str, str]]:
    try:
        return address_plan(model)
    except (AddressPlanError, ValueError):
        return {}  # a site without a usable prefix: `inventory check` names it


def _prefixes(site: Site) -> list[tuple[str, str]]:
    """(field, prefix) of every address block a site owns: its LAN subnets and, for a DC, the
    cloud prefix the IaC carves its zones from (two provinces' clouds must not overlap either)."""
    out = [("subnets", text) for text in site.subnets]
    if site.cloud_prefix:
        out.append(("cloud_prefix", site.cloud_prefix))
    return out


def _subnets(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    where_a, where_b = Where(c.a.model, c.a.raw), Where(c.b.model, c.b.raw)
    plan_a, plan_b = _plan(c.a.model), _plan(c.b.model)
    for site_a in c.a.model.sites.values():
        for site_b in c.b.model.sites.values():
            for field_a, text_a in _prefixes(site_a):
                for field_b, text_b in _prefixes(site_b):
                    try:
                        net_a, net_b = ipaddress.ip_network(text_a), ipaddress.ip_network(text_b)
                    except ValueError:
                        continue  # reported by `inventory check`
                    if not net_a.overlaps(net_b):
                        continue
                    zones = [f"{cidr} (A {plan_a[cidr][1]}/{plan_a[cidr][2]} at {plan_a[cidr][0]},"
                             f" B {plan_b[cidr][1]}/{plan_b[cidr][2]} at {plan_b[cidr][0]})"
                             for cidr in sorted(set(plan_a) & set(plan_b))
                             if plan_a[cidr][0] == site_a.name and plan_b[cidr][0] == site_b.name]
                    more = (f"; zone subnets of the address plan in both: {len(zones)}, e.g. "
                            + "; ".join(zones[:3])) if zones else ""
                    what_a = "subnet" if field_a == "subnets" else "cloud prefix"
                    what_b = "subnet" if field_b == "subnets" else "cloud prefix"
                    out.append(Finding(
                        "overlapping-subnet",
                        f"{what_a} {net_a} of site {site_a.name} (A) overlaps {what_b} {net_b} "
                        f"of site {site_b.name} (B){more}",
                        c.a.ref(where_a.site(site_a.name, field_a)),
                        c.b.ref(where_b.site(site_b.name, field_b))))
    return out


def _group_vars(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    vars_a, vars_b = group_vars(c.a.raw), group_vars(c.b.raw)
    for group in sorted(set(vars_a) & set(vars_b)):
        one, two = vars_a[group], vars_b[group]
        for key in sorted(set(one) & set(two)):
            if group == "all" and key in MERGED_KEYS:
                continue
            if one[key].value != two[key].value:
                out.append(Finding("group-var-conflict",
                                   f"group {group}: {key} differs (A and B set other values; the "
                                   "merged inventory can hold one)",
                                   c.a.ref(one[key].source), c.b.ref(two[key].source)))
        out.extend(_spread(c, group, one, two))
    return out


def _spread(c: Comparison, group: str, one: dict[str, GroupVar], two: dict[str, GroupVar]
            ) -> list[Finding]:
    """Keys one side sets for a shared group reach the other side's hosts after the merge."""
    out: list[Finding] = []
    for label, mine, theirs, side in (("A", one, two, c.a), ("B", two, one, c.b)):
        other = "B" if label == "A" else "A"
        extra = sorted(k for k in mine if k not in theirs
                       and not (group == "all" and k in MERGED_KEYS))
        if extra:
            first = side.ref(mine[extra[0]].source)
            out.append(Finding("group-vars-spread",
                               f"group {group}: {other}'s hosts in it will also get {label}'s "
                               f"{', '.join(extra)}", first if label == "A" else None,
                               first if label == "B" else None, blocking=False))
    return out


def _known_hosts(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    entries_a, hashed_a = known_hosts(c.a.path)
    entries_b, hashed_b = known_hosts(c.b.path)
    keys_a = {(e.host, e.keytype): e for e in entries_a}
    for entry in entries_b:
        mine = keys_a.get((entry.host, entry.keytype))
        if mine is not None and mine.key != entry.key:
            out.append(Finding("known-host-conflict",
                               f"known_hosts: {entry.host} has another {entry.keytype} key in B",
                               SourceRef(str(c.a.path / "known_hosts.txt"), mine.line),
                               SourceRef(str(c.b.path / "known_hosts.txt"), entry.line)))
    if hashed_a or hashed_b:
        out.append(Finding("known-hosts-hashed",
                           f"hashed known_hosts lines were not compared (A: {hashed_a}, "
                           f"B: {hashed_b}); the merged file keeps them all", blocking=False))
    return out


def _own_problems(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    for label, side in (("A", c.a), ("B", c.b)):
        if side.problems:
            first = side.problems[0]
            where = side.ref(first.source)
            out.append(Finding("input-problem",
                               f"{label} has {len(side.problems)} problem(s) of its own (first: "
                               f"{first.message}); run `dcops inventory check -i {side.path}`",
                               where if label == "A" else None, where if label == "B" else None))
    return out


def _vault_keys(side: Side, given: Path | None) -> dict[str, str]:
    out = {}
    for vault_id, file in find_vault_password_files(side.path, given):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            out[vault_id] = fingerprint(file.read_text(encoding="utf-8"))
    return out


def _vaulted_files(root: Path) -> list[Path]:
    return [f for f in sorted(root.rglob("*.y*ml"))
            if not any(p.startswith(".") for p in f.relative_to(root).parts)
            and VAULT_HEADER in f.read_text(encoding="utf-8", errors="replace")]


def _vault(c: Comparison) -> list[Finding]:
    """B's Vault values must open with the keys the merged inventory is opened with (A's)."""
    vaulted = _vaulted_files(c.b.path)
    keys_a, keys_b = _vault_keys(c.a, c.vault_password_file), _vault_keys(c.b, None)
    if not vaulted or (c.vault_password_file is not None or keys_a == keys_b):
        return []
    return [Finding("vault-keys-differ",
                    f"B holds Vault values ({len(vaulted)} file(s)) encrypted with other keys than "
                    "A's: the merged inventory opens with A's keys only; re-encrypt B's secrets "
                    "with A's keys (docs/merge.md), or give --vault-password-file with the one "
                    "key both use",
                    None, c.b.ref(SourceRef(str(vaulted[0].relative_to(c.b.path)))))]


def _dcs(c: Comparison) -> list[Finding]:
    out: list[Finding] = []
    for kind in (SiteKind.PRIMARY_DC, SiteKind.BACKUP_DC):
        both = c.a.model.sites_of(kind), c.b.model.sites_of(kind)
        if both[0] and both[1]:
            first = sorted([s.name for s in both[0] + both[1]])[0]
            out.append(Finding("second-dc",
                               f"both have a {kind}: the merged address plan and the IaC build "
                               f"the first by name ({first}); the other's servers keep their "
                               "addresses until they move (docs/merge.md)",
                               c.a.ref(both[0][0].source), c.b.ref(both[1][0].source),
                               blocking=False))
    return out


#: The comparisons, in the order the report lists their findings.
RULES = (_own_problems, _hosts, _sites, _systems, _addresses, _subnets, _group_vars, _known_hosts,
         _vault, _dcs)


def compare(a: Path, b: Path, vault_password_file: Path | None = None) -> Comparison:
    """Read both inventories and find every conflict and note of merging B into A."""
    if a.resolve() == b.resolve():
        raise InventoryError("A and B are the same inventory (expected two former provinces)",
                             file=str(a))
    c = Comparison(load_side(a, vault_password_file), load_side(b, vault_password_file),
                   vault_password_file)
    for rule in RULES:
        c.findings.extend(rule(c))
    return c

"""The control catalogue (YAML data beside this module) and auditor profiles that override it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from dcops.errors import ConfigError

CATALOGUE_DIR = Path(__file__).with_name("catalogue")
REGIMES = ("tt12", "nd331")
GROUPS = {
    "GOV": ("Quản lý, chính sách", "Governance and policy"),
    "NET": ("An toàn mạng", "Network security"),
    "SRV": ("An toàn máy chủ", "Server security"),
    "APP": ("An toàn ứng dụng", "Application security"),
    "DAT": ("An toàn dữ liệu", "Data security"),
    "MON": ("Giám sát, ứng cứu sự cố", "Monitoring and incident response"),
}
OPS = {"eq", "ne", "le", "ge", "lt", "gt", "between", "true", "false", "empty", "nonempty",
       "superset", "within_baseline", "info"}
SUBJECTS = {"host", "system", "global"}
_ID = re.compile(r"^[A-Z]{3}-\d{2}$")


class CatalogueError(ConfigError):
    """The catalogue or a profile is malformed."""


@dataclass(frozen=True, slots=True)
class Check:
    """One evidence test: `fact` of each subject compared with `value` by `op`."""

    subject: str
    fact: str
    op: str
    value: Any = None
    when: dict[str, Any] | None = None
    text_en: str = ""
    text_vi: str = ""


@dataclass(frozen=True, slots=True)
class Param:
    """A per-level figure: `values[regime][level]`, `status` V/S/I, and a note."""

    name: str
    values: dict[str, dict[int, Any]]
    status: str = "I"
    note: str = ""

    def resolve(self, regime: str, level: int) -> tuple[Any, str]:
        """The figure for a regime and level (nearest lower level given) and where it came from."""
        for key in (regime, "default"):
            table = self.values.get(key)
            if not table:
                continue
            lower = [lv for lv in table if lv <= level]
            if lower:
                lv = max(lower)
                return table[lv], f"catalogue {key} L{lv} [{self.status}]"
        raise CatalogueError(f"parameter {self.name} has no value for {regime} level {level}")


@dataclass(frozen=True, slots=True)
class Control:
    """One control of the catalogue."""

    id: str
    group: str
    name_vi: str
    name_en: str
    levels: tuple[int, ...]
    refs: dict[str, Any]
    evidence: str  # auto | manual
    checks: tuple[Check, ...] = ()
    document: str = ""
    params: dict[str, Param] = field(default_factory=dict)
    remediation: dict[str, str] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Waiver:
    """An accepted exception: the control still shows its verdict, marked waived until expiry."""

    control: str
    owner: str
    reason: str
    expires: date
    system: str = ""  # empty: every system


@dataclass(slots=True)
class Profile:
    """An auditor profile: parameter overrides, waivers, and a default regime."""

    name: str = "default"
    regime: str | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # control -> name -> value
    waivers: list[Waiver] = field(default_factory=list)
    source: str = ""


def _need(item: dict[str, Any], key: str, where: str) -> Any:
    if key not in item or item[key] in (None, ""):
        raise CatalogueError(f"control is missing '{key}'", file=where, key=key)
    return item[key]


def _param(name: str, raw: Any, where: str) -> Param:
    if not isinstance(raw, dict) or "default" not in raw:
        raise CatalogueError(f"parameter {name} needs a 'default' table", file=where, key=name)
    values = {k: {int(lv): v for lv, v in raw[k].items()} for k in ("default", *REGIMES)
              if isinstance(raw.get(k), dict)}
    return Param(name, values, str(raw.get("status", "I")), str(raw.get("note", "")))


def _control(item: dict[str, Any], where: str) -> Control:
    cid = str(_need(item, "id", where))
    if not _ID.match(cid):
        raise CatalogueError(f"control id {cid!r} is not like SRV-01", file=where, key="id")
    here = f"{where} ({cid})"
    group = str(_need(item, "group", here))
    if group not in GROUPS:
        raise CatalogueError(f"unknown group {group}", file=here, key="group")
    evidence = str(_need(item, "evidence", here))
    checks = []
    for raw in item.get("checks") or []:
        check = Check(**raw)
        if check.op not in OPS or check.subject not in SUBJECTS:
            raise CatalogueError(f"check {check.fact}: op must be one of {sorted(OPS)}, subject "
                                 f"one of {sorted(SUBJECTS)}", file=here, key="checks")
        checks.append(check)
    if evidence == "auto" and not checks:
        raise CatalogueError("automatic control has no checks", file=here, key="checks")
    if evidence == "manual" and not item.get("document"):
        raise CatalogueError("manual control names no document", file=here, key="document")
    params = {n: _param(n, v, here) for n, v in (item.get("params") or {}).items()}
    for check in checks:
        for ref in _refs(check.value):
            if ref not in params:
                raise CatalogueError(f"check uses ${ref} but no such parameter", file=here)
    return Control(
        id=cid, group=group, name_vi=str(_need(item, "name_vi", here)),
        name_en=str(_need(item, "name_en", here)),
        levels=tuple(int(x) for x in _need(item, "levels", here)),
        refs=dict(_need(item, "refs", here)), evidence=evidence, checks=tuple(checks),
        document=str(item.get("document", "")), params=params,
        remediation={k: str(v) for k, v in (item.get("remediation") or {}).items()}, source=where)


def _refs(value: Any) -> list[str]:
    if isinstance(value, str) and value.startswith("$"):
        return [value[1:]]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def load_catalogue(directory: Path = CATALOGUE_DIR) -> dict[str, Control]:
    """Every control of the catalogue, by id, in id order; CatalogueError names file and key."""
    controls: dict[str, Control] = {}
    for file in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or []
        if not isinstance(data, list):
            raise CatalogueError("expected a list of controls", file=str(file))
        for item in data:
            control = _control(item, file.name)
            if control.id in controls:
                raise CatalogueError(f"duplicate control {control.id}", file=file.name)
            controls[control.id] = control
    return dict(sorted(controls.items()))


def load_profile(path: Path, catalogue: dict[str, Control]) -> Profile:
    """An auditor profile (YAML): regime, params per control, waivers with owner and expiry."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read profile: {exc}", file=str(path)) from exc
    profile = Profile(name=str(data.get("name", path.stem)), source=str(path))
    regime = data.get("regime")
    if regime is not None and regime not in REGIMES:
        raise CatalogueError(f"regime must be one of {REGIMES}", file=str(path), key="regime")
    profile.regime = regime
    for cid, values in (data.get("params") or {}).items():
        control = catalogue.get(cid)
        if control is None:
            raise CatalogueError(f"unknown control {cid}", file=str(path), key=f"params.{cid}")
        for name in values:
            if name not in control.params:
                raise CatalogueError(f"{cid} has no parameter {name} (has: "
                                     f"{', '.join(control.params) or 'none'})",
                                     file=str(path), key=f"params.{cid}.{name}")
        profile.params[cid] = dict(values)
    for i, raw in enumerate(data.get("waivers") or []):
        key = f"waivers[{i}]"
        missing = [k for k in ("control", "owner", "reason", "expires") if not raw.get(k)]
        if missing:
            raise CatalogueError(f"waiver lacks {', '.join(missing)}", file=str(path), key=key)
        if raw["control"] not in catalogue:
            raise CatalogueError(f"unknown control {raw['control']}", file=str(path), key=key)
        expires = raw["expires"]
        if not isinstance(expires, date):
            try:
                expires = date.fromisoformat(str(expires))
            except ValueError as exc:
                raise CatalogueError("expires must be YYYY-MM-DD", file=str(path),
                                     key=f"{key}.expires") from exc
        profile.waivers.append(Waiver(str(raw["control"]), str(raw["owner"]),
                                      str(raw["reason"]), expires, str(raw.get("system", ""))))
    return profile


def resolve_param(control: Control, name: str, regime: str, level: int,
                  profile: Profile) -> tuple[Any, str]:
    """A parameter's figure for this assessment: the profile's override, else the catalogue's."""
    override = profile.params.get(control.id, {}).get(name)
    if override is not None:
        if isinstance(override, dict):
            lower = [int(lv) for lv in override if int(lv) <= level]
            if lower:
                return override[max(lower)] if max(lower) in override else override[
                    str(max(lower))], f"profile {profile.name}"
        else:
            return override, f"profile {profile.name}"
    return control.params[name].resolve(regime, level)

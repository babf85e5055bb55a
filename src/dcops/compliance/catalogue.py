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
SOURCES_FILE = "sources.yml"
REGIMES = ("tt12", "nd331")
REF_KEYS = (*REGIMES, "iso27001", "four_layer")
# Citation status, strongest first, with the bilingual label the reports print.
CITATION_STATUS = {
    "verified": ("đã kiểm chứng", "verified"),
    "secondary": ("nguồn thứ cấp", "secondary"),
    "inference": ("suy luận", "inference"),
}
SOURCE_KINDS = ("legal", "standard", "iso", "model")
# ISO/IEC 27001:2022 Annex A: themes 5 (37 controls), 6 (8), 7 (14), 8 (34).
ANNEX_A = {f"A.{theme}.{n}" for theme, count in ((5, 37), (6, 8), (7, 14), (8, 34))
           for n in range(1, count + 1)}
# ISO/IEC 27001:2022 main clauses a citation may name instead (requirements outside Annex A).
ISO_CLAUSES = {"4.1", "4.2", "4.3", "4.4", "5.1", "5.2", "5.3", "6.1", "6.1.1", "6.1.2", "6.1.3",
               "6.2", "6.3", "7.1", "7.2", "7.3", "7.4", "7.5", "8.1", "8.2", "8.3", "9.1", "9.2",
               "9.3", "10.1", "10.2"}
_CLAUSE = {
    "legal": re.compile(r"^(Điều \d+( khoản \d+(-\d+)?( điểm [a-zđ])?)?|Phụ lục \d+)$"),
    "standard": re.compile(r"^\d+(\.\d+){0,3}$"),
    "model": re.compile(r"^[1-4]$"),
}
# Text that stands in for a citation instead of being one: "Đ30" cited for every topic, dashes,
# TODO. An item never holds an article: articles go in `clause`, where their form is checked.
PLACEHOLDERS = re.compile(
    r"(?i)\bĐ\s?\d+|\bĐiều\s+\d+|^\s*[-\u2013?]*\s*$|\b(TODO|TBD|FIXME|XXX)\b")
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
class Source:
    """A document the catalogue cites: key, title, kind, the strongest status it supports."""

    key: str
    short: str
    document: str
    kind: str
    max_status: str
    listed_in: str


@dataclass(frozen=True, slots=True)
class Check:
    """One evidence test: `fact` of each subject compared with `value` by `op`."""

    subject: str
    fact: str
    op: str
    value: Any = None
    when: dict[str, Any] | None = None
    # within_baseline: a fact of the subject (value -> where declared) added to the allowed values
    declared: str | None = None
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
    refs: dict[str, list[dict[str, Any]]]  # REF_KEYS -> citations (see _citation)
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


def load_sources(directory: Path = CATALOGUE_DIR) -> dict[str, Source]:
    """The sources table (sources.yml): each entry's document, kind, max_status and listed_in."""
    path = directory / SOURCES_FILE
    if not path.is_file():
        path = CATALOGUE_DIR / SOURCES_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise CatalogueError("expected a mapping of source keys", file=str(path))
    sources = {}
    for key, raw in data.items():
        where = f"{path.name} ({key})"
        if not isinstance(raw, dict):
            raise CatalogueError("source must be a mapping", file=where)
        missing = [k for k in ("short", "document", "kind", "max_status", "listed_in")
                   if not raw.get(k)]
        if missing:
            raise CatalogueError(f"source lacks {', '.join(missing)}", file=where, key=missing[0])
        if raw["kind"] not in SOURCE_KINDS:
            raise CatalogueError(f"kind {raw['kind']!r}: expected one of {SOURCE_KINDS}",
                                 file=where, key="kind")
        if raw["max_status"] not in CITATION_STATUS:
            raise CatalogueError(f"max_status {raw['max_status']!r}: expected one of "
                                 f"{tuple(CITATION_STATUS)}", file=where, key="max_status")
        sources[str(key)] = Source(str(key), str(raw["short"]), str(raw["document"]),
                                   str(raw["kind"]),
                                   str(raw["max_status"]), str(raw["listed_in"]))
    return sources


def _citation(raw: Any, sources: dict[str, Source], where: str, key: str) -> dict[str, Any]:
    """One validated citation, with the cited document's title added for the reports."""
    if not isinstance(raw, dict):
        raise CatalogueError("citation must be a mapping {source, clause, status[, item, note]}",
                             file=where, key=key)
    unknown = set(raw) - {"source", "clause", "status", "item", "note"}
    if unknown:
        raise CatalogueError(f"unknown citation field {sorted(unknown)[0]}", file=where, key=key)
    if not raw.get("source"):
        raise CatalogueError("citation names no source (expected a key of sources.yml)",
                             file=where, key=f"{key}.source")
    source = sources.get(str(raw["source"]))
    if source is None:
        raise CatalogueError(f"unknown source {raw['source']!r} (sources.yml has: "
                             f"{', '.join(sources)})", file=where, key=f"{key}.source")
    status = raw.get("status")
    if status not in CITATION_STATUS:
        raise CatalogueError(f"status {status!r}: expected one of {tuple(CITATION_STATUS)}",
                             file=where, key=f"{key}.status")
    ranks = list(CITATION_STATUS)
    if ranks.index(status) < ranks.index(source.max_status):
        raise CatalogueError(f"status {status} but source {source.key} supports at most "
                             f"{source.max_status}", file=where, key=f"{key}.status")
    if "clause" not in raw:
        raise CatalogueError("citation has no clause (write clause: null and a note when the "
                             "sources give none)", file=where, key=f"{key}.clause")
    clause = raw["clause"]
    if clause is None:
        if not raw.get("note"):
            raise CatalogueError("clause: null needs a note saying what the sources lack",
                                 file=where, key=f"{key}.note")
    else:
        clause = str(clause)
        valid = (clause in ANNEX_A or clause in ISO_CLAUSES if source.kind == "iso"
                 else bool(_CLAUSE[source.kind].match(clause)))
        if not valid:
            expected = {"legal": "'Điều N khoản M điểm x' or 'Phụ lục N'",
                        "standard": "a clause number like 7.2.2",
                        "iso": "an ISO/IEC 27001:2022 Annex A control A.5.1 to A.8.34 or a main "
                               "clause like 6.1.2",
                        "model": "a layer 1 to 4"}[source.kind]
            raise CatalogueError(f"clause {clause!r} of {source.key}: expected {expected}",
                                 file=where, key=f"{key}.clause")
    item = str(raw.get("item") or "")
    if item and PLACEHOLDERS.search(item):
        raise CatalogueError(f"item {item!r} holds an article reference or a placeholder: put "
                             "the article in clause", file=where, key=f"{key}.item")
    return {"source": source.key, "document": source.short, "clause": clause,
            "status": status, "item": item, "note": str(raw.get("note") or "")}


NO_CLAUSE = ("điều khoản chưa xác định", "clause not given by the sources")


def format_citation(cite: dict[str, Any]) -> str:
    """A citation as the reports print it: document, clause (or that the sources give none), the
    requirement wording, and its status in Vietnamese and English."""
    clause = cite.get("clause")
    where = clause if clause else f"({NO_CLAUSE[0]} / {NO_CLAUSE[1]})"
    item = f": {cite['item']}" if cite.get("item") else ""
    vi, en = CITATION_STATUS.get(str(cite.get("status")), ("?", "?"))
    return f"{cite.get('document') or cite.get('source')} {where}{item} [{vi} / {en}]"


def _refs_of(raw: Any, sources: dict[str, Source], where: str) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(raw, dict):
        raise CatalogueError("refs must be a mapping of regime to citations", file=where,
                             key="refs")
    unknown = set(raw) - set(REF_KEYS)
    if unknown:
        raise CatalogueError(f"unknown refs key {sorted(unknown)[0]} (expected {REF_KEYS})",
                             file=where, key="refs")
    refs = {}
    for name in REF_KEYS:
        cites = raw.get(name)
        if cites is None and name == "four_layer":
            continue
        if not isinstance(cites, list) or not cites:
            raise CatalogueError(f"refs.{name} must be a non-empty list of citations",
                                 file=where, key=f"refs.{name}")
        refs[name] = [_citation(c, sources, where, f"refs.{name}[{i}]")
                      for i, c in enumerate(cites)]
    return refs


def _control(item: dict[str, Any], where: str, sources: dict[str, Source]) -> Control:
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
        refs=_refs_of(_need(item, "refs", here), sources, here), evidence=evidence,
        checks=tuple(checks),
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
    sources = load_sources(directory)
    for file in sorted(directory.glob("*.yml")):
        if file.name == SOURCES_FILE:
            continue
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or []
        if not isinstance(data, list):
            raise CatalogueError("expected a list of controls", file=str(file))
        for item in data:
            control = _control(item, file.name, sources)
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

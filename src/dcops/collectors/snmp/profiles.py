"""Polling profiles (monitoring/snmp/profiles.yml): which OIDs a device class is polled for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dcops.errors import ConfigError

TYPES = frozenset({"gauge", "counter32", "counter64", "string"})
# what the Prometheus text format takes unescaped (the exposition is written, not escaped, by
# SnmpMetrics): a profile with other names is refused at load, not at the first scrape
_METRIC_NAME = re.compile(r"[a-zA-Z0-9_:]+")  # after the snmp_ prefix, so a digit may lead
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _name(value: Any, rx: re.Pattern[str], what: str, where: str, file: str) -> str:
    s = str(value)
    if not rx.fullmatch(s):
        raise ConfigError(f"{where}: {what} {s!r} is not a Prometheus {what} (expected "
                          f"{rx.pattern})", file=file, key=where)
    return s


@dataclass(frozen=True, slots=True)
class Scalar:
    """One scalar OID (instance .0)."""

    name: str
    oid: str
    type: str
    metric: str = ""
    scale: float = 1.0
    help: str = ""


@dataclass(frozen=True, slots=True)
class Column:
    """One table column exposed as a metric per row."""

    metric: str
    oid: str
    type: str
    scale: float = 1.0
    scale_column: str = ""  # multiply by another column (hrStorageAllocationUnits)
    pow10_column: str = ""  # divide by 10^column (entPhySensorPrecision)
    si_scale_column: str = ""  # multiply by 10^(3*(column-9)) (entPhySensorScale, units=9)
    help: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """A table: label columns, metric columns, optional row filter."""

    name: str
    index_label: str
    columns: tuple[Column, ...]
    labels: dict[str, str] = field(default_factory=dict)
    label_fallback: dict[str, str] = field(default_factory=dict)
    keep_labels: tuple[str, ...] = ()
    filter_oid: str = ""
    filter_values: frozenset[int] = frozenset()

    def walk_oids(self) -> list[str]:
        """Every column this table needs walked."""
        extra = [c.scale_column for c in self.columns if c.scale_column]
        extra += [c.pow10_column for c in self.columns if c.pow10_column]
        extra += [c.si_scale_column for c in self.columns if c.si_scale_column]
        if self.filter_oid:
            extra.append(self.filter_oid)
        oids = list(self.labels.values()) + [c.oid for c in self.columns] + extra
        return list(dict.fromkeys(oids))


@dataclass(frozen=True, slots=True)
class Profile:
    """The resolved profile of a device class."""

    name: str
    scalars: tuple[Scalar, ...] = ()
    tables: tuple[Table, ...] = ()


def _oid(value: Any, where: str, file: str) -> str:
    s = str(value).strip(".")
    if not s or not all(p.isdigit() for p in s.split(".")):
        raise ConfigError(f"{where}: OID {value!r} must be numeric (digits and dots)",
                          file=file, key=where)
    return s


def _type(value: Any, where: str, file: str) -> str:
    if value not in TYPES:
        raise ConfigError(f"{where}: type {value!r} unknown (expected one of "
                          f"{', '.join(sorted(TYPES))})", file=file, key=where)
    return str(value)


def _table(raw: dict[str, Any], where: str, file: str) -> Table:
    cols = []
    for i, c in enumerate(raw.get("columns") or []):
        w = f"{where}.columns[{i}]"
        if "metric" not in c or "oid" not in c:
            raise ConfigError(f"{w}: needs 'metric' and 'oid'", file=file, key=w)
        cols.append(Column(_name(c["metric"], _METRIC_NAME, "metric name", w, file),
                           _oid(c["oid"], w, file),
                           _type(c.get("type", "gauge"), w, file), float(c.get("scale", 1)),
                           _oid(c["scale_column"], w, file) if c.get("scale_column") else "",
                           _oid(c["pow10_column"], w, file) if c.get("pow10_column") else "",
                           _oid(c["si_scale_column"], w, file) if c.get("si_scale_column")
                           else "",
                           str(c.get("help", ""))))
    flt = raw.get("filter") or {}
    return Table(
        name=str(raw.get("name", where)),
        index_label=_name(raw.get("index_label", "index"), _LABEL_NAME, "label name",
                          f"{where}.index_label", file),
        columns=tuple(cols),
        labels={_name(k, _LABEL_NAME, "label name", f"{where}.labels", file):
                _oid(v, f"{where}.labels.{k}", file)
                for k, v in (raw.get("labels") or {}).items()},
        label_fallback=dict(raw.get("label_fallback") or {}),
        keep_labels=tuple(_name(k, _LABEL_NAME, "label name", f"{where}.keep_labels", file)
                          for k in raw.get("keep_labels") or ()),
        filter_oid=_oid(flt["oid"], f"{where}.filter", file) if flt else "",
        filter_values=frozenset(int(v) for v in flt.get("equals", ())) if flt else frozenset())


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """Load and resolve every profile (includes flattened, cycles rejected)."""
    p = Path(path)
    file = str(p)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read SNMP profiles: {exc}", file=file) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {exc}", file=file,
                          line=mark.line + 1 if mark else None) from exc
    raw = (data or {}).get("profiles")
    if not isinstance(raw, dict):
        raise ConfigError("expected a top-level 'profiles' mapping", file=file, key="profiles")

    resolved: dict[str, Profile] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> Profile:
        if name in resolved:
            return resolved[name]
        if name in stack:
            raise ConfigError(f"include cycle: {' -> '.join((*stack, name))}", file=file,
                              key=f"profiles.{name}")
        body = raw.get(name)
        if not isinstance(body, dict):
            raise ConfigError(f"profile {name!r} is not defined (included from "
                              f"{stack[-1] if stack else 'a device'})", file=file,
                              key=f"profiles.{name}")
        scalars: list[Scalar] = []
        tables: list[Table] = []
        for inc in body.get("include") or []:
            sub = resolve(str(inc), (*stack, name))
            scalars += sub.scalars
            tables += sub.tables
        for i, s in enumerate(body.get("scalars") or []):
            w = f"profiles.{name}.scalars[{i}]"
            _name(s.get("metric") or s["name"], _METRIC_NAME, "metric name", w, file)
            scalars.append(Scalar(str(s["name"]), _oid(s["oid"], w, file),
                                  _type(s.get("type", "gauge"), w, file),
                                  str(s.get("metric", "")), float(s.get("scale", 1)),
                                  str(s.get("help", ""))))
        for i, t in enumerate(body.get("tables") or []):
            tables.append(_table(t, f"profiles.{name}.tables[{i}]", file))
        prof = Profile(name, tuple({s.oid: s for s in scalars}.values()),
                       tuple({t.name: t for t in tables}.values()))
        resolved[name] = prof
        return prof

    for name in raw:
        resolve(str(name), ())
    return resolved

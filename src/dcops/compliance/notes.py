"""Auditor's notes: a reviewed explanation per control of why it is not met (or only partly).

An inventory's `compliance/notes.yml` (beside the evidence registry; written as an Ansible
inventory document, `all.vars.dcops_compliance_notes`, because it lives in the inventory directory)
maps a control id to its explanation:

    SRV-14: {kind: expected, system: lgsp, vi: "...", en: "..."}

`kind` is `expected` (the verdict is what this environment is meant to show, e.g. in the lab) or
`gap` (a real shortfall to remediate). The report prints the note next to the verdict; a note
never changes a verdict. `coverage` tells which not-met findings have no note and which notes
explain a finding that is not (or no longer) failing, so a stale note cannot stay unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcops.compliance.catalogue import CatalogueError
from dcops.compliance.findings import Finding, SystemReport, Verdict

#: kind -> (Vietnamese label, English label)
KINDS: dict[str, tuple[str, str]] = {
    "expected": ("Dự kiến trong môi trường này", "Expected in this environment"),
    "gap": ("Thiếu sót cần khắc phục", "Gap to remediate"),
}
#: Verdicts a note must explain (every finding with one of them needs a note).
EXPLAIN = frozenset({Verdict.NOT_MET, Verdict.PARTLY_MET})
#: Verdicts a note may explain (a note on a met or not applicable control is stale).
EXPLAINABLE = EXPLAIN | {Verdict.MANUAL}
VARIABLE = "dcops_compliance_notes"
FIELDS = ("kind", "vi", "en", "system")


@dataclass(frozen=True, slots=True)
class AuditorNote:
    """The reviewed explanation of one control's verdict (for one system, or all: "")."""

    control: str
    kind: str
    text_vi: str
    text_en: str
    system: str = ""
    source: str = ""  # file:line of the note

    def as_dict(self) -> dict[str, str]:
        """The finding's `note` (findings.json, report)."""
        label_vi, label_en = KINDS[self.kind]
        return {"kind": self.kind, "label_vi": label_vi, "label_en": label_en,
                "text_vi": self.text_vi, "text_en": self.text_en, "source": self.source}


class _Lines(yaml.SafeLoader):
    """SafeLoader that records the line of every mapping key (1-based) in `key_lines`."""


def _mapping_with_lines(loader: _Lines, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.setdefault("__lines__", {})[key] = key_node.start_mark.line + 1
    return out


_Lines.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_lines)


def _body(data: Any) -> tuple[Any, str]:
    """The notes mapping: plain, or `all.vars.dcops_compliance_notes` (inventory form)."""
    if isinstance(data, dict) and isinstance(data.get("all"), dict):
        inner = (data["all"].get("vars") or {})
        if isinstance(inner, dict) and VARIABLE in inner:
            return inner[VARIABLE], f"all.vars.{VARIABLE}"
    return data, ""


def load_notes(path: Path, controls: Iterable[str],
               systems: Iterable[str] | None = None) -> list[AuditorNote]:
    """The notes of `path`; CatalogueError names the file, line and key of a bad entry."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Lines) or {}  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the auditor's notes: {exc}", file=str(path)) from exc
    body, prefix = _body(data)
    if not isinstance(body, dict):
        raise CatalogueError("expected a mapping of control id to note", file=str(path),
                             key=prefix or None)
    known, names = set(controls), None if systems is None else set(systems)
    lines: dict[str, int] = body.get("__lines__", {})
    notes = []
    for control, spec in body.items():
        if control == "__lines__":
            continue
        key = f"{prefix}.{control}" if prefix else str(control)
        line = lines.get(control)

        def fail(message: str, field: str | None = None, at: int | None = line,
                 _key: str = key) -> CatalogueError:
            return CatalogueError(message, file=str(path), line=at,
                                  key=f"{_key}.{field}" if field else _key)

        if str(control) not in known:
            raise fail(f"{control!r} is not a control of the catalogue (expected an id such as "
                       "SRV-14: `dcops audit catalogue`)")
        if not isinstance(spec, dict):
            raise fail("expected a mapping with kind, vi and en")
        at = spec.get("__lines__", {})
        unknown = sorted(str(k) for k in spec if k not in (*FIELDS, "__lines__"))
        if unknown:
            raise fail(f"unknown field {unknown[0]!r}; expected {', '.join(FIELDS)}", unknown[0],
                       at.get(unknown[0], line))
        if spec.get("kind") not in KINDS:
            raise fail(f"kind {spec.get('kind')!r}: expected one of {', '.join(KINDS)}", "kind",
                       at.get("kind", line))
        for field in ("vi", "en"):
            if not isinstance(spec.get(field), str) or not spec[field].strip():
                raise fail(f"the {'Vietnamese' if field == 'vi' else 'English'} explanation is "
                           "missing or empty", field, at.get(field, line))
        system = str(spec.get("system") or "")
        if system and names is not None and system not in names:
            raise fail(f"system {system!r} is not in the inventory (has: "
                       f"{', '.join(sorted(names))})", "system", at.get("system", line))
        notes.append(AuditorNote(str(control), str(spec["kind"]), " ".join(spec["vi"].split()),
                                 " ".join(spec["en"].split()), system,
                                 f"{path}:{line}" if line else str(path)))
    return notes


def note_for(notes: Iterable[AuditorNote], finding: Finding, system: str) -> AuditorNote | None:
    """The note of a finding: the system's own, else one for every system."""
    mine = [n for n in notes if n.control == finding.control and n.system in ("", system)]
    return min(mine, key=lambda n: n.system == "", default=None)


@dataclass(frozen=True, slots=True)
class Coverage:
    """Not-met findings without a note, and notes on findings that are not failing."""

    unexplained: tuple[str, ...]
    stale: tuple[str, ...]


def coverage(report: SystemReport) -> Coverage:
    """What a reviewer must fix in notes.yml for this report: (unexplained, stale) control ids."""
    return Coverage(
        tuple(f.control for f in report.findings if f.verdict in EXPLAIN and not f.note),
        tuple(f"{f.control} ({f.verdict.value})" for f in report.findings
              if f.note and f.verdict not in EXPLAINABLE))

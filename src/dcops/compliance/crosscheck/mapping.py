"""The cross-check mapping (mapping.yml): scanner rule -> (control, fact), reviewed, as data.

The loader validates every entry against the control catalogue: an unknown control, a fact the
control does not check, a missing `reviewed` note or a malformed `explain` is a ConfigError
naming the file and line of the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcops.compliance.catalogue import Control
from dcops.errors import ConfigError

MAPPING_FILE = Path(__file__).with_name("mapping.yml")
FORMAT = "dcops-crosscheck-mapping/1"
SCANNERS = ("openscap", "wazuh")
DIRECTIONS = ("pass/fail", "fail/pass")  # dcops result / scanner result
_ENTRY_KEYS = {"control", "fact", "reviewed", "probe_root_reads", "probe_root_misses",
               "explain"}
_EXPLAIN_KEYS = {"direction", "value", "threshold", "stricter"}


@dataclass(frozen=True, slots=True)
class Explain:
    """A known disagreement: the scanner's threshold is stricter than the catalogue's figure."""

    direction: str  # "pass/fail": dcops passes, the scanner fails
    stricter: str  # higher | lower: which way the scanner's threshold is stricter
    value: str = ""  # XCCDF value id holding the scanner's threshold (OpenSCAP)
    threshold: int | None = None  # the policy's fixed threshold (Wazuh CIS)


@dataclass(frozen=True, slots=True)
class RuleMap:
    """One scanner rule and the control fact that decides the same thing."""

    scanner: str
    rule: str
    control: str
    fact: str
    reviewed: str
    line: int
    probe_root_reads: str = ""
    explain: Explain | None = None
    probe_root_misses: str = ""  # what the scanner cannot see on the host in probe-root mode


@dataclass(frozen=True, slots=True)
class Mapping:
    """The whole mapping: OpenSCAP rules (with the profile) and Wazuh SCA checks (one policy)."""

    source: str
    openscap_profile: str
    openscap_prefix: str
    wazuh_policy: str
    rules: dict[str, dict[str, RuleMap]]  # scanner -> rule id -> mapping

    def of(self, scanner: str) -> dict[str, RuleMap]:
        """The rules mapped for `scanner`."""
        return self.rules.get(scanner, {})


def _plain(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _pairs(node: yaml.Node, where: str, what: str) -> list[tuple[str, yaml.Node, int]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{what}: expected a mapping", file=where, line=node.start_mark.line + 1)
    return [(str(k.value), v, k.start_mark.line + 1) for k, v in node.value]


def _explain(node: yaml.Node, where: str, line: int, key: str, scanner: str) -> Explain:
    raw = _plain(node)
    if not isinstance(raw, dict):
        raise ConfigError("explain: expected a mapping", file=where, line=line, key=key)
    lines = {k: ln for k, _, ln in _pairs(node, where, key)}
    unknown = set(raw) - _EXPLAIN_KEYS
    if unknown:
        raise ConfigError(f"explain: unknown key(s) {', '.join(sorted(unknown))}; expected "
                          f"{', '.join(sorted(_EXPLAIN_KEYS))}", file=where, line=line, key=key)
    if raw.get("direction") not in DIRECTIONS:
        raise ConfigError(f"explain.direction {raw.get('direction')!r}: expected one of "
                          f"{', '.join(DIRECTIONS)} (dcops result/scanner result)",
                          file=where, line=lines.get("direction", line), key=key)
    if raw.get("stricter") not in ("higher", "lower"):
        raise ConfigError(f"explain.stricter {raw.get('stricter')!r}: expected higher or lower",
                          file=where, line=lines.get("stricter", line), key=key)
    value, threshold = raw.get("value"), raw.get("threshold")
    if (value is None) == (threshold is None):
        raise ConfigError("explain: expected exactly one of `value` (an XCCDF value id of the "
                          "scan) or `threshold` (the policy's fixed figure)",
                          file=where, line=line, key=key)
    if value is not None and (scanner != "openscap" or not isinstance(value, str)):
        raise ConfigError("explain.value: an XCCDF value id (OpenSCAP rules only)",
                          file=where, line=line, key=key)
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int)):
        raise ConfigError(f"explain.threshold {threshold!r}: expected an integer",
                          file=where, line=line, key=key)
    return Explain(raw["direction"], raw["stricter"], value or "", threshold)


def _entry(scanner: str, rule: str, node: yaml.Node, line: int, where: str,
           catalogue: dict[str, Control]) -> RuleMap:
    key = f"{scanner}.{rule}"
    fields = {k: (v, ln) for k, v, ln in _pairs(node, where, key)}
    unknown = set(fields) - _ENTRY_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))}; expected "
                          f"{', '.join(sorted(_ENTRY_KEYS))}", file=where, line=line, key=key)
    values = {k: _plain(v) for k, (v, _) in fields.items() if k != "explain"}
    for need in ("control", "fact", "reviewed"):
        if not isinstance(values.get(need), str) or not values[need].strip():
            raise ConfigError(f"missing {need} (a non-empty string)", file=where, line=line,
                              key=key)
    control = catalogue.get(values["control"])
    if control is None:
        raise ConfigError(f"unknown control {values['control']!r}; expected a catalogue id "
                          "(dcops audit catalogue)", file=where, line=fields["control"][1],
                          key=key)
    facts = [c.fact for c in control.checks]
    if values["fact"] not in facts:
        raise ConfigError(f"control {control.id} checks no fact {values['fact']!r}; expected "
                          f"one of {', '.join(facts) or '(none: a manual control)'}",
                          file=where, line=fields["fact"][1], key=key)
    reads = values.get("probe_root_reads", "")
    if reads and scanner != "openscap":
        raise ConfigError("probe_root_reads applies to OpenSCAP rules only", file=where,
                          line=fields["probe_root_reads"][1], key=key)
    misses = values.get("probe_root_misses", "")
    if misses and scanner != "openscap":
        raise ConfigError("probe_root_misses applies to OpenSCAP rules only", file=where,
                          line=fields["probe_root_misses"][1], key=key)
    explain = None
    if "explain" in fields:
        node_, ln = fields["explain"]
        explain = _explain(node_, where, ln, key, scanner)
    return RuleMap(scanner, rule, control.id, values["fact"], values["reviewed"].strip(), line,
                   str(reads or ""), explain, str(misses or ""))


def load_mapping(catalogue: dict[str, Control], path: Path = MAPPING_FILE) -> Mapping:
    """Read and validate `path`; ConfigError naming file:line on anything unexpected."""
    where = str(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the cross-check mapping: {exc.strerror}",
                          file=where) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not YAML: {getattr(exc, 'problem', exc)}", file=where,
                          line=mark.line + 1 if mark else None) from exc
    if root is None:
        raise ConfigError(f"empty; expected format: {FORMAT}", file=where)
    top = {k: (v, ln) for k, v, ln in _pairs(root, where, "top level")}
    unknown = set(top) - {"format", *SCANNERS}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"unknown key {name!r}; expected format, openscap, wazuh",
                          file=where, line=top[name][1])
    fmt = _plain(top["format"][0]) if "format" in top else None
    if fmt != FORMAT:
        raise ConfigError(f"format {fmt!r}: expected {FORMAT}", file=where,
                          line=top["format"][1] if "format" in top else 1)
    rules: dict[str, dict[str, RuleMap]] = {}
    profile = prefix = policy = ""
    if "openscap" in top:
        section = {k: (v, ln) for k, v, ln in _pairs(top["openscap"][0], where, "openscap")}
        profile = str(_plain(section["profile"][0])) if "profile" in section else ""
        prefix = str(_plain(section["rule_prefix"][0])) if "rule_prefix" in section else ""
        if not profile or not prefix or "rules" not in section:
            raise ConfigError("openscap: expected profile, rule_prefix and rules", file=where,
                              line=top["openscap"][1])
        rules["openscap"] = {r: _entry("openscap", r, n, ln, where, catalogue)
                             for r, n, ln in _pairs(section["rules"][0], where, "rules")}
    if "wazuh" in top:
        section = {k: (v, ln) for k, v, ln in _pairs(top["wazuh"][0], where, "wazuh")}
        policy = str(_plain(section["policy"][0])) if "policy" in section else ""
        if not policy or "checks" not in section:
            raise ConfigError("wazuh: expected policy and checks", file=where,
                              line=top["wazuh"][1])
        checks = {}
        for rule, node, ln in _pairs(section["checks"][0], where, "checks"):
            if not rule.isdigit():
                raise ConfigError(f"wazuh check id {rule!r}: expected the SCA check's number",
                                  file=where, line=ln)
            checks[rule] = _entry("wazuh", rule, node, ln, where, catalogue)
        rules["wazuh"] = checks
    return Mapping(where, profile, prefix, policy, rules)

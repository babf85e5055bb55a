"""Event corpus for parity runs: positives synthesised from each rule's detection, plus negatives.

Positives walk pySigma's condition tree and build field values that satisfy it (random branch of
each OR, random case for case-insensitive strings). Negatives are realistic benign events per
logsource and near-misses: a positive with one field nudged (a character added before or after,
the value upper-cased, the field dropped).
"""

from __future__ import annotations

import ipaddress
import random
import re
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

Fields = dict[str, Any]
LS = tuple[str, str, str]

BENIGN: dict[str, list[Fields]] = {
    "process_creation": [
        {"Image": "/usr/bin/ls", "CommandLine": "ls -la /home/admin", "User": "admin",
         "ParentImage": "/usr/bin/bash", "ParentCommandLine": "-bash", "CurrentDirectory": "/"},
        {"Image": "/usr/sbin/cron", "CommandLine": "/usr/sbin/cron -f", "User": "root",
         "ParentImage": "/usr/lib/systemd/systemd", "ParentCommandLine": "/sbin/init"},
        {"Image": "/usr/bin/python3", "CommandLine": "python3 /opt/lgsp/worker.py --queue a",
         "User": "lgsp", "ParentImage": "/usr/bin/bash"},
    ],
    "file_event": [{"TargetFilename": "/var/log/lgsp/app.log", "Image": "/usr/bin/python3"}],
    "network_connection": [
        {"Image": "/usr/bin/curl", "DestinationIp": "10.10.20.5", "DestinationPort": 443,
         "Initiated": "true", "DestinationHostname": "lgsp.dongnai.gov.vn"}
    ],
    "auditd": [
        {"type": "SYSCALL", "SYSCALL": "openat", "exe": "/usr/bin/cat", "comm": "cat",
         "key": "logs", "a0": "3", "a1": "/var/log/syslog", "name": "/var/log/syslog"},
        {"type": "EXECVE", "a0": "ls", "a1": "-la", "argc": 2},
    ],
    "": [{"message": "systemd[1]: Started Session 12 of user admin."}],
}


class Synth:
    """Builds events that satisfy a rule's detection (best effort)."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)

    def _case(self, s: str, cased: bool) -> str:
        if cased:
            return s
        return "".join(c.upper() if self.rng.random() < 0.3 else c for c in s)

    def string(self, s: SigmaString) -> str:
        """A string the Sigma string matches."""
        cased = isinstance(s, SigmaCasedString)
        out = []
        for p in s.s:
            if p is SpecialChars.WILDCARD_MULTI:
                out.append(self.rng.choice(["", "x", "/usr/local/", " -v "]))
            elif p is SpecialChars.WILDCARD_SINGLE:
                out.append("q")
            elif isinstance(p, str):
                out.append(self._case(p, cased))
        return "".join(out)

    def regex(self, r: SigmaRegularExpression) -> str:
        """A crude guess at a string the regex matches (no guarantee)."""
        t = str(r.regexp)
        t = re.sub(r"\(\?[a-z]+\)", "", t)
        t = re.sub(r"\[\^?([^\]]{0,1})[^\]]*\]", lambda m: m.group(1) or "a", t)
        t = t.replace(".*", "x").replace(".+", "x").replace("\\s+", " ").replace("\\s", " ")
        t = t.replace("\\d+", "1").replace("\\d", "1").replace("\\w+", "w").replace("\\w", "w")
        t = re.sub(r"[\^$()?*+{}|]|\{\d+(,\d*)?\}", "", t)
        return re.sub(r"\\(.)", r"\1", t)

    def value(self, v: Any, ev: Fields, field: str | None) -> Any:  # noqa: PLR0911
        """A field value matching one Sigma value."""
        if isinstance(v, SigmaExpansion):
            return self.value(self.rng.choice(v.values), ev, field)
        if isinstance(v, SigmaString):
            return self.string(v)
        if isinstance(v, SigmaRegularExpression):
            return self.regex(v)
        if isinstance(v, SigmaCIDRExpression):
            net = v.network
            return str(net[1] if net.num_addresses > 1 else net[0])
        if isinstance(v, SigmaCompareExpression):
            n = int(v.number.number)
            return {CompareOperators.LT: n - 1, CompareOperators.LTE: n,
                    CompareOperators.GT: n + 1, CompareOperators.GTE: n}.get(v.op, n + 2)
        if isinstance(v, SigmaBool):
            return "true" if v.boolean else "false"
        if isinstance(v, SigmaNumber):
            return int(v.number) if float(v.number).is_integer() else v.number
        if isinstance(v, SigmaFieldReference):
            return ev.get(v.field) or ev.setdefault(v.field, "same-value")
        return "present"

    def satisfy(self, node: Any, ev: Fields) -> None:
        """Set fields so that the node is (probably) true."""
        if isinstance(node, ConditionAND):
            for a in node.args:
                self.satisfy(a, ev)
        elif isinstance(node, ConditionOR):
            self.satisfy(self.rng.choice(node.args), ev)
        elif isinstance(node, ConditionNOT):
            return
        elif isinstance(node, ConditionFieldEqualsValueExpression):
            v = node.value
            if isinstance(v, SigmaNull) or (isinstance(v, SigmaExists) and not v.exists):
                ev.pop(node.field, None)
                return
            new = self.value(v, ev, node.field)
            old = ev.get(node.field)
            if isinstance(old, str) and isinstance(new, str) and old != new:
                new = f"{old} {new}"  # contains|all: both fragments in one value
            ev[node.field] = new
        elif isinstance(node, ConditionValueExpression):
            ev["message"] = f"{ev.get('message', '')} {self.value(node.value, ev, None)}".strip()

    def positives(self, rule: SigmaRule, n: int) -> list[Fields]:
        """n attempts at events that match the rule."""
        out = []
        for _ in range(n):
            ev: Fields = {}
            for cond in rule.detection.parsed_condition:
                self.satisfy(cond.parsed, ev)
            out.append(ev)
        return out

    def near_misses(self, ev: Fields) -> list[Fields]:
        """Copies of a positive with one field nudged."""
        out = []
        for k, v in ev.items():
            if not isinstance(v, str) or not v:
                continue
            how = self.rng.choice(["pre", "post", "upper", "drop", "mid", "like", "nl"])
            e = dict(ev)
            if how == "pre":
                e[k] = "z" + v
            elif how == "post":
                e[k] = v + "z"
            elif how == "upper":
                e[k] = v.upper()
            elif how == "drop":
                del e[k]
            elif how == "like":  # LIKE wildcards in the data must stay literal
                e[k] = v.replace("a", "_", 1).replace("e", "%", 1)
            elif how == "nl":
                e[k] = v + "\n"
            else:
                e[k] = v[: len(v) // 2] + v[len(v) // 2 + 1 :]
            out.append(e)
        return out


def logsource_of(rule: SigmaRule) -> LS:
    """The (product, service, category) a rule's events carry."""
    ls = rule.logsource
    return ((ls.product or "").lower(), (ls.service or "").lower(), (ls.category or "").lower())


def benign_for(ls: LS) -> list[Fields]:
    """Benign events for a logsource."""
    key = ls[2] or ls[1]
    return [dict(x) for x in BENIGN.get(key, BENIGN[""])]


def is_ip(text: str) -> bool:
    """True when text is an IP address (used to keep CIDR cases honest)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def rule_fields(rule: SigmaRule) -> set[str]:
    """Every field a rule's detection names (so the SQLite table has a column for it)."""
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, ConditionFieldEqualsValueExpression):
            out.add(node.field)
            if isinstance(node.value, SigmaFieldReference):
                out.add(node.value.field)
        for a in getattr(node, "args", []) or []:
            walk(a)

    for cond in rule.detection.parsed_condition:
        walk(cond.parsed)
    return out

"""Parsers of the probes that read what is in force on a host, not what is configured.

Each fact's excerpt says what was read (and judged) and what was not: loaded audit rules
(`auditctl -l`, the rules.d files only shown), every sysctl variant (`sysctl -a`: all, default and
each interface), every PAM service file, and every hook of the nftables ruleset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Setter = Callable[[str, object, str], None]

IDENTITY_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group")
# net.ipv4.conf.<variant>.<key> whose every variant must be 0 on a host that is not a router.
# The kernel ORs all and the interface for accept_redirects (non-forwarding) and send_redirects,
# and ANDs them for accept_source_route; the check is the same for all three (CIS reads all
# and default), so a variant left at 1 is reported whatever the kernel would make of it.
CONF_KEYS = ("accept_redirects", "send_redirects", "accept_source_route")


def _perms_ok(perms: str) -> bool:
    return "w" in perms and "a" in perms


def _identity_watches(rules: str) -> dict[str, str]:
    """Identity file -> the rule line watching it for writes and attribute changes."""
    found: dict[str, str] = {}
    for raw in rules.splitlines():
        line = raw.strip()
        watch = re.match(r"-w (\S+)(?:.*?-p (\w+))?", line)
        if watch and watch.group(1) in IDENTITY_FILES and _perms_ok(watch.group(2) or "rwxa"):
            found.setdefault(watch.group(1), line)
            continue
        syscall = re.match(r"-a (always,exit|exit,always) .*-F path=(\S+)", line)
        perm = re.search(r"-F perm=(\w+)", line)
        if syscall and syscall.group(2) in IDENTITY_FILES and perm and _perms_ok(perm.group(1)):
            found.setdefault(syscall.group(2), line)
    return found


def audit_rules(text: str, put: Setter) -> None:
    """`auditctl -l` (what the kernel enforces) decides; the rules.d files are only reported.

    "audit support not in kernel", "No rules", a missing auditctl or any other error is not met:
    configured rules that are not loaded audit nothing.
    """
    loaded, _, configured = text.partition("--- configured")
    rc_line = re.search(r"^--- auditctl rc (\d+)$", loaded, re.M)
    loaded = re.sub(r"^--- auditctl rc \d+\n?", "", loaded, flags=re.M)
    rules = [ln for ln in loaded.splitlines() if ln.startswith(("-w ", "-a "))]
    if rules:
        state = f"auditctl -l: {len(rules)} rules loaded"
    else:
        first = next((ln.strip() for ln in loaded.splitlines() if ln.strip()), "no output")
        rc = f" (rc {rc_line.group(1)})" if rc_line else ""
        state = f"auditctl -l{rc}: {first}; no rule loaded"
    live = _identity_watches("\n".join(rules))
    missing = [f for f in IDENTITY_FILES if f not in live]
    conf = _identity_watches(configured)
    lines = [f"judged: {state}", *live.values()]
    if missing:
        lines.append(f"not loaded (wa): {', '.join(missing)}")
    lines.append(f"not judged: /etc/audit/rules.d configures {len(conf)}/{len(IDENTITY_FILES)}"
                 " identity watches (configuration only)")
    put("auditd.identity_watched", not missing, "\n".join(lines))


def _conf_order(variant: str) -> tuple[int, str]:
    return ({"all": 0, "default": 1}.get(variant, 2), variant)


def sysctl(out: str, put: Setter) -> None:
    """`sysctl -a` (values in force): a fact per global key and per all/default variant, and
    for each CONF_KEYS key the variants (all, default, every interface) that are not 0."""
    variants: dict[str, dict[str, str]] = {k: {} for k in CONF_KEYS}
    for line in out.splitlines():
        name, sep, value = line.partition(" = ")
        name, value = name.strip(), value.strip()
        if not sep or not value.lstrip("-").isdigit():
            continue
        conf = re.fullmatch(r"net\.ipv4\.conf\.([^ ]+)\.(\w+)", name)
        if conf and conf.group(2) in variants:
            variants[conf.group(2)][conf.group(1)] = value
            if conf.group(1) not in ("all", "default"):
                continue  # interfaces are judged together below
        put(f"sysctl.{name}", int(value), f"{name} = {value}")
    for key, seen in variants.items():
        if "all" not in seen or "default" not in seen:
            continue  # not read: no evidence rather than a guess
        order = sorted(seen, key=_conf_order)
        on = [f"{v}={seen[v]}" for v in order if seen[v] != "0"]
        interfaces = [v for v in order if v not in ("all", "default")]
        put(f"sysctl.net.ipv4.conf.*.{key}", on,
            f"read (sysctl -a, in force): {' '.join(f'{v}={seen[v]}' for v in order)}\n"
            f"interfaces: {', '.join(interfaces) or 'none'}; not read: sysctl.d files "
            "(configuration), IPv6 (net.ipv6.conf)")


def pam_nullok(out: str, put: Setter) -> None:
    """Active pam_unix lines of every /etc/pam.d service file (`grep -Hn`): `nullok` lets an
    account with an empty password authenticate wherever that stack is used."""
    entries = [m.groups() for m in re.finditer(r"^/etc/pam\.d/([^:]+):(\d+):(.*)$", out, re.M)]
    if not entries and out.strip():
        return  # grep failed (no /etc/pam.d?): the record keeps the error
    bad = [(f, n, ln) for f, n, ln in entries
           if re.search(r"pam_unix\.so\b.*\bnullok", ln.split("#", 1)[0])]
    files = sorted({f for f, _, _ in entries})
    if bad:
        excerpt = "\n".join(f"/etc/pam.d/{f}:{n}: {ln.strip()}" for f, n, ln in bad)
    else:
        excerpt = (f"no nullok on {len(entries)} active pam_unix lines of "
                   f"{', '.join(files) or 'no service file'}")
    put("pam.nullok", [f"{f}:{n}" for f, n, _ in bad],
        f"{excerpt}\nnot read: /etc/pam.conf (ignored while /etc/pam.d exists), modules other "
        "than pam_unix")


def _chains(items: list[dict[str, Any]], hook: str) -> list[dict[str, Any]]:
    return [i["chain"] for i in items if "chain" in i and i["chain"].get("hook") == hook
            and i["chain"].get("family") in ("inet", "ip", "ip6")]


def _accepts_all(items: list[dict[str, Any]], chain: dict[str, Any]) -> bool:
    """A rule in the chain that accepts every packet (only counters and an accept verdict)."""
    for item in items:
        rule = item.get("rule")
        if not rule or (rule.get("family"), rule.get("table"), rule.get("chain")) != (
                chain.get("family"), chain.get("table"), chain.get("name")):
            continue
        expr = [e for e in rule.get("expr", []) if "counter" not in e]
        if expr == [{"accept": None}]:
            return True
    return False


def _describe(items: list[dict[str, Any]], chains: list[dict[str, Any]]) -> str:
    return "; ".join(f"{c['family']} {c['table']} {c['name']} policy {c.get('policy', 'accept')}"
                     + (" (accepts every packet)" if _accepts_all(items, c) else "")
                     for c in chains) or "no chain"


def nft(out: str, put: Setter) -> None:
    """`nft -j list ruleset`: input hook judged (a drop policy covering IPv4 and IPv6, i.e.
    an inet chain or both an ip and an ip6 one, without an accept-everything rule); the output
    hook is read and reported, not judged."""
    try:
        items = json.loads(out).get("nftables", [])
    except (ValueError, AttributeError):
        why = (out.strip().splitlines() or ["no output"])[0][:200]
        put("firewall.input_policy", "none", f"nft -j list ruleset: {why}; nothing read")
        put("firewall.output_policy", "none", f"nft -j list ruleset: {why}; nothing read")
        return
    inputs, outputs = _chains(items, "input"), _chains(items, "output")
    dropping = {c["family"] for c in inputs
                if c.get("policy") == "drop" and not _accepts_all(items, c)}
    v4, v6 = bool(dropping & {"inet", "ip"}), bool(dropping & {"inet", "ip6"})
    policy = ("drop" if v4 and v6 else "drop (IPv4 only)" if v4 else
              "drop (IPv6 only)" if v6 else "accept" if inputs else "none")
    scope = ("not read: iptables-legacy (x_tables) rules, netdev ingress hooks")
    put("firewall.input_policy", policy,
        f"judged (input hook): {_describe(items, inputs)}\n"
        f"not judged (output hook): {_describe(items, outputs)}\n{scope}")
    out_policy = ("drop" if any(c.get("policy") == "drop" for c in outputs) else
                  "accept" if outputs else "none")
    put("firewall.output_policy", out_policy,
        f"output hook: {_describe(items, outputs)}\n{scope}")

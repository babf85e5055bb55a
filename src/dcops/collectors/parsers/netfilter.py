"""Kernel netfilter LOG lines (nftables `log prefix`, iptables LOG): interfaces, addresses, ports.

Read in time linear in the line: the expression it replaced, `(?:^\\[...\\]\\s*)?(?P<prefix>.*?)
\\s*IN=(?P<in>\\S*) OUT=...`, cost time quadratic in the line and cubic in a run of blanks.
"""

from __future__ import annotations

import re
from typing import Any

# netfilter: the first whitespace-separated token holding `IN=` that is followed by ` OUT=`;
# the atomic group takes the token's first `IN=` only (they all share the token's end).
_NETFILTER_IN = re.compile(r"(?<!\S)(?>\S*?IN=)(?P<in>\S*+) OUT=(?P<out>\S*+)(?P<rest>.*)")
_KERNEL_TS = re.compile(r"\[\s*+\d++\.\d++\]\s*+")


def _netfilter_prefix(msg: str, q: int) -> str:
    """The text before the `IN=` at q, as `(?:^\\[\\s*\\d+\\.\\d+\\]\\s*)?(?P<prefix>.*?)\\s*IN=`
    would capture it: from the kernel timestamp (or the start of its line) to the blanks before."""
    blank = len(msg[:q].rstrip())  # where the blanks before IN= start
    ts = _KERNEL_TS.match(msg)
    if ts and msg.find("\n", ts.end(), blank) == -1:
        start = ts.end()
    else:
        start = msg.rfind("\n", 0, blank) + 1
    return msg[start : max(start, blank)]


def parse_netfilter(msg: str) -> dict[str, Any] | None:
    """Kernel nftables/iptables LOG lines: `PREFIX IN=eth0 OUT= SRC=.. DST=.. DPT=..`."""
    m = _NETFILTER_IN.search(msg)
    if not m or "SRC=" not in m["rest"]:
        return None
    kv: dict[str, str] = {}
    for tok in m["rest"].split():
        k, sep, v = tok.partition("=")
        if sep:
            kv[k] = v
    prefix = _netfilter_prefix(msg, m.start("in") - 3).strip().rstrip(":")
    f: dict[str, Any] = {
        "event.category": "network",
        "event.action": prefix or "netfilter_log",
        "observer.ingress.interface.name": m["in"],
        "observer.egress.interface.name": m["out"],
    }
    low = prefix.lower()
    if any(w in low for w in ("drop", "reject", "deny", "block")):
        f["event.outcome"] = "failure"
        f["action"] = "drop" if "drop" in low else "reject" if "reject" in low else "deny"
    elif "accept" in low or "allow" in low:
        f["action"] = "accept"
    for src, ecs, sigma in (("SRC", "source.ip", "src_ip"), ("DST", "destination.ip", "dst_ip")):
        if src in kv:
            f[ecs] = f[sigma] = kv[src]
    for src, ecs, sigma in (
        ("SPT", "source.port", "src_port"),
        ("DPT", "destination.port", "dst_port"),
    ):
        if kv.get(src, "").isdigit():
            f[ecs] = f[sigma] = int(kv[src])
    if "PROTO" in kv:
        f["network.transport"] = kv["PROTO"].lower()
    return f

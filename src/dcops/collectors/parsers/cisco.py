"""Cisco IOS and ASA syslog: `%FACILITY-SEVERITY-MNEMONIC: text`, logins, commands, denies."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dcops.model.event import LogSource

# Linear in the message: after a literal head only runs that stop at a character they cannot
# contain (possessive), and no `.*?X` or `[^]]*]` that every repeated head would rescan: those
# patterns are read with str.find from their distinctive literal (see the functions below).
_CISCO = re.compile(
    r"%(?P<fac>[A-Z][A-Z0-9_]*+)-(?P<sev>[0-7])-(?P<mn>[A-Z0-9_]++): ?(?P<text>.*)", re.S
)
_IOS_CONFIG = re.compile(
    r"Configured from (?P<via>\S++) by (?P<user>\S++)(?: on (?P<line>\S++))?"
    r"(?: \((?P<ip>[^)]++)\))?"
)
# `User:\s*(\S+)\s+logged command:`; from a token's first `User:` (the others in the token
# share its ending) or a `User:` that ends a token, so no head rescans its token
_IOS_CMD = re.compile(
    r"(?:(?<!\S)(?>\S*?User:)|User:(?=\s))\s*+(?P<user>\S++)\s++logged command:\s*+(?P<cmd>.*)"
)
_ASA_LOGIN_HEAD = re.compile(
    r"Login (?P<res>permitted|denied) from (?P<ip>[^/\s]++)/(?P<port>\d++)"
)
_ASA_AAA_HEAD = re.compile(r"AAA user authentication (?P<res>Successful|Rejected)")
_NOT_COLON_SPACE = re.compile(r"[^:\s]++")
_NOT_SPACE = re.compile(r"\S++")
_ASA_DENY = re.compile(
    r"Deny (?P<proto>\w++) src (?:[\w-]+:)?(?P<src>[^/\s]+)/(?P<spt>\d++) "
    r"dst (?:[\w-]+:)?(?P<dst>[^/\s]+)/(?P<dpt>\d++)"
)
_AAA_ASA = ("111", "113", "502", "605", "611", "771")
_FW_ASA = ("106", "710", "419", "313")


def find_cisco(message: str) -> re.Match[str] | None:
    """The `%FAC-SEV-MNEMONIC:` part of a Cisco message, if any."""
    return _CISCO.search(message)


def parse_cisco(m: re.Match[str]) -> tuple[LogSource, dict[str, Any]]:
    """Fields and Sigma logsource for a Cisco message."""
    fac, mn, text = m["fac"], m["mn"], m["text"]
    f: dict[str, Any] = {
        "cisco.facility": fac,
        "cisco.severity": int(m["sev"]),
        "cisco.mnemonic": mn,
        "event.code": f"{fac}-{m['sev']}-{mn}",
        "message": text,
    }
    service = "syslog"
    category = ""
    if fac in {"ASA", "FTD"}:
        service, category = _asa(mn, text, f)
    elif fac in ("SEC_LOGIN", "PARSER", "AAA", "SSH") or (fac == "SYS" and mn.startswith("CONFIG")):
        service = "aaa"
        _ios(fac, mn, text, f)
    elif fac.startswith("BGP"):
        service = "bgp"
    elif fac.startswith("LDP"):
        service = "ldp"
    elif fac in ("LINK", "LINEPROTO"):
        f["event.category"] = "network"
        f["event.action"] = mn.lower()
    return LogSource("cisco", "" if category else service, category), f


def _ios_login(text: str) -> tuple[str, str] | None:
    """`[user: U] [Source: IP]` (user, ip), found from each `] [Source: ` so no `[user: ` head
    rescans the text up to a `]`: the same as the regex `\\[user: ([^\\]]*)\\] \\[Source:
    ([^\\]]*)\\]` searched."""
    j = text.find("] [Source: ")
    while j != -1:
        opening = text.find("[user: ", text.rfind("]", 0, j) + 1, j)
        if opening != -1:
            close = text.find("]", j + 11)
            return (text[opening + 7 : j], text[j + 11 : close]) if close != -1 else None
        j = text.find("] [Source: ", j + 1)
    return None


def _ios(fac: str, mn: str, text: str, f: dict[str, Any]) -> None:
    if login := _ios_login(text):
        f |= {
            "user.name": login[0],
            "source.ip": login[1],
            "event.category": "authentication",
            "event.action": "login",
            "event.outcome": "failure" if "FAIL" in mn else "success",
        }
    elif m := _IOS_CONFIG.search(text):
        f |= {
            "user.name": m["user"],
            "event.action": "configured",
            "event.category": "configuration",
        }
        if m["ip"]:
            f["source.ip"] = m["ip"]
    elif "logged command:" in text and (m := _IOS_CMD.search(text)):
        f |= {
            "user.name": m["user"],
            "process.command_line": m["cmd"].strip(),
            "event.action": "command",
            "event.category": "process",
        }


class _Next:
    """First occurrence at or after x of `literal` where `ok(pos)` holds, for queries whose x
    never decreases: the last answer is reused while it still lies ahead, so all queries of one
    message scan it once (what makes a lazy `.*?literal` after repeated heads linear)."""

    def __init__(self, text: str, literal: str, ok: Callable[[int], bool] | None = None) -> None:
        self.text, self.literal, self.ok = text, literal, ok
        self.pos = -2  # last answer; -1: none at or after the last query

    def __call__(self, x: int) -> int:
        if self.pos == -1 or self.pos >= x:
            return self.pos
        p = self.text.find(self.literal, x)
        while p != -1 and self.ok is not None and not self.ok(p):
            p = self.text.find(self.literal, p + 1)
        self.pos = p
        return p


def _lazy(nxt: _Next, newline: _Next, x: int) -> int:
    """What `.*?` from x reaches (no newline before it): the next occurrence, or -1."""
    p = nxt(x)
    if p == -1:
        return -1
    nl = newline(x)
    return p if nl == -1 or nl > p else -1


def _asa_exec(text: str) -> tuple[str, str] | None:
    """`User 'U' ... executed [the ]'CMD'`: (user, cmd) as the regex `User '([^']*)'.*?executed
    (?:the )?'([^']*)'` finds them, without rescanning the line from every `User '`."""
    last_quote = text.rfind("'")

    def cmd_start(e: int) -> int:
        if text.startswith("the '", e + 9):
            s = e + 14
        elif text.startswith("'", e + 9):
            s = e + 10
        else:
            return -1
        return s if last_quote >= s else -1

    executed = _Next(text, "executed ", lambda e: cmd_start(e) != -1)
    newline = _Next(text, "\n")
    c = text.find("User '")
    while c != -1:
        q = text.find("'", c + 6)
        if q == -1:
            return None
        e = _lazy(executed, newline, q + 1)
        if e != -1:
            s = cmd_start(e)
            return text[c + 6 : q], text[s : text.find("'", s)]
        c = text.find("User '", c + 1)
    return None


def _asa_login(text: str) -> tuple[re.Match[str], str] | None:
    """`Login permitted|denied from IP/PORT ... user "U"`: the head and the user, as the regex
    `Login ... from ([^/\\s]+)/(\\d+).*?user \\"([^\\"]*)\\"` finds them."""
    last_quote = text.rfind('"')
    user = _Next(text, 'user "', lambda u: last_quote >= u + 6)
    newline = _Next(text, "\n")
    for m in _ASA_LOGIN_HEAD.finditer(text):
        u = _lazy(user, newline, m.end())
        if u != -1:
            return m, text[u + 6 : text.find('"', u + 6)]
    return None


def _asa_aaa(text: str) -> tuple[re.Match[str], str, str | None] | None:
    """`AAA user authentication Successful|Rejected ... user = U [... user IP = IP]` as the regex
    `AAA ... (Successful|Rejected).*?user = ([^:\\s]+)(?:.*?user IP = (\\S+))?` reads it."""

    def starts_user(u: int) -> bool:
        return _NOT_COLON_SPACE.match(text, u + 7) is not None

    user = _Next(text, "user = ", starts_user)
    newline = _Next(text, "\n")
    for m in _ASA_AAA_HEAD.finditer(text):
        u = _lazy(user, newline, m.end())
        if u == -1:
            continue
        name = _NOT_COLON_SPACE.match(text, u + 7)
        assert name is not None
        ip_at = _lazy(
            _Next(text, "user IP = ", lambda v: _NOT_SPACE.match(text, v + 10) is not None),
            newline,
            name.end(),
        )
        ip = _NOT_SPACE.match(text, ip_at + 10) if ip_at != -1 else None
        return m, name[0], ip[0] if ip else None
    return None


def _asa(mn: str, text: str, f: dict[str, Any]) -> tuple[str, str]:
    if cmd := _asa_exec(text):
        f |= {"user.name": cmd[0], "process.command_line": cmd[1], "event.action": "command"}
    elif login := _asa_login(text):
        head, user = login
        f |= {
            "user.name": user,
            "source.ip": head["ip"],
            "source.port": int(head["port"]),
            "event.action": "login",
            "event.category": "authentication",
            "event.outcome": "success" if head["res"] == "permitted" else "failure",
        }
    elif aaa := _asa_aaa(text):
        head, user, ip = aaa
        f |= {
            "user.name": user,
            "event.action": "login",
            "event.category": "authentication",
            "event.outcome": "success" if head["res"] == "Successful" else "failure",
        }
        if ip:
            f["source.ip"] = ip
    elif m := _ASA_DENY.search(text):
        f |= {
            "event.action": "deny",
            "action": "deny",
            "event.outcome": "failure",
            "event.category": "network",
            "network.transport": m["proto"].lower(),
            "source.ip": m["src"],
            "src_ip": m["src"],
            "destination.ip": m["dst"],
            "dst_ip": m["dst"],
            "source.port": int(m["spt"]),
            "src_port": int(m["spt"]),
            "destination.port": int(m["dpt"]),
            "dst_port": int(m["dpt"]),
        }
    if mn.startswith(_AAA_ASA):
        return "aaa", ""
    if mn.startswith(_FW_ASA) or f.get("action") == "deny":
        return "", "firewall"
    return "syslog", ""

"""Cisco IOS and ASA syslog: `%FACILITY-SEVERITY-MNEMONIC: text`, logins, commands, denies."""

from __future__ import annotations

import re
from typing import Any

from dcops.model.event import LogSource

_CISCO = re.compile(
    r"%(?P<fac>[A-Z][A-Z0-9_]*)-(?P<sev>[0-7])-(?P<mn>[A-Z0-9_]+): ?(?P<text>.*)", re.S
)
_IOS_LOGIN = re.compile(
    r"\[user: (?P<user>[^\]]*)\] \[Source: (?P<ip>[^\]]*)\](?: \[localport: (?P<port>\d+)\])?"
)
_IOS_CONFIG = re.compile(
    r"Configured from (?P<via>\S+) by (?P<user>\S+)(?: on (?P<line>\S+))?(?: \((?P<ip>[^)]+)\))?"
)
_IOS_CMD = re.compile(r"User:\s*(?P<user>\S+)\s+logged command:\s*(?P<cmd>.*)")
_ASA_EXEC = re.compile(r"User '(?P<user>[^']*)'.*?executed (?:the )?'(?P<cmd>[^']*)'")
_ASA_LOGIN = re.compile(
    r"Login (?P<res>permitted|denied) from (?P<ip>[^/\s]+)/(?P<port>\d+)"
    r".*?user \"(?P<user>[^\"]*)\""
)
_ASA_AAA = re.compile(
    r"AAA user authentication (?P<res>Successful|Rejected).*?user = (?P<user>[^:\s]+)"
    r"(?:.*?user IP = (?P<ip>\S+))?"
)
_ASA_DENY = re.compile(
    r"Deny (?P<proto>\w+) src (?:[\w-]+:)?(?P<src>[^/\s]+)/(?P<spt>\d+) "
    r"dst (?:[\w-]+:)?(?P<dst>[^/\s]+)/(?P<dpt>\d+)"
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


def _ios(fac: str, mn: str, text: str, f: dict[str, Any]) -> None:
    if m := _IOS_LOGIN.search(text):
        f |= {
            "user.name": m["user"],
            "source.ip": m["ip"],
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
    elif m := _IOS_CMD.search(text):
        f |= {
            "user.name": m["user"],
            "process.command_line": m["cmd"].strip(),
            "event.action": "command",
            "event.category": "process",
        }


def _asa(mn: str, text: str, f: dict[str, Any]) -> tuple[str, str]:
    if m := _ASA_EXEC.search(text):
        f |= {"user.name": m["user"], "process.command_line": m["cmd"], "event.action": "command"}
    elif m := _ASA_LOGIN.search(text):
        f |= {
            "user.name": m["user"],
            "source.ip": m["ip"],
            "source.port": int(m["port"]),
            "event.action": "login",
            "event.category": "authentication",
            "event.outcome": "success" if m["res"] == "permitted" else "failure",
        }
    elif m := _ASA_AAA.search(text):
        f |= {
            "user.name": m["user"],
            "event.action": "login",
            "event.category": "authentication",
            "event.outcome": "success" if m["res"] == "Successful" else "failure",
        }
        if m["ip"]:
            f["source.ip"] = m["ip"]
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

"""Parsers for Linux programs: sshd, sudo, su, shadow-utils (useradd...), cron; netfilter beside."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dcops.collectors.parsers.netfilter import parse_netfilter

Fields = dict[str, Any]

# Every pattern is searched in untrusted text, so each one is linear in it: after its literal
# head, only runs that stop at a character they cannot contain (made possessive: giving any
# back can never help), so two candidate heads never rescan the same text. Patterns whose
# candidates would rescan (netfilter `IN=`, cron's parentheses) are read with str.find instead.
_SSH_AUTH = re.compile(
    r"(?P<res>Accepted|Failed) (?P<method>[\w/-]++) for (?P<invalid>invalid user )?(?P<user>\S*+) "
    r"from (?P<ip>[0-9A-Fa-f.:]++) port (?P<port>\d++)"
)
_SSH_INVALID = re.compile(
    r"Invalid user (?P<user>\S*+) from (?P<ip>[0-9A-Fa-f.:]++)(?: port (?P<port>\d++))?"
)
_SSH_CLOSED = re.compile(
    r"(?:Connection closed|Disconnected) (?:by|from) (?:(?:authenticating|invalid) )?"
    r"(?:user (?P<user>\S++) )?"
    r"(?P<ip>[0-9A-Fa-f.:]++) port (?P<port>\d++)"
)
_SSH_MAXAUTH = re.compile(
    r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S++) "
    r"from (?P<ip>\S++) port (?P<port>\d++)"
)
_PAM_FAIL = re.compile(r"pam_unix\((?P<svc>[\w-]++):auth\): authentication failure;(?P<kv>.*)")
_PAM_SESSION = re.compile(
    r"pam_unix\((?P<svc>[\w-]++):session\): session (?P<what>opened|closed) "
    r"for user (?P<user>[^\s(]++)"
    r"(?:\(uid=\d++\))?(?: by (?P<by>[^\s(]*+)(?:\(uid=\d++\))?)?"
)
_PAM_PASSWD = re.compile(
    r"pam_unix\((?P<svc>[\w-]++):chauthtok\): password changed for (?P<user>\S++)"
)
# `\s*(\w+)=(\S*)` restarted inside every word run (quadratic); a run is tried from its start
_KV_SEMI = re.compile(r"(?<!\w)(\w++)=(\S*+)")
_SUDO = re.compile(r"^\s*+(?P<user>\S++) : (?P<rest>.*)$")
_SU = re.compile(
    r"^(?P<failed>FAILED SU |FAILED su )?\(to (?P<target>[^)]++)\) (?P<user>\S++) on (?P<tty>\S++)"
)
_NEW_USER = re.compile(r"new user: (?P<kv>.*)")
_NEW_GROUP = re.compile(r"(?:new group|group added to \S+): (?P<kv>.*)")
_ADD_GROUP = re.compile(r"add '(?P<user>[^']++)' to (?:shadow )?group '(?P<group>[^']++)'")
_DEL_USER = re.compile(r"delete user '(?P<user>[^']++)'")
_CHANGE_USER = re.compile(r"change user '(?P<user>[^']++)' (?P<what>\w++)")
_CRONTAB_HEAD = re.compile(r"\) (?P<op>BEGIN EDIT|REPLACE|END EDIT|DELETE|LIST) \(")


def _kv_commas(text: str) -> dict[str, str]:
    """`name=bob, UID=1001, GID=1001` -> dict."""
    out: dict[str, str] = {}
    for part in text.split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            out[k] = v
    return out


def _ip_port(f: Fields, ip: str | None, port: str | None, prefix: str = "source") -> None:
    if ip:
        f[f"{prefix}.ip"] = ip
    if port:
        f[f"{prefix}.port"] = int(port)


def parse_sshd(msg: str) -> Fields | None:
    """OpenSSH server: logins, invalid users, disconnects, PAM failures and sessions."""
    f: Fields = {"event.category": "authentication"}
    if m := _SSH_AUTH.search(msg):
        res, method, invalid, user, ip, port = m.groups()
        f["event.action"] = "ssh_login"
        f["user.name"] = user
        f["ssh.method"] = method
        f["event.outcome"] = "success" if res == "Accepted" else "failure"
        if invalid:
            f["user.invalid"] = True
        _ip_port(f, ip, port)
    elif m := _SSH_INVALID.search(msg):
        f |= {
            "event.action": "ssh_invalid_user",
            "event.outcome": "failure",
            "user.name": m["user"],
            "user.invalid": True,
        }
        _ip_port(f, m["ip"], m["port"])
    elif m := _SSH_MAXAUTH.search(msg):
        f |= {
            "event.action": "ssh_max_auth_exceeded",
            "event.outcome": "failure",
            "user.name": m["user"],
        }
        _ip_port(f, m["ip"], m["port"])
    elif m := _SSH_CLOSED.search(msg):
        f |= {"event.action": "ssh_disconnect", "event.category": "network"}
        if "authenticating user" in msg and "[preauth]" in msg:
            # the only trace of a rejected key at LogLevel INFO: authentication began, failed
            f |= {
                "event.action": "ssh_auth_abandoned",
                "event.category": "authentication",
                "event.outcome": "failure",
            }
        if m["user"]:
            f["user.name"] = m["user"]
        _ip_port(f, m["ip"], m["port"])
    elif (g := _pam(msg)) is not None:
        f |= g
    else:
        return None
    return f


def _pam(msg: str) -> Fields | None:
    """pam_unix auth failures, sessions and password changes (shared by sshd, su, sudo, cron...)."""
    if m := _PAM_FAIL.search(msg):
        kv = dict(_KV_SEMI.findall(m["kv"]))
        f: Fields = {
            "event.action": f"{m['svc']}_auth_failure",
            "event.outcome": "failure",
            "event.category": "authentication",
        }
        if kv.get("user"):
            f["user.name"] = kv["user"]
        if kv.get("rhost"):
            f["source.ip"] = kv["rhost"]
        if kv.get("ruser"):
            f["user.effective.name"] = kv["ruser"]
        return f
    if m := _PAM_SESSION.search(msg):
        f = {
            "event.action": f"session_{m['what']}",
            "event.category": "session",
            "event.outcome": "success",
            "user.name": m["user"],
        }
        if m["by"]:
            f["user.changes.name"] = m["by"]
        return f
    if m := _PAM_PASSWD.search(msg):
        return {
            "event.action": "password_changed",
            "event.category": "iam",
            "event.outcome": "success",
            "user.name": m["user"],
        }
    return None


def parse_sudo(msg: str) -> Fields | None:
    """sudo: commands run (`alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id`)."""
    if (g := _pam(msg)) is not None:
        return g
    m = _SUDO.match(msg)
    if not m:
        return None
    parts = [p.strip() for p in m["rest"].split(" ; ")]
    kv: dict[str, str] = {}
    notes: list[str] = []
    for p in parts:
        k, sep, v = p.partition("=")
        if sep and k.isupper():
            kv[k] = v
        else:
            notes.append(p)
    f: Fields = {"event.category": "process", "user.name": m["user"], "User": m["user"]}
    if "COMMAND" in kv:
        cmd = kv["COMMAND"]
        f |= {
            "process.command_line": cmd,
            "CommandLine": cmd,
            "process.executable": cmd.split(" ")[0],
        }
    if "USER" in kv:
        f["user.effective.name"] = kv["USER"]
    if "PWD" in kv:
        f["process.working_directory"] = kv["PWD"]
    if "TTY" in kv:
        f["process.tty"] = kv["TTY"]
    if notes:
        f |= {
            "event.action": "sudo_refused",
            "event.outcome": "failure",
            "error.message": "; ".join(notes),
        }
    else:
        f |= {"event.action": "sudo_command", "event.outcome": "success"}
    return f


def parse_su(msg: str) -> Fields | None:
    """su: switches of user, successful or failed."""
    if (g := _pam(msg)) is not None:
        return g
    if m := _SU.match(msg):
        return {
            "event.action": "su",
            "event.category": "authentication",
            "user.name": m["user"],
            "user.target.name": m["target"],
            "process.tty": m["tty"],
            "event.outcome": "failure" if m["failed"] else "success",
        }
    return None


def parse_shadow_utils(msg: str) -> Fields | None:
    """useradd, usermod, userdel, groupadd, passwd, chpasswd: account changes."""
    f: Fields = {"event.category": "iam", "event.outcome": "success"}
    if m := _NEW_USER.search(msg):
        kv = _kv_commas(m["kv"])
        f |= {
            "event.action": "user_created",
            "user.target.name": kv.get("name", ""),
            "user.target.id": kv.get("UID", ""),
            "group.id": kv.get("GID", ""),
        }
        if "shell" in kv:
            f["user.target.shell"] = kv["shell"]
    elif m := _NEW_GROUP.search(msg):
        kv = _kv_commas(m["kv"])
        f |= {
            "event.action": "group_created",
            "group.name": kv.get("name", ""),
            "group.id": kv.get("GID", ""),
        }
    elif m := _ADD_GROUP.search(msg):
        f |= {
            "event.action": "user_added_to_group",
            "user.target.name": m["user"],
            "group.name": m["group"],
        }
    elif m := _DEL_USER.search(msg):
        f |= {"event.action": "user_deleted", "user.target.name": m["user"]}
    elif m := _CHANGE_USER.search(msg):
        f |= {"event.action": f"user_changed_{m['what']}", "user.target.name": m["user"]}
    elif (g := _pam(msg)) is not None:
        f |= g
    else:
        return None
    return f


def _cron_cmd(msg: str) -> tuple[str, str] | None:
    """`(user) CMD (command)` ending the message: what `\\((?P<user>[^)]+)\\) CMD
    \\((?P<cmd>.*)\\)\\s*$` finds, found from each `) CMD (` instead of from every `(`."""
    last = len(msg.rstrip()) - 1  # the command's closing parenthesis: the last visible character
    if last < 0 or msg[last] != ")":
        return None
    newline = msg.rfind("\n", 0, last)  # the command cannot span a line
    j = msg.find(") CMD (")
    while j != -1 and j + 7 <= last:
        opening = msg.find("(", msg.rfind(")", 0, j) + 1, j)
        if opening != -1 and opening < j - 1 and j + 7 > newline:
            return msg[opening + 1 : j], msg[j + 7 : last]
        j = msg.find(") CMD (", j + 1)
    return None


def _crontab(msg: str) -> tuple[str, str, str] | None:
    """`(user) OP (target)`: (user, op, target), without rescanning from every `(`."""
    for m in _CRONTAB_HEAD.finditer(msg):
        j, start = m.start(), m.end()
        close = msg.find(")", start)
        if close == -1:
            return None  # no later head can close its target either
        opening = msg.find("(", msg.rfind(")", 0, j) + 1, j)
        if opening != -1 and opening < j - 1 and close > start:
            return msg[opening + 1 : j], m["op"], msg[start:close]
    return None


def parse_cron(msg: str) -> Fields | None:
    """cron jobs run and crontab edits."""
    if cmd := _cron_cmd(msg):
        user, line = cmd
        return {
            "event.action": "cron_command",
            "event.category": "process",
            "user.name": user,
            "User": user,
            "process.command_line": line,
            "CommandLine": line,
        }
    if tab := _crontab(msg):
        user, op, target = tab
        return {
            "event.action": f"crontab_{op.lower().replace(' ', '_')}",
            "event.category": "configuration",
            "user.name": user,
            "user.target.name": target,
        }
    return _pam(msg)


__all__ = ["PROGRAMS", "parse_netfilter"]

PROGRAMS: dict[str, tuple[Callable[[str], Fields | None], str]] = {
    "sshd": (parse_sshd, "sshd"),
    "sudo": (parse_sudo, "sudo"),
    "su": (parse_su, "auth"),
    "useradd": (parse_shadow_utils, "auth"),
    "usermod": (parse_shadow_utils, "auth"),
    "userdel": (parse_shadow_utils, "auth"),
    "groupadd": (parse_shadow_utils, "auth"),
    "groupmod": (parse_shadow_utils, "auth"),
    "passwd": (parse_shadow_utils, "auth"),
    "chpasswd": (parse_shadow_utils, "auth"),
    "chage": (parse_shadow_utils, "auth"),
    "cron": (parse_cron, "cron"),
    "CRON": (parse_cron, "cron"),
    "crond": (parse_cron, "cron"),
    "crontab": (parse_cron, "cron"),
}

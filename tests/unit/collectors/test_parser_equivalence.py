"""The linear rewrites of the parsers find exactly what the backtracking expressions found.

Each reference below is the expression (or state machine) the parser used before issue 13; on
short generated lines, where backtracking is still cheap, the new code must give the same
groups. The lines are built from the pieces each pattern is made of, so matches, near misses
and nested repetitions all occur.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.collectors.parsers import auditd, cisco, linux, netfilter, syslog_frame

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
COMMON = [*" \n\t\u3000aZ1\u0663é_-.:/'\"()[]=\\*%", " ", "  "]


def lines(*pieces: str, size: int = 24) -> st.SearchStrategy[str]:
    """Lines made of the given pieces and common characters."""
    return st.lists(st.sampled_from([*pieces, *COMMON]), max_size=size).map("".join)


def groups(m: re.Match[str] | None) -> dict[str, str | None] | None:
    return None if m is None else m.groupdict()


OLD = {
    "ssh_auth": r"(?P<res>Accepted|Failed) (?P<method>[\w/-]+) for (?P<invalid>invalid user )?"
    r"(?P<user>\S*) from (?P<ip>[0-9A-Fa-f.:]+) port (?P<port>\d+)",
    "ssh_invalid": r"Invalid user (?P<user>\S*) from (?P<ip>[0-9A-Fa-f.:]+)"
    r"(?: port (?P<port>\d+))?",
    "ssh_closed": r"(?:Connection closed|Disconnected) (?:by|from) (?:(?:authenticating|invalid) )?"
    r"(?:user (?P<user>\S+) )?(?P<ip>[0-9A-Fa-f.:]+) port (?P<port>\d+)",
    "ssh_maxauth": r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) "
    r"from (?P<ip>\S+) port (?P<port>\d+)",
    "pam_fail": r"pam_unix\((?P<svc>[\w-]+):auth\): authentication failure;(?P<kv>.*)",
    "pam_session": r"pam_unix\((?P<svc>[\w-]+):session\): session (?P<what>opened|closed) "
    r"for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<by>[^\s(]*)(?:\(uid=\d+\))?)?",
    "pam_passwd": r"pam_unix\((?P<svc>[\w-]+):chauthtok\): password changed for (?P<user>\S+)",
    "sudo": r"^\s*(?P<user>\S+) : (?P<rest>.*)$",
    "su": r"^(?P<failed>FAILED SU |FAILED su )?\(to (?P<target>[^)]+)\) (?P<user>\S+) on "
    r"(?P<tty>\S+)",
    "add_group": r"add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'",
    "del_user": r"delete user '(?P<user>[^']+)'",
    "change_user": r"change user '(?P<user>[^']+)' (?P<what>\w+)",
    "cisco": r"%(?P<fac>[A-Z][A-Z0-9_]*)-(?P<sev>[0-7])-(?P<mn>[A-Z0-9_]+): ?(?P<text>.*)",
    "ios_config": r"Configured from (?P<via>\S+) by (?P<user>\S+)(?: on (?P<line>\S+))?"
    r"(?: \((?P<ip>[^)]+)\))?",
    "ios_cmd": r"User:\s*(?P<user>\S+)\s+logged command:\s*(?P<cmd>.*)",
    "asa_deny": r"Deny (?P<proto>\w+) src (?:[\w-]+:)?(?P<src>[^/\s]+)/(?P<spt>\d+) "
    r"dst (?:[\w-]+:)?(?P<dst>[^/\s]+)/(?P<dpt>\d+)",
    "audit_head": r"(?:node=(?P<node>\S+) )?type=(?P<type>\w+) "
    r"msg=audit\((?P<sec>\d+)\.(?P<ms>\d+):(?P<serial>\d+)\):\s?",
    "r5424": r"(?P<ver>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) ",
}
NEW: dict[str, tuple[re.Pattern[str], bool, list[str]]] = {  # pattern, anchored, pieces
    "ssh_auth": (
        linux._SSH_AUTH,
        False,
        [
            "Accepted ",
            "Failed ",
            "password",
            " for ",
            "invalid user ",
            " from ",
            "1.2",
            " port ",
            "22",
        ],
    ),
    "ssh_invalid": (linux._SSH_INVALID, False, ["Invalid user ", " from ", "1.2", " port ", "2"]),
    "ssh_closed": (
        linux._SSH_CLOSED,
        False,
        [
            "Connection closed ",
            "Disconnected ",
            "by ",
            "from ",
            "authenticating ",
            "user ",
            "1.2",
            " port ",
            "2",
        ],
    ),
    "ssh_maxauth": (
        linux._SSH_MAXAUTH,
        False,
        ["maximum authentication attempts exceeded for ", "invalid user ", " from ", " port ", "2"],
    ),
    "pam_fail": (
        linux._PAM_FAIL,
        False,
        ["pam_unix(", "sshd", ":auth): ", "authentication failure;", "user=b"],
    ),
    "pam_session": (
        linux._PAM_SESSION,
        False,
        [
            "pam_unix(",
            "su",
            ":session): ",
            "session ",
            "opened ",
            "for user ",
            "(uid=0)",
            " by ",
            "b",
        ],
    ),
    "pam_passwd": (
        linux._PAM_PASSWD,
        False,
        ["pam_unix(", "passwd", ":chauthtok): ", "password changed for "],
    ),
    "sudo": (linux._SUDO, False, [" : ", "alice", "TTY=x"]),
    "su": (linux._SU, False, ["FAILED SU ", "FAILED su ", "(to ", "root", ") ", " on ", "pts"]),
    "add_group": (linux._ADD_GROUP, False, ["add '", "' to ", "shadow ", "group '", "x"]),
    "del_user": (linux._DEL_USER, False, ["delete user '", "x"]),
    "change_user": (linux._CHANGE_USER, False, ["change user '", "' ", "shell"]),
    "cisco": (cisco._CISCO, False, ["%", "SEC", "_", "-", "4", "-LOGIN", ": ", "AB"]),
    "ios_config": (
        cisco._IOS_CONFIG,
        False,
        ["Configured from ", "console", " by ", "admin", " on ", "vty0", " (", "10.0.0.1", ")"],
    ),
    "ios_cmd": (cisco._IOS_CMD, False, ["User:", "admin", "logged command:", "User:x", "show"]),
    "asa_deny": (
        cisco._ASA_DENY,
        False,
        ["Deny ", "tcp", " src ", "outside:", "1.2.3.4", "/", "22", " dst ", "in-side:"],
    ),
    "audit_head": (
        auditd._HEAD,
        True,
        ["node=", "h ", "type=", "SYSCALL", " msg=audit(", "17", ".", "12", ":", "4", "): "],
    ),
    "r5424": (syslog_frame._R5424, True, ["1 ", "2026-11-22T04:44:50Z ", "-", "h", "app"]),
}


def _compare(name: str, text: str) -> None:
    new, anchored, _ = NEW[name]
    old = re.compile(OLD[name], re.S if name == "cisco" else 0)
    got, want = (
        (new.match(text), old.match(text)) if anchored else (new.search(text), old.search(text))
    )
    assert groups(got) == groups(want), (name, text)
    if want is not None and got is not None and name != "ios_cmd":  # it starts at the token
        assert got.span() == want.span(), (name, text)


def _pattern_test(name: str) -> Callable[[], None]:
    @settings(max_examples=150, deadline=None)
    @given(lines(*NEW[name][2]))
    def test(text: str) -> None:
        _compare(name, text)

    test.__name__ = f"test_{name}_same_groups"
    return test


for _name in NEW:
    globals()[f"test_{_name}_same_groups"] = _pattern_test(_name)


NETFILTER = re.compile(
    r"(?:^\[\s*\d+\.\d+\]\s*)?(?P<prefix>.*?)\s*IN=(?P<in>\S*) OUT=(?P<out>\S*)(?P<rest>.*)"
)


@settings(max_examples=400, deadline=None)
@given(lines("IN=", " OUT=", "OUT=", "IN=x", "SRC=1", "[", " 1.2]", "1.2]", "]  ", "\n "))
def test_netfilter_same_prefix_and_interfaces(text: str) -> None:
    want = NETFILTER.search(text)
    got = netfilter._NETFILTER_IN.search(text)
    assert (want is None) == (got is None), text
    if want is not None and got is not None:
        assert (got["in"], got["out"], got["rest"]) == (want["in"], want["out"], want["rest"])
        assert netfilter._netfilter_prefix(text, got.start("in") - 3) == want["prefix"], text


CRON_CMD = re.compile(r"\((?P<user>[^)]+)\) CMD \((?P<cmd>.*)\)\s*$")
CRONTAB = re.compile(
    r"\((?P<user>[^)]+)\) (?P<op>BEGIN EDIT|REPLACE|END EDIT|DELETE|LIST) \((?P<target>[^)]+)\)"
)


@settings(max_examples=400, deadline=None)
@given(lines(") CMD (", "(", ")", "(root", " REPLACE (", ") LIST (", "x) ", ")\n", " ) "))
def test_cron_same_user_command_and_crontab(text: str) -> None:
    m = CRON_CMD.search(text)
    assert linux._cron_cmd(text) == ((m["user"], m["cmd"]) if m else None), text
    t = CRONTAB.search(text)
    assert linux._crontab(text) == ((t["user"], t["op"], t["target"]) if t else None), text


IOS_LOGIN = re.compile(r"\[user: (?P<user>[^\]]*)\] \[Source: (?P<ip>[^\]]*)\]")
ASA_EXEC = re.compile(r"User '(?P<user>[^']*)'.*?executed (?:the )?'(?P<cmd>[^']*)'")
ASA_LOGIN = re.compile(
    r"Login (?P<res>permitted|denied) from (?P<ip>[^/\s]+)/(?P<port>\d+)"
    r".*?user \"(?P<user>[^\"]*)\""
)
ASA_AAA = re.compile(
    r"AAA user authentication (?P<res>Successful|Rejected).*?user = (?P<user>[^:\s]+)"
    r"(?:.*?user IP = (?P<ip>\S+))?"
)


@settings(max_examples=400, deadline=None)
@given(lines("[user: ", "] [Source: ", "]", "[", "x", " [localport: 22]"))
def test_ios_login_same_user_and_source(text: str) -> None:
    m = IOS_LOGIN.search(text)
    assert cisco._ios_login(text) == ((m["user"], m["ip"]) if m else None), text


@settings(max_examples=400, deadline=None)
@given(lines("User '", "'", "executed ", "the ", "executed the '", "ls", "\n", "User 'x' "))
def test_asa_exec_same_user_and_command(text: str) -> None:
    m = ASA_EXEC.search(text)
    assert cisco._asa_exec(text) == ((m["user"], m["cmd"]) if m else None), text


@settings(max_examples=400, deadline=None)
@given(lines("Login denied from ", "Login permitted from ", "1.2", "/", "22", 'user "', '"', "\n"))
def test_asa_login_same_fields(text: str) -> None:
    m = ASA_LOGIN.search(text)
    got = cisco._asa_login(text)
    want = (m["res"], m["ip"], m["port"], m["user"]) if m else None
    assert (got and (got[0]["res"], got[0]["ip"], got[0]["port"], got[1])) == want, text


@settings(max_examples=400, deadline=None)
@given(
    lines(
        "AAA user authentication ",
        "Rejected",
        "Successful",
        "user = ",
        "bob",
        "user IP = ",
        "10.0.0.1",
        "\n",
        ": ",
    )
)
def test_asa_aaa_same_fields(text: str) -> None:
    m = ASA_AAA.search(text)
    got = cisco._asa_aaa(text)
    want = (m["res"], m["user"], m["ip"]) if m else None
    assert (got and (got[0]["res"], got[1], got[2])) == want, text


BSD = (
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2})"
    r"(?: (?P<year>\d{4}))? (?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?:? "
)
FIND_BSD = re.compile(r"(?:(?P<h>[A-Za-z][\w.-]*): )?[*.]?" + BSD)


@settings(max_examples=400, deadline=None)
@given(lines("Nov ", "22 ", "2026 ", "04:44:50", ".123", ": ", "*", "r1", "h-1.x", "Jan  1 "))
def test_find_bsd_time_same_time_and_host(text: str) -> None:
    m = FIND_BSD.search(text)
    want = (syslog_frame._bsd_time(m, NOW), m["h"] or "") if m else (None, "")
    assert syslog_frame.find_bsd_time(text, NOW) == want, text


def old_split_sd(rest: str) -> tuple[str, str]:
    if rest.startswith("-"):
        return "", rest[2:] if rest.startswith("- ") else rest[1:]
    i, depth, esc = 0, 0, False
    while i < len(rest):
        c = rest[i]
        if esc:
            esc = False
        elif c == "\\":
            esc = True
        elif c == "[" and depth == 0:
            depth = 1
        elif c == "]" and depth == 1:
            depth = 0
            if i + 1 >= len(rest) or rest[i + 1] != "[":
                return rest[: i + 1], rest[i + 2 :]
        elif c == '"' and depth:
            depth = 2 if depth == 1 else 1
        i += 1
    return rest, ""


@settings(max_examples=400, deadline=None)
@given(lines("[", "]", '"', "\\", "][", '="', "- ", "-", "x"))
def test_structured_data_split_same(text: str) -> None:
    assert syslog_frame._split_sd(text) == old_split_sd(text), text


KV_SEMI = re.compile(r"\s*(\w+)=(\S*)")
AUDIT_KV = re.compile(r"""([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


@settings(max_examples=400, deadline=None)
@given(lines("=", "a=", "-k=", "user=", '"', "'", "msg='", "x y", "AB", "0F"))
def test_key_value_pairs_same(text: str) -> None:
    assert linux._KV_SEMI.findall(text) == KV_SEMI.findall(text), text
    assert auditd._KV.findall(text) == AUDIT_KV.findall(text), text
    for _, v in AUDIT_KV.findall(text):
        new = len(v) % 2 == 0 and auditd._HEX.fullmatch(v) is not None
        assert new == (HEX.match(v) is not None), v


RFC3164_PIECES = ["<", ">", "<13>", "<38>", "<191>", "<192>", "<999>", "<0>", "Nov", "Jan", "Dec",
                  "Nov ", " ", "  ", "2", "22", "022", " 2025", "05:00:01", "5:00:01", ".123",
                  ":", "web1", "h", "fe80::1", "%h", "web1:", "sshd", "CRON", "a/b", "(x)", "@",
                  "[", "]", "[1]", "[123]", "[ 1]", "[" + "9" * 40 + "]", ": ", "msg", "\ufeff",
                  "\x00", "\r\n", "-", "h" * 256, "t" * 70]


@settings(max_examples=3000, deadline=None)
@given(lines(*RFC3164_PIECES, size=16))
def test_fast_rfc3164_path_splits_as_the_general_path(line: str) -> None:
    """parse_syslog's one-match path for the common RFC 3164 line gives the same message as the
    general path (PRI, _BSD_TS, _HOST, _TAG step by step) on every line it accepts."""
    assert syslog_frame.parse_syslog(line, now=NOW) == syslog_frame._parse_general(
        line.rstrip("\r\n\x00"), NOW)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(["<38>", "<165>", "<13>"]), st.sampled_from(["Nov", "Feb", "Dec"]),
       st.sampled_from([" ", "  "]), st.integers(1, 31), st.sampled_from(["05:00:01", "23:59:59"]),
       lines("web1", "h.example.vn", "-", "_", size=4), lines("sshd", "sudo", "/", size=4),
       st.sampled_from(["", "[1]", "[42]", "[x y]"]), st.sampled_from([": ", ":", " ", ": : "]),
       lines("Failed password", " for ", size=6))
def test_fast_rfc3164_path_on_near_valid_lines(pri: str, mon: str, sp: str, day: int, hms: str,
                                              host: str, tag: str, pid: str, sep: str,
                                              text: str) -> None:
    """The same on lines shaped like real ones (where the fast path mostly applies)."""
    line = f"{pri}{mon}{sp}{day} {hms} {host} {tag}{pid}{sep}{text}"
    assert syslog_frame.parse_syslog(line, now=NOW) == syslog_frame._parse_general(
        line.rstrip("\r\n\x00"), NOW)

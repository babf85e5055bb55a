"""Hostile lines for the parsers: what an attacker sends to make a parser backtrack or hoard.

Each family builds a line of `n` characters (random bytes: at most `n`) from a pattern chosen to
hit one weakness: runs of spaces after `IN=`, repeated prefixes of a parser's pattern with its
closing part missing, floods of the characters structured data or JSON nest on, random text.
`tests/unit/collectors/test_parser_linear.py` and `scripts/bench/parser_adversarial.py` run
every parser entry point on every family; the fuzz campaign may send them over the wire.
Deterministic (seeded), so a slow case can be replayed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Family = Callable[[int], str]
Parse = Callable[[str], Any]


def _rep(unit: str, tail: str = "") -> Family:
    """`unit` repeated to n characters, ending with `tail`."""

    def gen(n: int) -> str:
        body = max(0, n - len(tail))
        return ((unit * (body // len(unit) + 1))[:body] + tail)[:n]

    return gen


def _pad(head: str, fill: str, tail: str = "") -> Family:
    """`head`, then `fill` repeated, then `tail`: n characters."""

    def gen(n: int) -> str:
        body = max(0, n - len(head) - len(tail))
        return (head + (fill * (body // len(fill) + 1))[:body] + tail)[:n]

    return gen


def _printable(n: int) -> str:
    rng = random.Random(n)  # noqa: S311 - reproducible test input, not a secret
    return "".join(rng.choices(string.printable, k=n))


def _random_bytes(n: int) -> str:
    rng = random.Random(n)  # noqa: S311 - reproducible test input, not a secret
    return rng.randbytes(n).decode("utf-8", "replace")[:n]


def _json_many_keys(n: int) -> str:
    parts, size, i = [], 2, 0
    while size < n - 16:
        item = f'"k{i}":{i}'
        parts.append(item)
        size += len(item) + 1
        i += 1
    return "{" + ",".join(parts) + "}"


def _json_long_key(n: int) -> str:
    key = "k" * (n // 2)
    kids = _json_many_keys(max(2, n - len(key) - 8))
    return '{"' + key + '":' + kids + "}"


def _json_deep_valid(n: int) -> str:
    k = max(1, (n - 1) // 6)
    return '{"a":' * k + "1" + "}" * k


def _json_deep_list(n: int) -> str:
    k = max(1, (n - 8) // 2)
    return '{"a":' + "[" * k + "]" * k + "}"


FAMILIES: dict[str, Family] = {
    # whitespace and the netfilter `IN=` pattern (quadratic/cubic before the rewrite)
    "spaces": _rep(" "),
    "whitespace_mix": _rep(" \t\n\r\x0b\x0c\u3000"),
    "newlines": _rep("a\n"),
    "in_then_spaces": _pad("IN=", " "),
    "spaces_then_in": _pad("", " ", "IN="),
    "spaces_then_in_out": _pad("", " ", "IN=eth0 OUT= MAC=aa"),
    "in_10k_spaces": _rep("x IN=" + " " * 10_000),
    "in_repeated": _rep("IN="),
    "in_space_repeated": _rep("IN= "),
    "in_out_no_src": _rep("IN=eth0 OUT=eth1 "),
    "kernel_ts_spaces": _pad("[", " ", "1.2] IN="),
    "kernel_ts_digits": _pad("[ ", "1", ".1"),
    # words, digits, key=value runs (findall over `\w+=` restarts inside runs)
    "word": _rep("a"),
    "hex_odd": _pad("", "A", "B"),
    "digits": _rep("1"),
    "digit_dots": _rep("1."),
    "kv": _rep("a=b "),
    "kv_no_space": _rep("a="),
    "kv_dquote_open": _rep('a="'),
    "kv_squote_open": _rep("a='"),
    "audit_msg_open": _pad("msg='", "a=b "),
    "equals": _rep("="),
    # structured data and JSON nesting
    "brackets_open": _rep("["),
    "brackets_close": _rep("]"),
    "dquotes": _rep('"'),
    "backslashes": _rep("\\"),
    "sd_open_quote": _pad('[a b="', '\\"'),
    "sd_unclosed_elements": _rep('[x a="1"]['),
    "json_deep_list": _json_deep_list,
    "json_open_objects": _rep('{"a":'),
    "json_deep_valid": _json_deep_valid,
    "json_many_keys": _json_many_keys,
    "json_long_key": _json_long_key,
    "json_long_string": _pad('{"full_log":"', "x", '"}'),
    # repeated prefixes of program patterns with the closing part missing
    "parens_open": _rep("("),
    "cron_cmd_repeated": _rep("(a) CMD ("),
    "cron_cmd_newline": _pad("(root) CMD (", "x", "\ny)"),
    "crontab_repeated": _rep("(a) REPLACE ("),
    "percent": _rep("%"),
    "cisco_head_repeated": _rep("%ASA-4-1"),
    "cisco_fac_run": _pad("%", "A", "-1-"),
    "month_repeated": _rep("Nov 22 "),
    "month_spaces": _pad("Nov", " ", "1"),
    "host_colon_month": _rep("h: *Nov 2"),
    "long_host_then_month": _pad("", "a", ": *Nov 22 04:44:50: "),
    "ssh_failed_repeated": _rep("Failed password for "),
    "ssh_accepted_repeated": _rep("Accepted publickey for root from 1.2.3.4 port "),
    "ssh_invalid_repeated": _rep("Invalid user "),
    "ssh_closed_repeated": _rep("Connection closed by "),
    "ssh_maxauth_repeated": _rep("maximum authentication attempts exceeded for "),
    "pam_repeated": _rep("pam_unix("),
    "pam_fail_spaces": _pad("pam_unix(sshd:auth): authentication failure;", " "),
    "pam_fail_word": _pad("pam_unix(sshd:auth): authentication failure;", "u"),
    "pam_session_repeated": _rep("pam_unix(sshd:session): session opened for user "),
    "ios_login_repeated": _rep("[user: "),
    "ios_config_repeated": _rep("Configured from x by y ("),
    "ios_cmd_spaces": _pad("User:", " "),
    "asa_user_quote": _rep("User '"),
    "asa_user_no_executed": _pad("User 'x'", "y"),
    "asa_login_repeated": _rep("Login denied from 1.2.3.4/1 "),
    "asa_aaa_repeated": _rep("AAA user authentication Rejected "),
    "asa_deny_repeated": _rep("Deny tcp src a:1.2.3.4/1 dst "),
    "shadow_add_repeated": _rep("add '"),
    "shadow_new_user": _pad("new user: ", "a=b,"),
    "sudo_separators": _pad("a : ", " ; "),
    "su_repeated": _rep("(to "),
    # random text
    "random_printable": _printable,
    "random_bytes": _random_bytes,
}


def entry_points() -> dict[str, tuple[str, Parse]]:
    """Every parser entry point: name -> (header put before a family's text, parse function).

    The Normaliser behind each kind of header, then each parser called directly, the Wazuh
    alert reader and the TCP framing (imported here: they are not parsers' dependencies).
    """
    from dcops.collectors.parsers import linux
    from dcops.collectors.parsers.auditd import parse_record
    from dcops.collectors.parsers.cisco import find_cisco, parse_cisco
    from dcops.collectors.parsers.normalise import Normaliser
    from dcops.collectors.parsers.syslog_frame import find_bsd_time, parse_syslog
    from dcops.collectors.syslog import split_frames
    from dcops.collectors.wazuh import WazuhAlertNormaliser

    now = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)

    def normaliser(head: str) -> tuple[str, Parse]:
        def run(line: str) -> Any:
            n = Normaliser("adversarial")
            return n.line(line, id_parts=(1,), received=now) + n.flush()

        return head, run

    def cisco(line: str) -> Any:
        m = find_cisco(line)
        return parse_cisco(m) if m else None

    def wazuh(line: str) -> Any:
        return WazuhAlertNormaliser().line(line, id_parts=(1,), received=now)

    return {
        "normaliser/none": normaliser(""),
        "normaliser/rfc5424": normaliser("<165>1 2026-11-22T04:44:50Z h app 1 ID - "),
        "normaliser/rfc5424-sd": normaliser("<165>1 2026-11-22T04:44:50Z h app 1 ID "),
        "normaliser/sshd": normaliser("<38>Nov 22 04:44:50 web1 sshd[1]: "),
        "normaliser/sudo": normaliser("Nov 22 04:44:50 web1 sudo: "),
        "normaliser/su": normaliser("Nov 22 04:44:50 web1 su[2]: "),
        "normaliser/useradd": normaliser("Nov 22 04:44:50 web1 useradd[3]: "),
        "normaliser/cron": normaliser("2026-11-22T04:44:50+00:00 db1 CRON[5]: "),
        "normaliser/kernel": normaliser("Nov 22 04:44:50 fw1 kernel: "),
        "normaliser/app": normaliser("<13>Nov 22 04:44:50 h1 myapp[3]: "),
        "normaliser/cisco-ios": normaliser("<189>52: router1: *Nov 22 04:44:50.123: %PARSER-5-X: "),
        "normaliser/cisco-head": normaliser("<189>52: "),
        "normaliser/asa": normaliser("<164>Nov 22 2026 04:44:50: %ASA-6-605004: "),
        "normaliser/auditd": normaliser("type=SYSCALL msg=audit(1700000000.123:1): "),
        "normaliser/audisp": normaliser(
            "<13>Nov 22 04:44:50 h audisp-syslog: type=USER_LOGIN msg=audit(1.2:3): pid=1 msg='"
        ),
        "parse_syslog": ("", lambda s: parse_syslog(s, now=now)),
        "find_bsd_time": ("", lambda s: find_bsd_time(s, now)),
        "netfilter": ("", linux.parse_netfilter),
        "sshd": ("", linux.parse_sshd),
        "sudo": ("", linux.parse_sudo),
        "su": ("", linux.parse_su),
        "shadow_utils": ("", linux.parse_shadow_utils),
        "cron": ("", linux.parse_cron),
        "cisco": ("%ASA-6-605004: ", cisco),
        "cisco-ios": ("%SEC_LOGIN-4-LOGIN_FAILED: ", cisco),
        "parse_record": ("type=EXECVE msg=audit(1.2:3): ", parse_record),
        "parse_record/bare": ("", parse_record),
        "wazuh": ("", wazuh),
        "wazuh/object": ('{"rule":{"level":3},"data":', wazuh),
        "split_frames": ("", lambda s: split_frames(s.encode("utf-8", "replace") + b"\n")),
    }


def line(family: str, head: str, size: int) -> str:
    """`head` and then the family's text: `size` characters in all (random bytes: at most)."""
    return head + FAMILIES[family](max(0, size - len(head)))

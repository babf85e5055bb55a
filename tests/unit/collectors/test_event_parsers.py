"""Normalisation of syslog, Linux programs, auditd and Cisco into Events with Sigma names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dcops.collectors.parsers import Normaliser, parse_syslog
from dcops.model.event import Event, LogSource

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def one(line: str) -> Event:
    n = Normaliser("test")
    out = n.line(line, id_parts=(1,), received=NOW) + n.flush()
    assert len(out) == 1, out
    return out[0]


def test_rfc5424_header_and_structured_data() -> None:
    m = parse_syslog(
        '<165>1 2026-11-22T04:44:50.123+07:00 web1 app 42 ID47 [ex@32473 a="x] y"] hello'
    )
    assert (m.format, m.facility, m.severity) == ("rfc5424", 20, 5)
    assert (m.hostname, m.app_name, m.procid, m.msgid) == ("web1", "app", "42", "ID47")
    assert m.structured_data == '[ex@32473 a="x] y"]'
    assert m.message == "hello"
    assert m.timestamp == datetime(2026, 11, 21, 21, 44, 50, 123000, tzinfo=UTC)


def test_rfc5424_nil_values() -> None:
    m = parse_syslog("<14>1 - - - - - - just text")
    assert m.timestamp is None and m.hostname == "" and m.message == "just text"


def test_rfc3164_year_inferred_near_now() -> None:
    m = parse_syslog("<38>Dec 31 23:59:59 host1 sshd[9]: x", now=NOW.replace(month=1, day=1))
    assert m.timestamp is not None and m.timestamp.year == 2025
    assert (m.hostname, m.app_name, m.procid, m.message) == ("host1", "sshd", "9", "x")


def test_rsyslog_file_format_iso_timestamp() -> None:
    m = parse_syslog("2026-11-22T04:44:50.123456+00:00 db1 CRON[5]: (root) CMD (true)")
    assert (m.format, m.hostname, m.app_name) == ("file", "db1", "CRON")


@pytest.mark.parametrize(
    ("msg", "action", "outcome", "user", "ip"),
    [
        (
            "Failed password for invalid user admin from 10.0.0.5 port 4242 ssh2",
            "ssh_login",
            "failure",
            "admin",
            "10.0.0.5",
        ),
        (
            "Accepted publickey for root from 2001:db8::1 port 22 ssh2: ED25519 SHA256:x",
            "ssh_login",
            "success",
            "root",
            "2001:db8::1",
        ),
        (
            "Invalid user oracle from 10.0.0.6 port 5000",
            "ssh_invalid_user",
            "failure",
            "oracle",
            "10.0.0.6",
        ),
        (
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
            "rhost=10.0.0.7  user=bob",
            "sshd_auth_failure",
            "failure",
            "bob",
            "10.0.0.7",
        ),
    ],
)
def test_sshd(msg: str, action: str, outcome: str, user: str, ip: str) -> None:
    e = one(f"Nov 22 04:44:50 web1 sshd[123]: {msg}")
    assert e.logsource == LogSource("linux", "sshd")
    f = e.fields
    assert (f["event.action"], f["event.outcome"], f["user.name"], f["source.ip"]) == (
        action,
        outcome,
        user,
        ip,
    )
    assert f["host.name"] == "web1" and f["message"] == msg


def test_sudo_command_and_refusal() -> None:
    e = one(
        "Nov 22 04:44:50 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
        "COMMAND=/usr/bin/id -u"
    )
    assert e.logsource == LogSource("linux", "sudo")
    assert e.fields["CommandLine"] == "/usr/bin/id -u"
    assert e.fields["user.effective.name"] == "root" and e.fields["event.outcome"] == "success"
    e = one(
        "Nov 22 04:44:50 web1 sudo:    mallory : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; "
        "USER=root ; COMMAND=/bin/sh"
    )
    assert e.fields["event.action"] == "sudo_refused" and e.fields["event.outcome"] == "failure"


def test_su_and_shadow_utils() -> None:
    e = one("Nov 22 04:44:50 web1 su[7]: FAILED SU (to root) alice on pts/1")
    assert e.logsource == LogSource("linux", "auth")
    assert (e.fields["user.target.name"], e.fields["event.outcome"]) == ("root", "failure")
    e = one(
        "Nov 22 04:44:50 web1 useradd[8]: new user: name=john, UID=0, GID=0, home=/home/john, "
        "shell=/bin/bash, from=/dev/pts/0"
    )
    assert e.fields["event.action"] == "user_created" and e.fields["user.target.id"] == "0"
    assert "new user" in e.fields["message"] and "UID=0," in e.fields["message"]
    e = one("Nov 22 04:44:50 web1 usermod[9]: add 'john' to group 'sudo'")
    assert (e.fields["event.action"], e.fields["group.name"]) == ("user_added_to_group", "sudo")
    e = one(
        "Nov 22 04:44:50 web1 passwd[10]: pam_unix(passwd:chauthtok): password changed for john"
    )
    assert e.fields["event.action"] == "password_changed"


def test_cron() -> None:
    e = one(
        "Nov 22 04:44:50 web1 CRON[11]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)"
    )
    assert e.logsource == LogSource("linux", "cron")
    assert e.fields["user.name"] == "root" and e.fields["CommandLine"].startswith("cd /")


def test_netfilter_drop() -> None:
    e = one(
        "Nov 22 04:44:50 fw1 kernel: [ 1234.5678] NFT-DROP IN=eth0 OUT= MAC=aa:bb SRC=1.2.3.4 "
        "DST=5.6.7.8 LEN=60 TTL=64 PROTO=TCP SPT=1234 DPT=23 SYN"
    )
    assert e.logsource == LogSource("linux", "", "firewall")
    f = e.fields
    assert (f["src_ip"], f["dst_ip"], f["dst_port"], f["action"]) == (
        "1.2.3.4",
        "5.6.7.8",
        23,
        "drop",
    )
    assert f["event.action"] == "NFT-DROP" and f["network.transport"] == "tcp"


def test_cisco_ios_command_and_login() -> None:
    e = one(
        "<189>52: router1: *Nov 22 04:44:50.123: %PARSER-5-CFGLOG_LOGGEDCMD: User:admin  "
        "logged command:clear logging"
    )
    assert e.logsource == LogSource("cisco", "aaa")
    assert (e.fields["host.name"], e.fields["user.name"]) == ("router1", "admin")
    assert "clear logging" in e.fields["message"]
    e = one(
        "<188>53: router1: *Nov 22 04:44:51: %SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: x] "
        "[Source: 10.1.1.1] [localport: 22] [Reason: Login Authentication Failed]"
    )
    assert (e.fields["source.ip"], e.fields["event.outcome"]) == ("10.1.1.1", "failure")


def test_cisco_asa_deny_is_firewall() -> None:
    e = one(
        "<164>Nov 22 2026 04:44:50: %ASA-4-106023: Deny tcp src outside:1.2.3.4/1234 dst "
        'inside:10.0.0.1/22 by access-group "acl"'
    )
    assert e.logsource == LogSource("cisco", "", "firewall")
    assert (e.fields["src_ip"], e.fields["dst_port"]) == ("1.2.3.4", 22)


AUDIT = [
    "type=SYSCALL msg=audit(1700000000.123:456): arch=c000003e syscall=59 success=yes a0=55d "
    'ppid=10 pid=11 auid=1000 uid=0 comm="cat" exe="/usr/bin/cat" key="identity"'
    '\x1dARCH=x86_64 SYSCALL=execve AUID="alice" UID="root"',
    'type=EXECVE msg=audit(1700000000.123:456): argc=2 a0="cat" a1=2F6574632F736861646F77',
    'type=CWD msg=audit(1700000000.123:456): cwd="/root"',
    'type=PATH msg=audit(1700000000.123:456): item=0 name="/usr/bin/cat" nametype=NORMAL',
    'type=PATH msg=audit(1700000000.123:456): item=1 name="/etc/shadow" nametype=NORMAL',
    "type=PROCTITLE msg=audit(1700000000.123:456): proctitle=636174002F6574632F736861646F77",
    "type=EOE msg=audit(1700000000.123:456): ",
]


def test_auditd_records_joined_into_one_event_plus_process_creation() -> None:
    n = Normaliser("logfile", default_host="web1")
    out: list[Event] = []
    for line in AUDIT:
        out += n.line(line, id_parts=(1,), received=NOW)
    assert len(out) == 2 and not n.pending
    audit, proc = out
    assert audit.logsource == LogSource("linux", "auditd")
    f = audit.fields
    assert f["type"] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PATH", "PROCTITLE"]
    assert (f["a0"], f["a1"], f["exe"], f["key"], f["SYSCALL"]) == (
        "cat",
        "/etc/shadow",
        "/usr/bin/cat",
        "identity",
        "execve",
    )
    assert f["name"] == ["/usr/bin/cat", "/etc/shadow"]
    assert f["proctitle"] == "cat /etc/shadow"
    assert f["user.name"] == "root" and f["host.name"] == "web1"
    assert audit.timestamp == datetime.fromtimestamp(1700000000.123, UTC)
    assert proc.logsource == LogSource("linux", "", "process_creation")
    assert (proc.fields["Image"], proc.fields["CommandLine"], proc.fields["CurrentDirectory"]) == (
        "/usr/bin/cat",
        "cat /etc/shadow",
        "/root",
    )
    assert proc.id != audit.id


def test_auditd_id_is_stable_across_transports() -> None:
    a = Normaliser("logfile", default_host="web1")
    b = Normaliser("syslog")
    ev_a = [e for line in AUDIT for e in a.line(line, id_parts=(1, 2))]
    ev_b = [
        e
        for line in AUDIT
        for e in b.line(f"<13>Nov 22 04:44:50 web1 audisp-syslog: {line}", id_parts=("x",))
    ]
    assert [e.id for e in ev_a] == [e.id for e in ev_b]


def test_auditd_parent_image_from_earlier_execve() -> None:
    n = Normaliser("t", default_host="h")
    lines = [
        'type=SYSCALL msg=audit(1.0:1): syscall=59 success=yes ppid=1 pid=100 exe="/usr/bin/bash"',
        'type=EXECVE msg=audit(1.0:1): argc=1 a0="bash"',
        'type=SYSCALL msg=audit(1.0:2): syscall=59 ppid=100 pid=101 exe="/usr/bin/curl"',
        'type=EXECVE msg=audit(1.0:2): argc=2 a0="curl" a1="http://x"',
    ]
    out = [e for line in lines for e in n.line(line, id_parts=())] + n.flush()
    procs = [e for e in out if e.logsource.category == "process_creation"]
    assert procs[1].fields["ParentImage"] == "/usr/bin/bash"
    assert "ParentImage" not in procs[0].fields


def test_auditd_user_record_nested_msg() -> None:
    e = one(
        "type=USER_LOGIN msg=audit(1700000001.000:99): pid=5 uid=0 auid=4294967295 ses=4294967295 "
        'msg=\'op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=10.0.0.9 '
        "terminal=ssh res=failed'"
    )
    f = e.fields
    assert (f["type"], f["acct"], f["addr"], f["event.outcome"]) == (
        "USER_LOGIN",
        "root",
        "10.0.0.9",
        "failure",
    )
    assert f["source.ip"] == "10.0.0.9"


def test_unparsed_line_kept_raw_and_counted() -> None:
    n = Normaliser("t")
    out = n.line("\x00 not a log line at all", id_parts=(1,), received=NOW)
    assert len(out) == 1 and out[0].parsed is False and out[0].raw
    assert n.stats["raw"] == 1


def test_unknown_program_keeps_syslog_logsource() -> None:
    e = one("<13>Nov 22 04:44:50 h1 myapp[3]: something happened")
    assert e.logsource == LogSource("linux", "syslog") and e.parsed


def test_event_id_stable_for_same_input() -> None:
    line = "Nov 22 04:44:50 web1 sshd[123]: Invalid user x from 10.0.0.1 port 1"
    a = Normaliser("logfile").line(line, id_parts=(5, 100))[0]
    b = Normaliser("logfile").line(line, id_parts=(5, 100))[0]
    c = Normaliser("logfile").line(line, id_parts=(5, 200))[0]
    assert a.id == b.id != c.id


def test_headerless_lines_read_as_default_program() -> None:
    n = Normaliser("logfile", default_host="lab-web1", default_program="sshd")
    (e,) = n.line("Invalid user bob from 10.77.0.1 port 40000", id_parts=(1,), received=NOW)
    assert e.logsource == LogSource("linux", "sshd") and e.parsed
    assert (e.fields["host.name"], e.fields["event.action"]) == ("lab-web1", "ssh_invalid_user")
    assert e.timestamp == NOW


def test_preauth_close_of_authenticating_user_is_a_failure() -> None:
    e = one(
        "Nov 22 05:00:00 h sshd[5]: Connection closed by authenticating user root 10.77.0.1 "
        "port 50720 [preauth]"
    )
    assert (e.fields["event.action"], e.fields["event.outcome"]) == (
        "ssh_auth_abandoned",
        "failure",
    )
    e = one(
        "Nov 22 05:00:00 h sshd[5]: Connection closed by invalid user x 10.77.0.1 port 1 [preauth]"
    )
    assert e.fields["event.action"] == "ssh_disconnect" and "event.outcome" not in e.fields

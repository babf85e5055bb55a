"""The contract with the SOC parsers: raw log lines -> dcops Normaliser -> soc_rules detections."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dcops.collectors.parsers import normalise
from dcops.detect import Engine

SOC_RULES = Path(__file__).resolve().parents[3] / "soc_rules"
AUDIT = [
    'type=SYSCALL msg=audit(1763632000.123:456): arch=c000003e syscall=257 success=yes exit=3 '
    'a0=ffffff9c a1=55d0 a2=241 a3=1b6 items=2 ppid=1000 pid=1300 auid=1000 uid=0 gid=0 '
    'euid=0 comm="useradd" exe="/usr/sbin/useradd" key="identity"',
    'type=PATH msg=audit(1763632000.123:456): item=0 name="/etc/" inode=1 nametype=PARENT',
    'type=PATH msg=audit(1763632000.123:456): item=1 name="/etc/shadow" inode=2 nametype=NORMAL',
    "type=EOE msg=audit(1763632000.123:456):",
]


def _events(lines: list[str]) -> list:  # type: ignore[type-arg]
    n = normalise.Normaliser("test", default_host="lgsp-app-01")
    t = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    out = []
    for i, line in enumerate(lines):
        out += n.line(line, id_parts=("t", i), received=t)
    return out + n.flush()


def test_parsed_lines_fire_soc_rules() -> None:
    lines = [
        f"Nov 20 10:00:{i:02d} lgsp-app-01 sshd[1234]: Failed password for admin from "
        f"203.0.113.7 port {50000 + i} ssh2"
        for i in range(10)
    ]
    lines += [
        "Nov 20 10:05:00 lgsp-app-01 sshd[1240]: Accepted password for root from 10.10.40.5 "
        "port 50200 ssh2",
        "Nov 20 10:06:00 lgsp-app-01 useradd[1300]: new user: name=backup2, UID=1002, "
        "GID=1002, home=/home/backup2, shell=/bin/bash, from=/dev/pts/0",
        *AUDIT,
    ]
    titles = {d.rule_title for d in Engine.from_dirs([SOC_RULES]).process(_events(lines))}
    assert {
        "SSH Brute Force From One Source",
        "SSH Login As Root",
        "New Local User Account Created",
        "Identity File Or SSH Server Configuration Changed",
    } <= titles

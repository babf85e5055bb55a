"""Numbered SOC events for the bus's failure tests and benches (deterministic, seeded).

Event `i` has id `w<i:07d>` and field `n` = i. The mix feeds the project's own rules: SSH
failures from a few addresses against a few hosts (brute-force and success-after-failures
correlations fire many times), successful logins (some as root: a single-event alert), and
cron noise no rule matches (`noise`: the share of noise, 0.35 by default: an attack-heavy stream for
the failure tests; a bench of a quiet province uses more). Timestamps advance `step` seconds per
event from `start`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from dcops.model.event import Event, LogSource

START = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
SSHD = LogSource("linux", "sshd")
CRON = LogSource("linux", "cron")
HOSTS = [f"lgsp-app-{k:02d}" for k in range(1, 11)]
ADDRESSES = [f"203.0.113.{k}" for k in range(1, 21)]


def event(i: int, *, seed: int = 14, step: float = 0.05, start: datetime = START,
          noise: float = 0.35) -> Event:
    """The i-th event of the workload (the same for the same i and seed)."""
    rnd = random.Random(seed * 1_000_003 + i)  # noqa: S311 - a reproducible workload, not secrets
    ts = start + timedelta(seconds=i * step)
    host = rnd.choice(HOSTS)
    roll = rnd.random() * 0.65 / max(1e-9, 1.0 - noise)  # below 0.65: SSH, else noise
    fields: dict[str, object] = {"n": i, "host.name": host, "site.name": "dc1"}
    if roll < 0.6:
        ip = rnd.choice(ADDRESSES)
        fields |= {"event.action": "ssh_login", "event.outcome": "failure",
                   "user.name": "admin", "source.ip": ip}
        raw = f"Failed password for admin from {ip} port 22 ssh2 #{i}"
        ls = SSHD
    elif roll < 0.65:
        ip = rnd.choice(ADDRESSES)
        user = "root" if rnd.random() < 0.2 else "ops"
        fields |= {"event.action": "ssh_login", "event.outcome": "success",
                   "user.name": user, "source.ip": ip}
        raw = f"Accepted password for {user} from {ip} port 22 ssh2 #{i}"
        ls = SSHD
    else:
        fields |= {"event.action": "cron_run", "message": f"(root) CMD (run-parts) #{i}"}
        raw = f"CRON[{i}]: (root) CMD (run-parts)"
        ls = CRON
    return Event(id=f"w{i:07d}", timestamp=ts, source="syslog", logsource=ls, fields=fields,
                 raw=raw)


def events(first: int, count: int, *, seed: int = 14, noise: float = 0.35) -> Iterator[Event]:
    """Events first .. first+count-1."""
    for i in range(first, first + count):
        yield event(i, seed=seed, noise=noise)

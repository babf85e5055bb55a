"""Turn the output of the host probes (hostscript) into facts with their evidence excerpts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

from dcops.compliance.collect.hostruntime import audit_rules, nft, pam_nullok, sysctl
from dcops.compliance.collect.pkiparse import pki, tls
from dcops.compliance.evidence import Evidence

WEAK_SSH = re.compile(r"(-cbc\b|hmac-sha1|hmac-md5|diffie-hellman-group1-|"
                      r"diffie-hellman-group14-sha1|arcfour|3des)")
DEFAULT_ACCOUNTS = {"debian", "ubuntu", "pi", "admin", "test", "guest", "user", "oracle"}
LOGIN_SHELL = re.compile(r"/(ba|z|k|da|fi|c|tc)?sh$")

Setter = Callable[[str, object, str], None]
Puts = Callable[[str], Setter]  # section name -> setter linking facts to that section's record


def _kv(text: str, sep: str = "=") -> dict[str, str]:
    out = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip().lower()] = v.strip()
    return out


def _lines(text: str, pattern: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if re.search(pattern, ln, re.I))


def sshd(out: str, put: Setter) -> None:
    """`sshd -T`: lower-case keyword, space, value."""
    conf: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        conf.setdefault(key.lower(), value.strip())
    if "permitrootlogin" not in conf:
        return  # sshd -T failed: no facts, the error stays in the record
    for key in ("permitrootlogin", "passwordauthentication", "permitemptypasswords"):
        put(f"sshd.{key}", conf.get(key, ""), _lines(out, f"^{key} "))
    put("sshd.maxauthtries", int(conf.get("maxauthtries", "6")), _lines(out, "^maxauthtries "))
    interval = int(conf.get("clientaliveinterval", "0"))
    count = int(conf.get("clientalivecountmax", "3"))
    put("sshd.idle_timeout_s", interval * max(count, 1) if interval else 0,
        _lines(out, "^clientalive"))
    algos = ",".join(conf.get(k, "") for k in ("ciphers", "macs", "kexalgorithms")).split(",")
    weak = sorted({a for a in algos if a and WEAK_SSH.search(a)})
    put("sshd.weak_algorithms", weak, _lines(out, "^(ciphers|macs|kexalgorithms) "))


def pam(sections: dict[str, str], put: Puts) -> None:
    """pam_pwquality / pam_faillock lines and their configuration files."""
    password, auth = sections.get("pam_password", ""), sections.get("pam_auth", "")
    pwq_line = _lines(password, r"^\s*password.*pam_pwquality")
    put("pam_password")("pam.pwquality", bool(pwq_line), pwq_line or "no pam_pwquality line")
    conf = _kv(sections.get("pwquality", ""))
    inline = {k.lower(): v for k, v in re.findall(r"(minlen|minclass)=(\d+)", pwq_line)}
    conf.update(inline)
    for key, default in (("minlen", "8"), ("minclass", "0")):
        # The module line wins over pwquality.conf; without the module nothing is enforced.
        where = "pam_password" if key in inline or not pwq_line else "pwquality"
        excerpt = (pwq_line if where == "pam_password" and pwq_line else
                   _lines(sections.get("pwquality", ""), key) or f"{key} default ({default})")
        put(where)(f"pam.{key}", int(conf.get(key, default)) if pwq_line else 0,
                   excerpt if pwq_line else "no pam_pwquality line")
    fl_line = _lines(auth, r"^\s*auth.*pam_faillock")
    put("pam_auth")("pam.faillock", bool(fl_line), fl_line or "no pam_faillock line")
    fconf = _kv(sections.get("faillock", ""))
    deny = re.search(r"deny=(\d+)", fl_line)
    value = int(deny.group(1)) if deny else int(fconf.get("deny", "3"))
    if not fl_line or deny:
        put("pam_auth")("pam.faillock_deny", value if fl_line else 999,
                        fl_line or "no pam_faillock line")
    else:
        put("faillock")("pam.faillock_deny", value,
                        _lines(sections.get("faillock", ""), "deny") or "deny default (3)")


def accounts(sections: dict[str, str], put: Puts) -> None:
    """passwd/shadow, useradd defaults and login.defs."""
    passwd = [ln.split(":") for ln in sections.get("passwd", "").splitlines() if ln.count(":") >= 6]
    uid0 = [p[0] for p in passwd if p[2] == "0" and p[0] != "root"]
    put("passwd")("accounts.uid0_extra", uid0,
                  "\n".join(":".join(p) for p in passwd if p[2] == "0"))
    shadow = dict(ln.split(":", 1) for ln in sections.get("shadow", "").splitlines() if ":" in ln)
    if shadow:
        empty = sorted(u for u, h in shadow.items() if h == "")
        put("shadow")("accounts.empty_password", empty,
                      ", ".join(empty) or "no empty password field")
    defaults = sorted(p[0] for p in passwd if p[0] in DEFAULT_ACCOUNTS and LOGIN_SHELL.search(p[6])
                      and shadow.get(p[0], "!")[:1] not in ("!", "*"))
    put("passwd")("accounts.default_accounts", defaults,
                  ", ".join(defaults) or "none with a usable login")
    useradd = _kv(sections.get("useradd", ""))
    if "inactive" in useradd:
        put("useradd")("accounts.useradd_inactive_days", int(useradd["inactive"]),
                       _lines(sections["useradd"], "INACTIVE"))
    if "inactive" in sections:
        inactive(sections["inactive"], put("inactive"))
    login = _kv(sections.get("login_defs", "").replace("\t", " "), " ")
    put("login_defs")("accounts.pass_max_days", int(login.get("pass_max_days", "99999")),
                      _lines(sections.get("login_defs", ""), "PASS_MAX_DAYS")
                      or "PASS_MAX_DAYS unset")


NO_INACTIVE = 99999  # like PASS_MAX_DAYS: "never disabled"


def inactive(out: str, put: Setter) -> None:
    """Existing accounts with a usable password: the shadow INACTIVE field (chage --inactive).

    Lines `user:pw-class:lastchg:max:inactive` (hostscript strips the hash). An account whose
    password can be used must be locked after N days of inactivity past expiry, and that needs
    both a maximum age and an inactive period; locked accounts (! or *) are skipped.
    """
    worst, offenders = 0, []
    for line in out.splitlines():
        cols = line.split(":")
        if len(cols) < 5 or cols[1][:1] in ("!", "*"):  # empty: usable with nullok
            continue
        expires = cols[3].isdigit() and int(cols[3]) < NO_INACTIVE
        days = int(cols[4]) if cols[4].isdigit() and expires else NO_INACTIVE
        worst = max(worst, days)
        if days == NO_INACTIVE:
            offenders.append(f"{cols[0]}: no inactive period" if expires
                             else f"{cols[0]}: password never expires (max {cols[3] or '-'})")
        else:
            offenders.append(f"{cols[0]}: inactive {days} days")
    put("accounts.inactive_days_max", worst,
        "\n".join(offenders) or "no account with a usable password")


def audit(sections: dict[str, str], put: Puts) -> None:
    """auditd process and kernel status (`auditctl -s`), and its loaded rules (hostruntime).

    Running means the process exists and, when the kernel answered `auditctl -s`, the kernel
    names a non-zero auditd pid (a killed or stopped daemon leaves `pid 0`).
    """
    status = sections.get("auditd", "")
    lines = status.strip().splitlines()
    pid = re.search(r"^pid (\d+)$", status, re.M)
    running = bool(lines) and lines[0] == "running" and (pid is None or pid.group(1) != "0")
    put("auditd")("auditd.running", running,
                  "\n".join([*lines[:1], *(ln for ln in lines[1:]
                                           if re.match(r"(enabled|pid|lost|Error) ", ln))]))
    if "audit_rules" in sections:
        audit_rules(sections["audit_rules"], put("audit_rules"))


def chrony(out: str, put: Setter) -> None:
    """pgrep chronyd + `chronyc -n tracking`."""
    put("time.chrony_running", out.startswith("running"), out.splitlines()[0] if out else "")
    m = re.search(r"^System time\s*:\s*([\d.]+) seconds", out, re.M)
    status = re.search(r"^Leap status\s*:\s*(.+)$", out, re.M)
    if status:
        synced = "not synchronised" not in status.group(1).lower()
        put("time.synced", synced, _lines(out, "^(Reference ID|Leap status)"))
        if m and synced:
            put("time.offset_s", float(m.group(1)), _lines(out, "^(System time|Leap status)"))


def ports(out: str, put: Setter) -> None:
    """`ss -H -tulnp`: non-loopback listening sockets as proto/port.

    A port in the kernel's ephemeral range (`ip_local_port_range`, after `--- ephemeral`) is one
    the kernel picked, different at every start: it is named by its process instead,
    `udp/ephemeral:snmpd`, so a declaration can allow it (the number stays in the excerpt).
    """
    listing, _, tail = out.partition("--- ephemeral")
    bounds = [int(v) for v in tail.split() if v.isdigit()]
    low, high = (bounds[0], bounds[1]) if len(bounds) == 2 else (0, -1)
    seen, shown = set(), []
    for line in listing.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        proto, local = cols[0], cols[4]
        addr, _, port = local.rpartition(":")
        if addr.startswith(("127.", "[::1]", "::1", "[::ffff:127.")):
            continue
        process = re.search(r'users:\(\("([^"]+)"', line)
        owner = process.group(1) if process else "?"
        shown.append(f"{proto} {local} {owner}")
        if port.isdigit() and low <= int(port) <= high:
            port = f"ephemeral:{owner}"
        seen.add(f"{proto}/{port}")
    put("ports.listening", sorted(seen, key=lambda p: (p[:3], int(p[4:]) if p[4:].isdigit()
                                                      else 1 << 20, p)),
        "\n".join([*shown, f"ephemeral range {low}-{high}" if bounds else
                    "ephemeral range not read"]))


def updates(out: str, put: Setter) -> None:
    """`apt-get -s upgrade` Inst lines from a -security origin; APT::Periodic settings."""
    inst, _, periodic = out.partition("--- periodic")
    security = [ln for ln in inst.splitlines() if ln.startswith("Inst") and "-security" in ln]
    put("updates.security_pending", len(security), "\n".join(security[:10]) or "none pending")
    auto = re.search(r'APT::Periodic::Unattended-Upgrade "(\d+)"', periodic)
    put("updates.automatic", bool(auto and auto.group(1) != "0"),
        _lines(periodic, "Unattended") or "APT::Periodic::Unattended-Upgrade unset")


def _seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(s|min|h|day|d|week|w|month|m|year|y)?", value.strip())
    if not m:
        return 0
    unit = {"s": 1, "min": 60, "h": 3600, "day": 86400, "d": 86400, "week": 604800,
            "w": 604800, "month": 2629800, "m": 2629800, "year": 31557600, "y": 31557600}
    return int(m.group(1)) * unit.get(m.group(2) or "s", 1)


def logging(sections: dict[str, str], put: Puts) -> None:
    """Retention: the longer of journald MaxRetentionSec (persistent) and logrotate of syslog."""
    journald = _kv(sections.get("journald", ""))
    jdays = 0
    if journald.get("storage", "auto") in ("persistent", "auto"):
        jdays = _seconds(journald.get("maxretentionsec", "0")) // 86400
    rot = sections.get("logrotate", "")
    count = re.search(r"^\s*rotate\s+(\d+)", rot, re.M)
    period = 7 if re.search(r"^\s*weekly", rot, re.M) else 30 if re.search(
        r"^\s*monthly", rot, re.M) else 1
    rdays = int(count.group(1)) * period if count else 0
    # The record of whichever source gave the retention (journald wins a tie).
    if rdays > jdays:
        put("logrotate")("logging.retention_days", rdays,
                         _lines(rot, "rotate|daily|weekly|monthly"))
    else:
        put("journald")("logging.retention_days", jdays,
                        _lines(sections.get("journald", ""), "Storage|MaxRetention")
                        or "no retention configured")
    rsyslog = sections.get("rsyslog", "")
    forward = _lines(rsyslog, r'(omfwd|@@?[\w.\[\]:-]+)')
    put("rsyslog")("logging.forwarding", rsyslog.startswith("running") and bool(forward),
                   (rsyslog.splitlines()[0] if rsyslog else "") + "\n" + forward)


def protection(sections: dict[str, str], puts: Puts) -> None:
    """AIDE and ClamAV."""
    aide, put = sections.get("aide", ""), puts("aide")
    files, marked, scheduled = aide.partition("--- scheduled")
    put("fim.installed", "/aide" in files, files.splitlines()[0] if files else "aide not found")
    put("fim.database", bool(re.search(r"aide\.db(\.gz)?$", files, re.M)), files[-200:])
    jobs = [ln.strip() for ln in scheduled.splitlines() if ln.strip()]
    put("fim.scheduled", bool(jobs), "\n".join(jobs)[:300] or (
        "no active AIDE timer, no cron.daily AIDE script" if marked else "not read"))
    clam, put = sections.get("clamav", ""), puts("clamav")
    put("malware.installed", "clamscan" in clam or "clamd" in clam, clam[:200])
    now = re.search(r"^now (\d+)", clam, re.M)
    dbs = [int(t) for t in re.findall(r"^db \S+ (\d+)", clam, re.M)]
    if now and dbs:
        put("malware.signature_age_days", round((int(now.group(1)) - max(dbs)) / 86400, 2),
            _lines(clam, "^db "))


def sudo(out: str, put: Setter) -> None:
    """sudoers Defaults logfile."""
    m = re.search(r'logfile\s*=\s*"?([^",\s]+)', out)
    put("sudo.logfile", m.group(1) if m else "", _lines(out, "logfile") or "no logfile")


def restic(out: str, put: Setter, now: datetime) -> None:
    """`dcops-restic snapshots --json --latest 1` on the host (backup role), when present."""
    text = out.strip()
    if not text.startswith("["):
        return  # no backup role on this host, or restic failed: the record keeps the error
    snaps = json.loads(text)
    put("backup.encrypted", True, "restic repository (always encrypted)")
    if not snaps:
        put("backup.last_snapshot_age_h", None, "never: no snapshot in the repository")
        return
    newest = max(snaps, key=lambda s: s["time"])
    stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", newest["time"])
                                   .replace("Z", "+00:00"))
    put("backup.last_snapshot_age_h", round((now - stamp).total_seconds() / 3600, 2),
        f"snapshot {newest.get('short_id', '')} at {newest['time']}")


def parse_host(ev: Evidence, host: str, records: dict[str, str],
               sections: dict[str, tuple[str, int]], now: datetime | None = None) -> None:
    """Derive every fact of `host` from its sections; `records` maps section -> record id."""
    moment = now or datetime.now(UTC)
    text = {k: v[0] for k, v in sections.items()}

    def setter(section: str) -> Setter:
        def put(name: str, value: object, excerpt: str) -> None:
            ev.fact(host, name, value, records.get(section, ""), excerpt)
        return put

    handlers: list[tuple[tuple[str, ...], Callable[[], None]]] = [
        (("sshd",), lambda: sshd(text.get("sshd", ""), setter("sshd"))),
        (("pam_password", "pam_auth", "pwquality", "faillock"), lambda: pam(text, setter)),
        (("pam_unix",), lambda: pam_nullok(text.get("pam_unix", ""), setter("pam_unix"))),
        (("passwd", "shadow", "useradd", "inactive", "login_defs"),
         lambda: accounts(text, setter)),
        (("auditd", "audit_rules"), lambda: audit(text, setter)),
        (("chrony",), lambda: chrony(text.get("chrony", ""), setter("chrony"))),
        (("nft",), lambda: nft(text.get("nft", ""), setter("nft"))),
        (("ports",), lambda: ports(text.get("ports", ""), setter("ports"))),
        (("updates",), lambda: updates(text.get("updates", ""), setter("updates"))),
        (("journald", "logrotate", "rsyslog"), lambda: logging(text, setter)),
        (("aide", "clamav"), lambda: protection(text, setter)),
        (("sysctl",), lambda: sysctl(text.get("sysctl", ""), setter("sysctl"))),
        (("sudo",), lambda: sudo(text.get("sudo", ""), setter("sudo"))),
        (("pki",), lambda: pki(text.get("pki", ""), setter("pki"), moment)),
        (("restic",), lambda: restic(text.get("restic", ""), setter("restic"), moment)),
        (("tls",), lambda: tls(text.get("tls", ""), setter("tls"), moment)),
    ]
    for names, handler in handlers:
        if not any(n in sections for n in names):
            continue
        try:
            handler()
        except (ValueError, KeyError, IndexError) as exc:
            ev.notes.append(f"{host}: could not parse {'/'.join(names)}: {exc}")

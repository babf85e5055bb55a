"""Audit sidecar: one lab host's own auditd and auditctl, run where the kernel accepts them.

The kernel takes audit control (AUDIT_SET, AUDIT_ADD_RULE, auditd registration) only from the
initial user and pid namespaces, so auditd inside a lab host (its own pid namespace) is refused.
The sidecar runs the host's /sbin/auditd and /sbin/auditctl with nsenter in the host's mount,
UTS, IPC and network namespaces and root (its configuration, rules, log and hostname) but in this
machine's pid namespace. Only one audit daemon can be registered machine-wide, so one sidecar
runs at a time; its record (state_root()/audit-sidecar.json) lets any process undo it.

Safety: only rule lines (-w, -a, -A) are ever loaded. Control lines (-e, -f, -b, -D, -r,
--loginuid-immutable, ...) are dropped, so `-e 2` (rules immutable until reboot) and `-f 2`
(panic on failure) never reach this machine's kernel. `down` deletes every rule (auditctl -D),
stops the daemon, restores the kernel's enabled flag and checks that no rule is left.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dcops.errors import LabError
from dcops.lab import procs
from dcops.lab.image import file_lock
from dcops.lab.paths import state_root

RULE_OPTIONS = ("-w", "-a", "-A")
# Options that change the kernel's audit configuration rather than add a rule.
CONTROL_OPTIONS = frozenset({
    "-e", "--enable", "-f", "--failure", "-b", "--backlog", "-D", "--delete-all", "-r",
    "--rate", "-R", "-s", "-l", "-m", "-t", "-c", "-i", "-d", "-W", "--loginuid-immutable",
    "--backlog_wait_time", "--reset-lost", "--reset_backlog_wait_time_actual", "--signal",
})
HOST_RULES = "/etc/audit/audit.rules"
HOST_LOG = "/var/log/audit/audit.log"
# Kernel queue while the sidecar runs (the kernel's default 64 makes busy processes wait for
# auditd); the previous value is restored by `down`.
BACKLOG_LIMIT = 8192


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules the sidecar may load, and the lines it refused to (with their line numbers)."""

    source: str
    rules: list[tuple[int, str]]
    dropped: list[tuple[int, str]]


def sanitize(text: str, source: str = "<rules>") -> RuleSet:
    """Keep rule lines only; drop control lines such as `-e 2`, `-f 2`, `-D`, `-b 8192`."""
    rules: list[tuple[int, str]] = []
    dropped: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise LabError(f"{source}:{number}: cannot parse audit rule {line!r}: {exc}") from exc
        control = any(t in CONTROL_OPTIONS or t.split("=", 1)[0] in CONTROL_OPTIONS
                      for t in tokens)
        if tokens[0] in RULE_OPTIONS and not control:
            rules.append((number, line))
        else:
            dropped.append((number, line))
    return RuleSet(source, rules, dropped)


@dataclass(slots=True)
class SidecarRecord:
    """The running sidecar: whose it is, its daemon, and what to restore."""

    lab: str
    host: str
    leader: int  # the host's PID 1 (nsenter target)
    merged: str  # the host's root as seen from this machine
    pid: int = 0  # auditd, in this machine's pid namespace
    prior_enabled: int = 0
    prior_backlog_limit: int = 0
    rules: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        """The host's audit.log as seen from this machine."""
        return Path(self.merged) / HOST_LOG.lstrip("/")


def _record_path() -> Path:
    return state_root() / "audit-sidecar.json"


def _lock_path() -> Path:
    return state_root() / ".audit-sidecar.lock"


def current() -> SidecarRecord | None:
    """The recorded sidecar of this machine, or None."""
    path = _record_path()
    if not path.is_file():
        return None
    return SidecarRecord(**json.loads(path.read_text()))


def _save(record: SidecarRecord) -> None:
    path = _record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    tmp.replace(path)


def _context(leader: int, merged: str) -> list[str]:
    """argv prefix: the host's mount/UTS/IPC/net namespaces and root, this machine's pid ns."""
    if procs.alive(leader):
        return ["nsenter", "-t", str(leader), "-m", "-u", "-i", "-n", "-r", "-w"]
    if Path(merged, "usr/sbin/auditctl").exists():  # host stopped, overlay still mounted
        return ["chroot", merged]
    raise LabError(f"audit sidecar: neither the host (pid {leader}) nor its root {merged} is "
                   "left to run auditctl from")


def auditctl(leader: int, merged: str, *args: str,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the host's /sbin/auditctl in the sidecar context."""
    proc = subprocess.run([*_context(leader, merged), "/sbin/auditctl", *args],
                          capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"auditctl {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def kernel_status(leader: int, merged: str) -> dict[str, str]:
    """`auditctl -s` as a dict (enabled, failure, pid, backlog_limit, ...)."""
    out = auditctl(leader, merged, "-s").stdout
    status: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        status[key] = value.strip()
    return status


def loaded_rules(leader: int, merged: str) -> list[str]:
    """`auditctl -l` lines ([] for "No rules")."""
    out = auditctl(leader, merged, "-l").stdout
    return [ln for ln in out.splitlines() if ln.strip() and ln.strip() != "No rules"]


def _wait_registered(leader: int, merged: str, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.alive(pid):
            break
        if kernel_status(leader, merged).get("pid") == str(pid):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace").strip().splitlines()[-10:] if log.exists() else []
    raise LabError(f"audit sidecar: auditd (pid {pid}) did not register with the kernel "
                   f"(see {log}):\n" + "\n".join(tail))


def _refuse_busy(leader: int, merged: str) -> dict[str, str]:
    other = current()
    if other is not None:
        raise LabError(f"an audit sidecar already runs for {other.host} of lab {other.lab} "
                       f"(auditd pid {other.pid}); only one audit daemon can be registered "
                       f"per machine: `dcops lab audit down --name {other.lab}` first")
    status = kernel_status(leader, merged)
    if status.get("enabled") == "2":
        raise LabError("this machine's audit rules are immutable (enabled 2) until reboot: "
                       "no sidecar can load rules")
    if status.get("pid", "0") != "0":
        raise LabError(f"an audit daemon (pid {status['pid']}) is already registered with this "
                       "machine's kernel; only one can be: stop it first")
    left = loaded_rules(leader, merged)
    if left:
        raise LabError(f"{len(left)} audit rules are already loaded in this machine's kernel "
                       f"(first: {left[0]}); they are not a sidecar's: delete them "
                       "(auditctl -D) first")
    return status


def up(lab: str, host: str, leader: int, merged: str, rules_text: str | None, source: str,
       log: Path) -> SidecarRecord:
    """Start the host's auditd in the sidecar context and load its (sanitised) rules."""
    for tool in ("auditd", "auditctl"):
        if not Path(merged, "usr/sbin", tool).exists():  # /sbin -> usr/sbin
            raise LabError(f"lab {lab}: host {host} has no /sbin/{tool}: install auditd on it "
                           "first (the baseline role, or apt-get install auditd)")
    state_root().mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path()):
        if rules_text is None:
            rules_path = Path(merged, HOST_RULES.lstrip("/"))
            if not rules_path.is_file():
                raise LabError(f"lab {lab}: host {host} has no {HOST_RULES} "
                               "(augenrules writes it; or pass --rules FILE)")
            rules_text, source = rules_path.read_text(), f"{host}:{HOST_RULES}"
        ruleset = sanitize(rules_text, source)
        status = _refuse_busy(leader, merged)
        record = SidecarRecord(lab, host, leader, merged,
                               prior_enabled=int(status.get("enabled", "0")),
                               prior_backlog_limit=int(status.get("backlog_limit", "0")),
                               dropped=[f"{source}:{n}: {line}" for n, line in ruleset.dropped])
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen([*_context(leader, merged), "/sbin/auditd", "-n"],
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        record.pid = proc.pid
        _save(record)  # from here on `down` can undo whatever follows
        try:
            _wait_registered(leader, merged, proc.pid, log, timeout=15)
            if record.prior_backlog_limit < BACKLOG_LIMIT:
                auditctl(leader, merged, "-b", str(BACKLOG_LIMIT))
            for number, line in ruleset.rules:
                done = auditctl(leader, merged, *shlex.split(line), check=False)
                if done.returncode != 0:
                    raise LabError(f"{source}:{number}: auditctl refused {line!r}: "
                                   f"{(done.stderr or done.stdout).strip()}")
                record.rules.append(line)
            _save(record)
        except BaseException:
            _down_locked(record)
            raise
        return record


def _down_locked(record: SidecarRecord) -> None:
    errors: list[str] = []
    try:
        auditctl(record.leader, record.merged, "-D")
    except LabError as exc:
        errors.append(str(exc))
    if procs.alive(record.pid) and any("auditd" in a for a in procs.cmdline(record.pid)[:1]):
        procs.stop([record.pid], graceful=signal.SIGTERM, timeout=10)
    procs.reap(record.pid)
    try:
        auditctl(record.leader, record.merged, "-e", str(min(record.prior_enabled, 1)))
        if record.prior_backlog_limit:
            auditctl(record.leader, record.merged, "-b", str(record.prior_backlog_limit))
        left = loaded_rules(record.leader, record.merged)
        if left:
            errors.append(f"{len(left)} audit rules still loaded after auditctl -D: {left[0]}")
        pid = kernel_status(record.leader, record.merged).get("pid", "0")
        if pid != "0":
            errors.append(f"an audit daemon (pid {pid}) is still registered")
    except LabError as exc:
        errors.append(str(exc))
    if errors:
        raise LabError("audit sidecar cleanup incomplete: " + "; ".join(errors))
    with contextlib.suppress(FileNotFoundError):
        _record_path().unlink()


def down(lab: str | None = None, host: str | None = None) -> SidecarRecord | None:
    """Stop the machine's sidecar (only `lab`'s / `host`'s when given); returns what stopped."""
    if not _record_path().is_file():
        return None
    with file_lock(_lock_path()):
        record = current()
        if record is None or lab not in (None, record.lab) or host not in (None, record.host):
            return None
        _down_locked(record)
        return record


def alive(record: SidecarRecord) -> bool:
    """Is the recorded auditd still running?"""
    return procs.alive(record.pid) and any("auditd" in a for a in procs.cmdline(record.pid)[:1])


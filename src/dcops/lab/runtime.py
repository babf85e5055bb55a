"""Start and stop one lab host: chroot + sshd as PID 1, or systemd-nspawn with real systemd."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from dcops.errors import LabError
from dcops.lab import procs

MODES = ("chroot", "systemd")

# PID 1 of a chroot-mode host: mount the API filesystems inside the host's private mount
# namespace (they vanish with it), then become sshd. Runs inside the new pid/mount/uts/ipc
# namespaces created by `unshare --fork`, already in the host's network namespace.
_CHROOT_INIT = r"""
set -eu
M={merged}
mount -t proc proc "$M/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$M/sys"
mount -t tmpfs -o mode=755,size=16m,nosuid tmpfs "$M/dev"
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r n ma mi <<EOF_
$d
EOF_
  mknod -m 666 "$M/dev/$n" c "$ma" "$mi"
done
mkdir -p "$M/dev/pts" "$M/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$M/dev/pts"
ln -s pts/ptmx "$M/dev/ptmx"
ln -s /proc/self/fd "$M/dev/fd"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/dev/shm"
mount -t tmpfs -o mode=755,size=64m,nosuid,nodev tmpfs "$M/run"
mkdir -p "$M/run/sshd" "$M/run/lock"
hostname {hostname}
exec chroot "$M" /usr/sbin/sshd -D -e
"""


def _pidns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _wait_leader(launcher: int, log: Path, timeout: float = 20.0) -> int:
    """The launcher's child that runs in a new pid namespace: the host's PID 1."""
    mine = _pidns(os.getpid())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in procs.children(launcher):
            ns = _pidns(child)
            if ns and ns != mine:
                return child
            for grandchild in procs.children(child):
                gns = _pidns(grandchild)
                if gns and gns != mine:
                    return grandchild
        if not procs.alive(launcher):
            break
        time.sleep(0.02)
    procs.stop([launcher], graceful=None)
    tail = log.read_text(errors="replace").strip().splitlines()[-10:] if log.exists() else []
    raise LabError(f"host did not start (see {log}):\n" + "\n".join(tail))


def start(mode: str, *, hostname: str, machine: str, netns_path: str, merged: Path,
          log: Path) -> tuple[int, int]:
    """Start a host; returns (launcher pid, pid of the host's PID 1 as seen from here)."""
    if mode == "chroot":
        script = _CHROOT_INIT.format(merged=shlex.quote(str(merged)), hostname=hostname)
        argv = ["nsenter", f"--net={netns_path}", "unshare", "--mount", "--uts", "--ipc",
                "--pid", "--fork", "--kill-child", "--propagation", "private",
                "/bin/sh", "-c", script]
        env = dict(os.environ)
    elif mode == "systemd":
        argv = ["systemd-nspawn", "--quiet", "--boot", f"--directory={merged}",
                f"--machine={machine}", f"--hostname={hostname}",
                f"--network-namespace-path={netns_path}", "--resolv-conf=off",
                "--timezone=off", "--register=no", "--keep-unit", "--link-journal=no",
                "--capability=CAP_NET_ADMIN", "--console=passive"]
        env = dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network")
    else:
        raise LabError(f"--mode {mode}: expected one of {', '.join(MODES)}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)
    return proc.pid, _wait_leader(proc.pid, log)


def _launcher_ok(mode: str, launcher: int) -> bool:
    """Is `launcher` still our unshare/systemd-nspawn (not a recycled PID)?"""
    needle = "systemd-nspawn" if mode == "systemd" else "unshare"
    return procs.alive(launcher) and any(needle in arg for arg in procs.cmdline(launcher)[:1])


def running(mode: str, launcher: int, leader: int) -> bool:
    """True when the host's launcher and its PID 1 (a child of the launcher) are alive."""
    return _launcher_ok(mode, launcher) and procs.alive(leader) and procs.ppid(leader) == launcher


def request_stop(mode: str, launcher: int) -> None:
    """Ask a systemd host to power off (one SIGTERM to nspawn), without waiting."""
    if mode == "systemd" and _launcher_ok(mode, launcher):
        procs.signal_pid(launcher, signal.SIGTERM)


def stop(mode: str, launcher: int, leader: int, *, requested: bool = False) -> None:
    """Stop a host: systemd powers off cleanly (SIGTERM to nspawn); chroot hosts are killed.

    `unshare --fork` ignores SIGTERM, so the chroot host's PID 1 is killed directly, which takes
    every process of its pid namespace with it; the launcher then exits on its own. PIDs are
    checked first, so a state file that outlived a reboot never makes us kill a stranger.
    """
    if not _launcher_ok(mode, launcher):
        return
    leader_ok = procs.alive(leader) and procs.ppid(leader) == launcher
    if mode == "systemd":
        # a second SIGTERM would make nspawn skip the clean shutdown: send one, then wait
        if not requested:
            procs.signal_pid(launcher, signal.SIGTERM)
        procs.wait_gone([launcher], 15.0)
    if leader_ok:
        procs.stop([leader], graceful=None)
    procs.stop([launcher], graceful=None)

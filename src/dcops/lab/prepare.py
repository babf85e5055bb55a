"""Prepare a host's root before it starts: overlay mount, names, SSH keys, authorized key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dcops.errors import LabError
from dcops.lab.hosts import CONTROLLER_ADDRESS, LabHost
from dcops.lab.sshconf import LAB_USER


def mounted_paths() -> list[str]:
    """Mount points of this mount namespace (octal escapes of /proc/mounts decoded)."""
    paths = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        raw = line.split()[1]
        paths.append(raw.encode().decode("unicode_escape"))
    return paths


def mount_overlay(lower: Path, host_dir: Path) -> Path:
    """Mount (once) an overlay of the base root for one host; returns the merged root."""
    upper, work, merged = host_dir / "upper", host_dir / "work", host_dir / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True, exist_ok=True)
    if str(merged) not in mounted_paths():
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabError(f"mount overlay on {merged}: {proc.stderr.strip()}")
    return merged


def unmount_under(root: Path) -> None:
    """Unmount everything mounted at or below `root`, deepest first (lazily if busy)."""
    prefix = str(root).rstrip("/") + "/"
    for path in sorted((p for p in mounted_paths() if p.startswith(prefix)), reverse=True):
        if subprocess.run(["umount", path], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True, check=False)


def _ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"{root}/etc/passwd: user {user!r} missing from the base root")


def hosts_file(hosts: list[LabHost], me: LabHost) -> str:
    """/etc/hosts of a lab host: the controller and every lab host (no resolver in the lab)."""
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{me.name}",
             f"{CONTROLLER_ADDRESS}\tlab-ctl controller soc-collector apt-repo"]
    lines += [f"{h.address}\t{h.name}" for h in hosts]
    lines += ["::1\tlocalhost ip6-localhost ip6-loopback"]
    return "\n".join(lines) + "\n"


def stale_apt_lists(merged: Path, upper: Path) -> None:
    """Date a fresh host's empty apt lists to 1970 so `apt: cache_valid_time` updates them.

    Ansible's apt module judges the cache by the mtime of /var/lib/apt/lists; the base image's
    is its build time, which would make a fresh host look freshly updated with no lists at all.
    """
    if not (upper / "var/lib/apt/lists").exists():
        lists = merged / "var/lib/apt/lists"
        if lists.is_dir():
            os.utime(lists, (0, 0))


def write_names(merged: Path, host: LabHost, hosts: list[LabHost]) -> None:
    """Hostname and /etc/hosts (rewritten on every `up` so growing the lab updates them)."""
    (merged / "etc/hostname").write_text(host.name + "\n")
    (merged / "etc/hosts").write_text(hosts_file(hosts, host))


def host_key(merged: Path, host: LabHost) -> str:
    """Generate the host's own ed25519 key once; returns the public key line."""
    key = merged / "etc/ssh/ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}",
                        "-f", str(key)], check=True, capture_output=True)
    return key.with_name(key.name + ".pub").read_text().split(" root@")[0].strip()


def authorize(merged: Path, public_key: str) -> None:
    """Install the lab key for the `ansible` user (0700 .ssh, 0600 authorized_keys)."""
    uid, gid = _ids(merged, LAB_USER)
    ssh_dir = merged / "home" / LAB_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(public_key.strip() + "\n")
    auth.chmod(0o600)
    for path in (ssh_dir, auth):
        os.chown(path, uid, gid)


def ensure_user_key(key: Path, comment: str) -> str:
    """The lab's client key pair (ed25519, created once per lab); returns the public key."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                        "-f", str(key)], check=True, capture_output=True)
    return key.with_name(key.name + ".pub").read_text()

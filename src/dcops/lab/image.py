"""Build the lab's base root once with debootstrap and cache it outside the repository."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dcops.errors import LabError
from dcops.lab.mirror import AptSource, debian_mirror, read_sources
from dcops.lab.paths import cache_root
from dcops.lab.recipe import Recipe

READY = ".dcops-ready"
REPO_PORT = 3142
CONTROLLER = "10.77.0.1"
LAB_USER = "ansible"

# Units that cannot work in a container without devices or a kernel to tune: masked so that
# `systemctl is-system-running` reports the state of what the roles install, not of the box.
_MASKED_UNITS = (
    "systemd-remount-fs.service", "getty@.service", "serial-getty@.service",
    "console-getty.service", "systemd-udevd.service", "systemd-udev-trigger.service",
    "systemd-modules-load.service", "sys-kernel-config.mount", "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount", "systemd-sysctl.service", "apt-daily.timer",
    "apt-daily-upgrade.timer",
)

Log = Callable[[str], None]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (several engineers may build or start labs at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def image_dir(recipe: Recipe | None = None) -> Path:
    """The cache directory of the image built from `recipe`."""
    return cache_root() / (recipe or Recipe()).image_name


def rootfs(recipe: Recipe | None = None) -> Path:
    """The root filesystem of the image (lower layer of every host's overlay)."""
    return image_dir(recipe) / "rootfs"


def is_built(recipe: Recipe | None = None) -> bool:
    """True when the image for `recipe` is complete in the cache."""
    return (image_dir(recipe) / READY).is_file()


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise LabError(f"{what} failed (exit {proc.returncode}): {' '.join(argv[:4])} ...\n"
                       + "\n".join(tail))


def ensure_image(recipe: Recipe | None = None, *, force: bool = False,
                 log: Log = lambda _msg: None) -> Path:
    """Return the cached base root for `recipe`, building it first when missing or forced."""
    recipe = recipe or Recipe()
    target = image_dir(recipe)
    with file_lock(cache_root() / f"{recipe.image_name}.lock"):
        if is_built(recipe) and not force:
            return target / "rootfs"
        if shutil.which("debootstrap") is None:
            raise LabError("debootstrap is not installed (apt-get install debootstrap)")
        mirror = debian_mirror(read_sources(), recipe.suite)
        work = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log(f"debootstrap {recipe.suite} ({recipe.variant}) from {mirror.uri} into {work}")
        argv = ["debootstrap", f"--variant={recipe.variant}", "--components=main",
                f"--include={','.join(recipe.packages)}"]
        if mirror.signed_by:
            argv.append(f"--keyring={mirror.signed_by}")
        _run([*argv, recipe.suite, str(work / "rootfs"), mirror.uri], "debootstrap")
        log("customising the base root")
        customise(work / "rootfs", mirror)
        (work / READY).write_text(recipe.digest() + "\n")
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
        return target / "rootfs"


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def customise(root: Path, mirror: AptSource) -> None:
    """Make a debootstrapped root a lab host: local apt repo only, lab user, no shared host keys."""
    del mirror  # the hosts never see the mirror: they install from the lab's own repository
    _write(root, "/etc/apt/sources.list",
           "# dcops lab: packages come only from the lab's repository on the controller\n"
           f"deb [trusted=yes] http://{CONTROLLER}:{REPO_PORT}/ ./\n")
    _write(root, "/etc/apt/apt.conf.d/90dcops-lab",
           'APT::Install-Recommends "false";\nAcquire::Retries "2";\n')
    for extra in (root / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    _write(root, "/etc/resolv.conf", "# dcops lab hosts resolve names from /etc/hosts only\n")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root, "/etc/ssh/sshd_config.d/00-dcops-lab.conf",
           "# dcops lab: key-only logins, no DNS lookups (the lab has no resolver)\n"
           "UseDNS no\nPasswordAuthentication no\nHostKey /etc/ssh/ssh_host_ed25519_key\n")
    _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash",
          "--groups", "sudo", LAB_USER], "useradd ansible")
    _write(root, f"/etc/sudoers.d/{LAB_USER}", f"{LAB_USER} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    _run(["chroot", str(root), "visudo", "-c"], "visudo -c")
    for unit in _MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/dev/null")
    _write(root, "/etc/machine-id", "")
    _run(["chroot", str(root), "apt-get", "clean"], "apt-get clean")
    lists = root / "var/lib/apt/lists"
    for entry in lists.glob("*"):
        if entry.is_file():
            entry.unlink()


def prune(keep: set[str], *, log: Log = lambda _msg: None) -> list[Path]:
    """Remove cached images and repositories whose name is not in `keep` (base-<hash> names)."""
    removed: list[Path] = []
    for parent in (cache_root(), cache_root() / "repo"):
        if not parent.is_dir():
            continue
        for entry in sorted(parent.glob("base-*")):
            name = entry.name.split(".tmp-")[0]
            if entry.is_dir() and name not in keep:
                with file_lock(cache_root() / f"{name}.lock"):
                    log(f"removing {entry}")
                    shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed

"""The lab's own apt repository: packages (with dependencies) fetched once, served in the lab.

Dependencies are resolved against the base root's dpkg status with a private apt state
(lists and archives under the cache), so this machine's own apt state is never touched.
"""

from __future__ import annotations

import email.utils
import hashlib
import subprocess
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from dcops.errors import LabError
from dcops.lab.image import Log, file_lock
from dcops.lab.mirror import debian_sources, read_sources
from dcops.lab.paths import cache_root
from dcops.lab.recipe import SUITE

PACKAGES_TXT = "src/dcops/lab/packages.txt"

# Bump when the repository layout or index files change (forces a re-index).
REPO_FORMAT = 2


def package_list(text: str | None = None) -> list[str]:
    """The package names of packages.txt (comments and blank lines ignored), in file order."""
    if text is None:
        text = resources.files("dcops.lab").joinpath("packages.txt").read_text(encoding="utf-8")
    names: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and line not in names:
            names.append(line)
    return names


def repo_dir(base_name: str) -> Path:
    """The repository for one base image (its dependencies depend on what the base holds)."""
    return cache_root() / "repo" / base_name


def _apt(state: Path, base: Path, archives: Path, *args: str) -> None:
    opts = [
        f"-oDir::Etc::SourceList={state / 'sources.list'}",
        f"-oDir::Etc::SourceParts={state / 'sources.list.d'}",
        f"-oDir::State::Lists={state / 'lists'}",
        f"-oDir::State::status={base / 'var/lib/dpkg/status'}",
        f"-oDir::State::extended_states={state / 'extended_states'}",
        f"-oDir::Cache={state / 'cache'}",
        f"-oDir::Cache::archives={archives}",
        "-oDebug::NoLocking=1",
        "-oAPT::Install-Recommends=false",
        "-oAPT::Get::AllowUnauthenticated=false",
        "-oAcquire::Languages=none",
    ]
    proc = subprocess.run(["apt-get", "-q", "-y", *opts, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        raise LabError(f"{PACKAGES_TXT}: apt-get {args[0]} for the lab repository failed "
                       "(is every package in the list a Debian bookworm package?):\n"
                       + "\n".join(tail))


def write_release(repo: Path) -> None:
    """A Release file with the index hashes, so apt treats the flat repository as complete."""
    date = email.utils.format_datetime(datetime.now(UTC), usegmt=True)
    lines = ["Origin: dcops-lab", "Label: dcops-lab", f"Suite: {SUITE}", "Codename: lab",
             f"Date: {date}", "Architectures: amd64 all", "SHA256:"]
    for name in ("Packages", "Packages.gz"):
        blob = (repo / name).read_bytes()
        lines.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} {name}")
    (repo / "Release").write_text("\n".join(lines) + "\n")


def ensure_repo(base_root: Path, base_name: str, packages: list[str] | None = None, *,
                log: Log = lambda _msg: None) -> Path:
    """Return the repository directory, downloading what the package list adds (idempotent)."""
    packages = package_list() if packages is None else packages
    repo = repo_dir(base_name)
    stamp = repo / ".dcops-packages"
    blob = "\n".join([f"format {REPO_FORMAT}", *sorted(packages)]).encode()
    wanted = hashlib.sha256(blob).hexdigest()[:12]
    with file_lock(cache_root() / "repo.lock"):
        if stamp.is_file() and stamp.read_text().strip() == wanted and (repo / "Packages").exists():
            return repo
        sources = debian_sources(read_sources(), SUITE)
        if not sources:
            raise LabError(f"/etc/apt: no apt source carries Debian {SUITE} main")
        state = cache_root() / "apt-state"
        for sub in ("lists/partial", "cache", "sources.list.d"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (repo / "partial").mkdir(parents=True, exist_ok=True)
        (state / "sources.list").write_text("\n".join(s.one_line() for s in sources) + "\n")
        log(f"fetching {len(packages)} packages and their dependencies for the lab repository")
        _apt(state, base_root, repo, "update")
        _apt(state, base_root, repo, "install", "--download-only", *packages)
        index = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo,
                               capture_output=True, text=True, check=False)
        if index.returncode != 0:
            raise LabError(f"dpkg-scanpackages in {repo}: {index.stderr.strip()}")
        (repo / "Packages").write_text(index.stdout)
        subprocess.run(["gzip", "-9kf", "Packages"], cwd=repo, check=True)
        write_release(repo)
        stamp.write_text(wanted + "\n")
        log(f"lab repository ready: {len(list(repo.glob('*.deb')))} packages in {repo}")
        return repo

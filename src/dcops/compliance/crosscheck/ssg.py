"""SCAP Security Guide content for Debian 12, from Debian trixie's ssg-debian package.

bookworm's ssg-debian (0.1.65) has no debian12 content; trixie's (0.1.76) has. The mirror is read
from this machine's apt configuration; apt runs on a private configuration directory (never
/etc/apt) with `signed-by=debian-archive-keyring`, so the Release file's signature is verified
and the downloaded .deb's hash is checked against the signed Packages index. The package is
unpacked with dpkg-deb -x (never installed). The evidence records the .deb's SHA-256, its
version, the index's SHA-256 for it and the data stream's SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dcops.errors import ComplianceError

DS = "usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITE = "trixie"


@dataclass(frozen=True, slots=True)
class SsgContent:
    """The data stream and what proves where it came from."""

    datastream: Path
    package: str
    version: str
    deb: str
    deb_sha256: str
    index_sha256: str
    datastream_sha256: str
    source: str

    def record(self) -> dict[str, str]:
        """What crosscheck.json records about the content."""
        return {"package": self.package, "version": self.version, "deb": self.deb,
                "deb_sha256": self.deb_sha256, "index_sha256": self.index_sha256,
                "datastream": DS.rsplit("/", 1)[-1], "datastream_sha256": self.datastream_sha256,
                "source": self.source,
                "verified_by": f"apt ({SUITE} Release signature, {KEYRING.name}); .deb SHA-256 "
                               "equals the signed Packages index's"}


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def debian_mirror(sources_d: Path = Path("/etc/apt/sources.list.d"),
                  legacy: Path = Path("/etc/apt/sources.list")) -> str:
    """The URI of the machine's Debian (not security) source."""
    candidates = []
    for file in sorted(sources_d.glob("*.sources")):
        for stanza in file.read_text(encoding="utf-8").split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and "security" not in suites.group(1):
                candidates.append(uris.group(1))
    if legacy.exists():
        for line in legacy.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and "security" not in m.group(2):
                candidates.append(m.group(1))
    if not candidates:
        raise ComplianceError(f"no Debian mirror in the apt configuration ({sources_d}, "
                              f"{legacy}); expected a deb822 URIs: line or a deb line")
    return candidates[0]


def _apt_options(apt: Path) -> list[str]:
    return ["-o", f"Dir::Etc={apt / 'etc'}", "-o", "Dir::Etc::sourcelist=sources.list",
            "-o", "Dir::Etc::sourceparts=-", "-o", f"Dir::State={apt / 'state'}",
            "-o", f"Dir::Cache={apt / 'cache'}", "-o", "Dir::State::status=/var/lib/dpkg/status",
            "-o", "APT::Get::List-Cleanup=0", "-o", "Debug::NoLocking=1"]


def _run(argv: list[str], what: str, cwd: Path | None = None, timeout: float = 600) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComplianceError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        raise ComplianceError(f"{what} exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    return proc.stdout


def fetch_ssg(cache: Path) -> SsgContent:
    """ssg-debian12-ds.xml from trixie's ssg-debian, downloaded once into `cache` and checked
    against the signed index every time; ComplianceError saying what failed otherwise."""
    if not KEYRING.is_file():
        raise ComplianceError(f"{KEYRING} missing: install debian-archive-keyring (apt verifies "
                              "the Release signature with it)")
    apt = cache / "apt"
    for sub in ("etc/preferences.d", "etc/apt.conf.d", "state/lists/partial",
                "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    (apt / "etc" / "sources.list").write_text(
        f"deb [signed-by={KEYRING}] {mirror} {SUITE} main\n", encoding="utf-8")
    opts = _apt_options(apt)
    debs = sorted(cache.glob("ssg-debian_*.deb"))
    if not debs or not any((apt / "state" / "lists").glob("*Packages*")):
        _run(["apt-get", *opts, "update"], f"apt-get update ({mirror} {SUITE})")
    if not debs:
        _run(["apt-get", *opts, "download", "ssg-debian"], "apt-get download ssg-debian",
             cwd=cache)
        debs = sorted(cache.glob("ssg-debian_*.deb"))
    if not debs:
        raise ComplianceError(f"apt-get download ssg-debian left no .deb in {cache}")
    deb = debs[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], f"dpkg-deb -f {deb}").strip()
    shown = _run(["apt-cache", *opts, "show", f"ssg-debian={version}"],
                 f"apt-cache show ssg-debian={version}")
    index = re.findall(r"^SHA256:\s*([0-9a-f]{64})", shown, re.M)
    deb_sha = file_sha256(deb)
    if deb_sha not in index:
        raise ComplianceError(f"{deb}: SHA-256 {deb_sha} is not the signed index's "
                              f"({', '.join(index) or 'none'}); delete it and run again")
    target = cache / "root" / DS
    if not target.exists():
        _run(["dpkg-deb", "-x", str(deb), str(cache / "root")], f"dpkg-deb -x {deb}", timeout=300)
    sums = _run(["dpkg-deb", "-I", str(deb), "md5sums"], f"dpkg-deb -I {deb} md5sums")
    listed = re.search(rf"^([0-9a-f]{{32}})\s+{re.escape(DS)}$", sums, re.M)
    md5 = hashlib.md5(target.read_bytes(), usedforsecurity=False).hexdigest()
    if listed is None or listed.group(1) != md5:
        raise ComplianceError(f"{target}: differs from the package's md5sums; delete "
                              f"{cache / 'root'} and run again")
    return SsgContent(target, "ssg-debian", version, deb.name, deb_sha, deb_sha,
                      file_sha256(target), f"{mirror} {SUITE} main")

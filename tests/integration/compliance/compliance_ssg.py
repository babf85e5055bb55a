"""Fetch SCAP Security Guide content for Debian 12 from Debian trixie's ssg-debian package.

bookworm's ssg-debian (0.1.65) has no debian12 content; trixie's (0.1.76) has. The mirror is read
from this machine's apt configuration; apt runs on a private configuration directory so /etc/apt
is never touched; the package is unpacked with dpkg-deb -x (never installed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

DS = "usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml"


def debian_mirror() -> str:
    """The URI of the machine's Debian (not security) source."""
    candidates = []
    for file in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in file.read_text(encoding="utf-8").split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and "security" not in suites.group(1):
                candidates.append(uris.group(1))
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and "security" not in m.group(2):
                candidates.append(m.group(1))
    if not candidates:
        raise RuntimeError("no Debian mirror in the apt configuration")
    return candidates[0]


def fetch_ssg(cache: Path) -> Path:
    """Path of ssg-debian12-ds.xml, downloading trixie's ssg-debian once into `cache`."""
    target = cache / "root" / DS
    if target.exists():
        return target
    apt = cache / "apt"
    for sub in ("etc/preferences.d", "etc/apt.conf.d", "state/lists/partial",
                "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "etc" / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {debian_mirror()} "
        "trixie main\n", encoding="utf-8")
    opts = ["-o", f"Dir::Etc={apt / 'etc'}", "-o", "Dir::Etc::sourcelist=sources.list",
            "-o", "Dir::Etc::sourceparts=-", "-o", f"Dir::State={apt / 'state'}",
            "-o", f"Dir::Cache={apt / 'cache'}", "-o", "Dir::State::status=/var/lib/dpkg/status",
            "-o", "APT::Get::List-Cleanup=0", "-o", "Debug::NoLocking=1"]
    subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True, timeout=600)
    subprocess.run(["apt-get", *opts, "download", "ssg-debian"], check=True, cwd=cache,
                   capture_output=True, timeout=600)
    deb = next(cache.glob("ssg-debian_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(cache / "root")], check=True, timeout=300)
    return target

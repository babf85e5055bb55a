"""Read the Debian mirror from this machine's own apt configuration (never hard-coded)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dcops.errors import LabError


@dataclass(frozen=True, slots=True)
class AptSource:
    """One `deb` source: a URI, its suites and components, and the keyring that signs it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""

    def one_line(self) -> str:
        """The source in the classic one-line sources.list format."""
        opts = f" [signed-by={self.signed_by}]" if self.signed_by else ""
        return "\n".join(
            f"deb{opts} {self.uri} {suite} {' '.join(self.components)}" for suite in self.suites
        )


def parse_deb822(text: str) -> list[AptSource]:
    """Parse a deb822 `.sources` file, skipping stanzas that are not `deb` or are disabled."""
    sources: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            if raw[0].isspace() and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        for uri in fields.get("uris", "").split():
            sources.append(AptSource(
                uri=uri.rstrip("/"),
                suites=tuple(fields.get("suites", "").split()),
                components=tuple(fields.get("components", "").split()),
                signed_by=_keyring(fields.get("signed-by", "")),
            ))
    return sources


def _keyring(value: str) -> str:
    """A Signed-By keyring path; an inline key block is not a path and is dropped."""
    return "" if "BEGIN PGP" in value or not value.startswith("/") else value.split(maxsplit=1)[0]


_OPTS = re.compile(r"^\[([^\]]*)\]\s*")


def parse_one_line(text: str) -> list[AptSource]:
    """Parse a classic sources.list: `deb [opts] uri suite component...` lines."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        rest = line[3:].strip()
        signed_by = ""
        match = _OPTS.match(rest)
        if match:
            for opt in match.group(1).split():
                name, _, value = opt.partition("=")
                if name == "signed-by":
                    signed_by = value
            rest = rest[match.end():]
        parts = rest.split()
        if len(parts) < 2:
            continue
        sources.append(AptSource(uri=parts[0].rstrip("/"), suites=(parts[1],),
                                 components=tuple(parts[2:]), signed_by=signed_by))
    return sources


def read_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every enabled `deb` source of this machine (sources.list and sources.list.d/)."""
    sources: list[AptSource] = []
    main = etc_apt / "sources.list"
    if main.is_file():
        sources += parse_one_line(main.read_text(encoding="utf-8", errors="replace"))
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
            if path.suffix == ".sources":
                sources += parse_deb822(text)
            elif path.suffix == ".list":
                sources += parse_one_line(text)
    return sources


def resolve_uri(uri: str) -> str:
    """A plain URI for debootstrap: `mirror+file:/path` lists take their first entry."""
    if uri.startswith("mirror+file:"):
        path = Path(uri.removeprefix("mirror+file:"))
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise LabError(f"{path}: cannot read the apt mirror list ({exc.strerror})") from exc
        for line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                return line.split()[0].rstrip("/")
        raise LabError(f"{path}: the apt mirror list names no mirror")
    return uri


def debian_sources(sources: list[AptSource], suite: str) -> list[AptSource]:
    """The sources that carry `suite` or its -updates/-security pockets, with component main."""
    found = []
    for src in sources:
        suites = tuple(s for s in src.suites if s == suite or s.startswith(f"{suite}-"))
        if suites and "main" in src.components:
            found.append(AptSource(resolve_uri(src.uri), suites, ("main",), src.signed_by))
    return found


def debian_mirror(sources: list[AptSource], suite: str, where: str = "/etc/apt") -> AptSource:
    """The source that carries `suite` itself (the one debootstrap uses)."""
    for src in debian_sources(sources, suite):
        if suite in src.suites:
            return AptSource(src.uri, (suite,), ("main",), src.signed_by)
    raise LabError(
        f"{where}: no apt source carries Debian suite {suite!r} with component main "
        "(expected a `URIs:` stanza in sources.list.d/*.sources or a `deb URI {suite} main` line)")

"""Where the lab keeps its cache (base image, packages) and per-lab state: outside the repo.

The roots are given by the caller (`dcops.cli` reads `$DCOPS_STATE_DIR` and `$XDG_CACHE_HOME` and
calls `set_roots` before any lab command); this module reads no environment variable.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_STATE = Path.home() / ".local" / "share" / "dcops"
DEFAULT_CACHE = Path.home() / ".cache"

_roots: dict[str, Path] = {}


def set_roots(state: Path | None = None, cache: Path | None = None) -> None:
    """The dcops state directory and the user's cache directory (None: the default)."""
    for key, value in (("state", state), ("cache", cache)):
        if value is None:
            _roots.pop(key, None)
        else:
            _roots[key] = Path(value)


def cache_root() -> Path:
    """The lab cache: `<cache>/dcops/lab` (default ~/.cache/dcops/lab)."""
    return _roots.get("cache", DEFAULT_CACHE) / "dcops" / "lab"


def state_root() -> Path:
    """Per-lab state (keys, overlays, logs): `<state>/lab` (default ~/.local/share/dcops/lab)."""
    return _roots.get("state", DEFAULT_STATE) / "lab"

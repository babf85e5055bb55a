"""Where the lab keeps its cache (base image, packages) and per-lab state: outside the repo.

The roots are given by the caller: `dcops.cli.common.configure_lab` (the one place the state and
cache directories are computed, from `$DCOPS_STATE_DIR` and `$XDG_CACHE_HOME`) calls `set_roots`
before any lab command runs. This module reads no environment variable and has no default of its
own: a lab used before its roots are set fails with a clear error instead of writing somewhere else.
"""

from __future__ import annotations

from pathlib import Path

from dcops.errors import LabError

_roots: dict[str, Path] = {}


def set_roots(state: Path | None = None, cache: Path | None = None) -> None:
    """The dcops state directory and the user's cache directory (None: unset)."""
    for key, value in (("state", state), ("cache", cache)):
        if value is None:
            _roots.pop(key, None)
        else:
            _roots[key] = Path(value)


def _root(key: str) -> Path:
    try:
        return _roots[key]
    except KeyError:
        raise LabError(f"the lab's {key} directory is not set: call "
                       "dcops.cli.common.configure_lab() first (the dcops CLI does)") from None


def cache_root() -> Path:
    """The lab cache: `<cache>/dcops/lab` (by default ~/.cache/dcops/lab)."""
    return _root("cache") / "dcops" / "lab"


def state_root() -> Path:
    """Per-lab state (keys, overlays, logs): `<state>/lab` (by default ~/.local/share/dcops/lab)."""
    return _root("state") / "lab"

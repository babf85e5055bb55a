"""Where the lab keeps its cache (base image, packages) and per-lab state: outside the repo."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The lab cache: `$XDG_CACHE_HOME/dcops/lab` (default ~/.cache/dcops/lab)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dcops" / "lab"


def state_root() -> Path:
    """Per-lab state (keys, overlays, logs): `$DCOPS_STATE_DIR/lab` (~/.local/share/dcops/lab)."""
    base = os.environ.get("DCOPS_STATE_DIR") or str(Path.home() / ".local" / "share" / "dcops")
    return Path(base) / "lab"

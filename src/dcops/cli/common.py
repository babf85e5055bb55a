"""What every CLI module shares: where dcops keeps its state."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """$DCOPS_STATE_DIR, default ~/.local/share/dcops."""
    env = os.environ.get("DCOPS_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "dcops"

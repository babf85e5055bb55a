"""What every CLI module shares: where dcops keeps its state and its cache.

These are the only places the state and cache locations are computed from the environment; the
lab (`dcops.lab.paths`) is given them by `configure_lab`.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """$DCOPS_STATE_DIR, default ~/.local/share/dcops."""
    env = os.environ.get("DCOPS_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "dcops"


def cache_dir() -> Path:
    """$XDG_CACHE_HOME, default ~/.cache (the lab's base image and package repository)."""
    env = os.environ.get("XDG_CACHE_HOME")
    return Path(env) if env else Path.home() / ".cache"


def configure_lab(state: Path | None = None) -> None:
    """Give the lab its roots: `state` (default state_dir()) and cache_dir()."""
    from dcops.lab.paths import set_roots

    set_roots(state if state is not None else state_dir(), cache_dir())


# The Vault key's environment variables, in order (dcops's own, then Ansible's).
VAULT_ENV = ["DCOPS_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"]


def vault_password_file() -> Path | None:
    """The Vault password file named by the environment (VAULT_ENV), for commands without the
    --vault-password-file option; None: the inventory directory's key, if it has one."""
    for name in VAULT_ENV:
        value = os.environ.get(name)
        if value:
            return Path(value)
    return None

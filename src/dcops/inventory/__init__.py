"""Load and validate `inventories/<env>/` into the typed site model (dcops.model)."""

from __future__ import annotations

from pathlib import Path

from dcops.errors import InventoryError
from dcops.inventory.ansible_io import Problem, find_vault_password_file, read
from dcops.inventory.build import build
from dcops.inventory.checks import CHECKS
from dcops.model import SiteModel

__all__ = ["Problem", "check_inventory", "find_vault_password_file", "load_inventory"]


def check_inventory(path: str | Path, vault_password_file: str | Path | None = None
                    ) -> tuple[SiteModel, list[Problem]]:
    """Load the inventory and return the model with every problem found (empty list: clean)."""
    root = Path(path)
    if not root.exists():
        raise InventoryError("inventory not found", file=str(root))
    raw = read(root, Path(vault_password_file) if vault_password_file else None)
    model, problems = build(raw)
    for check in CHECKS:
        problems.extend(check(model, raw))
    return model, problems


def load_inventory(path: str | Path, vault_password_file: str | Path | None = None) -> SiteModel:
    """The site model at `path`; raises InventoryError listing every problem if invalid."""
    model, problems = check_inventory(path, vault_password_file)
    if problems:
        lines = [f"{p.source or path}: {p.message} (key: {p.key})" for p in problems]
        raise InventoryError(f"{len(problems)} problem(s) in the inventory:\n  "
                             + "\n  ".join(lines), file=str(path))
    return model

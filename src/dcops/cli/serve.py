"""CLI: serve commands (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the serve commands to the root application."""
    del app

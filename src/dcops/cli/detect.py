"""CLI: detect commands (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the detect commands to the root application."""
    del app

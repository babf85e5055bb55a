"""CLI: collector commands for collect_snmp (being built)."""

from __future__ import annotations

import typer


def register(collect: typer.Typer) -> None:
    """Add this area's commands to the `collect` group."""
    del collect

"""The `dcops` command: the only place that reads argv and the environment and wires parts together.

Each area has its own module here (``dcops.cli.<area>``) exposing ``register(app)``, which adds its
commands or sub-command group to the root application.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import typer
from rich.console import Console

from dcops.errors import DcopsError, DcopsWarning

app = typer.Typer(
    name="dcops",
    help="Provincial e-government data centre: IaC, SOC/NOC operations and compliance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_all() -> None:
    from dcops.cli import alerts, audit, collect, demo, detect, hosts, iac, inventory, lab, serve

    for module in (inventory, lab, iac, collect, detect, alerts, serve, audit, hosts, demo):
        module.register(app)


_register_all()


def main() -> None:
    """Entry point: run the CLI and turn DcopsError into a clear message and exit code 1."""
    default_show = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, DcopsWarning):  # its own words, on stderr, every time
            sys.stderr.write(f"warning: {message}\n")
        else:
            default_show(message, category, *args, **kw)

    warnings.showwarning = show
    try:
        app()
    except DcopsError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)

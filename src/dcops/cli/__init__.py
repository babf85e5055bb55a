"""The `dcops` command: the only place that reads argv and the environment and wires parts together.

Each area has its own module here (``dcops.cli.<area>``) exposing ``register(app)``, which adds its
commands or sub-command group to the root application.
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

import typer

from dcops.cli import failures
from dcops.errors import DcopsWarning

app = typer.Typer(
    name="dcops",
    help="Provincial e-government data centre: IaC, SOC/NOC operations and compliance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_all() -> None:
    from dcops.cli import (
        alerts,
        change,
        collect,
        compliance,
        demo,
        detect,
        hosts,
        iac,
        inventory,
        lab,
        serve,
    )

    # `compliance` registers the `dcops audit` commands (compliance audits).
    for module in (inventory, lab, iac, collect, detect, alerts, change, serve, compliance, hosts,
                   demo):
        module.register(app)


@app.callback()
def _root(debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of a failure (also: DCOPS_DEBUG=1).")] = False,
          ) -> None:
    """Provincial e-government data centre: IaC, SOC/NOC operations and compliance."""
    failures.set_debug(debug)


_register_all()


def main() -> None:
    """Entry point: run the CLI; every failure is one line and a non-zero exit (cli.failures)."""
    default_show = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, DcopsWarning):  # its own words, on stderr, every time
            sys.stderr.write(f"warning: {message}\n")
        else:
            default_show(message, category, *args, **kw)

    warnings.showwarning = show
    sys.exit(failures.run(app))

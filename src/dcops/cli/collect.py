"""CLI: `dcops collect ...` groups the collectors; each collector area adds its own commands."""

from __future__ import annotations

import typer

from dcops.cli import collect_certs, collect_events, collect_snmp, collect_snmp_targets


def register(app: typer.Typer) -> None:
    """Add the `collect` group: SNMP polling and traps, syslog, log files, Wazuh, certificates."""
    collect = typer.Typer(help="Run collectors: SNMP, traps, syslog, log files, Wazuh, TLS "
                          "certificates.",
                          no_args_is_help=True)
    collect_snmp.register(collect)
    collect_snmp_targets.register(collect)
    collect_events.register(collect)
    collect_certs.register(collect)
    app.add_typer(collect, name="collect")

"""CLI: `dcops collect certs` — TLS certificate expiry probe (endpoints and PEM files).

Events go to the SOC spool (and detection with `--detect`), metrics to `/metrics` with `--listen`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from dcops.cli.bus import BusOpt, close_sink, collector_sink
from dcops.cli.collect_events import (
    DbOpt,
    DetectOpt,
    RulesOpt,
    SiteModelOpt,
    _stop_event,
    detection,
)
from dcops.cli.collect_snmp import NoSpoolOpt, SpoolOpt, _hostport
from dcops.errors import ConfigError

if TYPE_CHECKING:
    from dcops.collectors.snmp.service import MetricsServer
    from dcops.collectors.tls_probe import ProbeResult, Target, TlsMetrics

_COLOUR = {"certificate-valid": "green", "certificate-expiring": "yellow",
           "certificate-expired": "red", "certificate-probe-failed": "red"}
_STATE = {"certificate-valid": "valid / còn hạn", "certificate-expiring": "expiring / sắp hết hạn",
          "certificate-expired": "expired / đã hết hạn",
          "certificate-probe-failed": "probe failed / lỗi kiểm tra"}


def _rows(results: Sequence[ProbeResult], warn_days: int) -> list[dict[str, Any]]:
    from dcops.collectors.tls_probe import action

    rows = []
    for r in results:
        for c in r.certs or (None,):
            rows.append({
                "target": r.target, "host": r.host, "action": action(r, c, warn_days),
                "ok": r.ok, "error": r.error, "error_kind": r.error_kind,
                "verified": r.verified, "verify_error": r.verify_error,
                "subject_cn": c.subject_cn if c else "", "subject": c.subject if c else "",
                "issuer_cn": c.issuer_cn if c else "", "issuer": c.issuer if c else "",
                "serial": c.serial if c else "", "sans": list(c.sans) if c else [],
                "not_before": c.not_before.isoformat() if c else None,
                "not_after": c.not_after.isoformat() if c else None,
                "days_left": c.days_left if c else None,
                "duration_seconds": round(r.duration, 4)})
    return rows


def _table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table("Mục tiêu / Target", "Máy / Host", "Chủ thể / Subject CN",
              "Nơi cấp / Issuer CN", "Hết hạn / Not after",
              "Số ngày còn lại / Days left", "Xác thực / Verified", "Trạng thái / State",
              title="Chứng thư số TLS / TLS certificates")
    for row in rows:
        colour = _COLOUR[row["action"]]
        state = _STATE[row["action"]]
        if row["error"]:
            state += f": {row['error']}"
        verified = {True: "yes / có", False: "no / không", None: "-"}[row["verified"]]
        if row["verify_error"]:
            verified += f" ({row['verify_error']})"
        t.add_row(escape(row["target"]), escape(row["host"]), escape(row["subject_cn"]),
                  escape(row["issuer_cn"]), (row["not_after"] or "-")[:19],
                  "-" if row["days_left"] is None else str(row["days_left"]),
                  escape(verified), f"[{colour}]{escape(state)}[/]")
    return t


def certs(
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="TLS endpoint HOST:PORT or HOST:PORT@SNI (repeatable).")] = None,
    targets_file: Annotated[Path | None, typer.Option(
        "--targets-file", help="YAML list of {name, target, sni}.")] = None,
    file: Annotated[list[Path] | None, typer.Option(
        "--file", help="Certificate file, PEM or DER; every certificate in it (repeatable).")
    ] = None,
    warn_days: Annotated[int, typer.Option(
        help="Certificates with fewer full days left are expiring.")] = 30,
    timeout: Annotated[float, typer.Option(help="Seconds per connection and handshake.")] = 5.0,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="Verify against this CA bundle instead of the system's.")] = None,
    concurrency: Annotated[int, typer.Option(help="Targets probed at once.")] = 16,
    interval: Annotated[float, typer.Option(help="Seconds between probe runs.")] = 3600.0,
    once: Annotated[bool, typer.Option(
        help="Probe once, print a table, exit 1 if anything expires within --warn-days "
             "or a probe failed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: JSON on stdout.")] = False,
    listen: Annotated[str | None, typer.Option(
        help="Serve /metrics on HOST:PORT while running (e.g. 127.0.0.1:9718).")] = None,
    host: Annotated[str, typer.Option(
        help="host.name of --file certificates (default this machine).")] = "",
    bus: BusOpt = None,
    spool: SpoolOpt = None,
    no_spool: NoSpoolOpt = False,
    detect: DetectOpt = False,
    rules: RulesOpt = None,
    db: DbOpt = None,
    inventory: SiteModelOpt = None,
) -> None:
    """Probe TLS certificates of endpoints and files for expiry (Chứng thư số sắp hết hạn)."""
    from dcops.collectors import tls_probe

    targets = _targets(target, targets_file)
    files = list(file or [])
    problem = ("nothing to probe: give --target, --targets-file or --file"
               if not targets and not files else
               "--json needs --once" if as_json and not once else
               f"--ca-file {ca_file}: no such file" if ca_file and not ca_file.is_file() else
               "--detect reads the spool: drop --no-spool" if detect and no_spool else
               "--bus with --no-spool: give one (--no-spool publishes nowhere)"
               if bus is not None and no_spool else
               f"--interval {interval:g}: must be positive" if interval <= 0 else "")
    if problem:
        raise ConfigError(problem)
    sp = None if no_spool else collector_sink(bus, spool, source="certs", detect=detect)
    metrics = tls_probe.TlsMetrics()
    server = _metrics_server(metrics, listen) if listen else None

    def run() -> list[ProbeResult]:
        results = tls_probe.probe_all(targets, files, timeout=timeout, ca_file=ca_file,
                                      file_host=host, concurrency=concurrency)
        metrics.update(results)
        if sp is not None:
            sp.publish(tls_probe.events(results, warn_days))
        return results

    try:
        detecting = (detection(sp, detect, rules, db, inventory) if sp is not None
                     else contextlib.nullcontext())
        with detecting:
            if once:
                results = run()
            else:
                where = f"; metrics at http://{listen}/metrics" if listen else ""
                Console(stderr=True).print(
                    f"certs: probing {len(targets)} endpoints and {len(files)} files every "
                    f"{interval:g}s{where}", highlight=False)
                _loop(run, interval)
    finally:
        if server is not None:
            server.close()
        if sp is not None:
            close_sink(sp, "certs")
    if once:
        rows = _rows(results, warn_days)
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            Console().print(_table(rows))
        if tls_probe.needs_attention(results, warn_days):
            raise typer.Exit(1)


def _targets(specs: list[str] | None, targets_file: Path | None) -> list[Target]:
    from dcops.collectors.tls_probe import load_targets, parse_target

    out = [parse_target(s) for s in specs or []]
    return out + (load_targets(targets_file) if targets_file is not None else [])


def _metrics_server(metrics: TlsMetrics, listen: str) -> MetricsServer:
    from prometheus_client import CollectorRegistry

    from dcops.collectors.snmp.service import MetricsServer

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return MetricsServer(registry, *_hostport(listen, 9718))


def _loop(run: Callable[[], list[ProbeResult]], interval: float) -> None:
    """Probe every `interval` seconds until SIGINT/SIGTERM."""
    stop = _stop_event()
    console = Console(stderr=True)
    while True:
        t0 = time.monotonic()
        results = run()
        bad = sum(1 for r in results if not r.ok)
        console.print(f"certs: {len(results)} probed, {bad} failed", highlight=False)
        if stop.wait(max(0.0, interval - (time.monotonic() - t0))):
            return


def register(collect: typer.Typer) -> None:
    """Add `certs` to the `collect` group."""
    collect.command("certs")(certs)

"""CLI: `dcops detect check|test|scan|run` (Sigma rules: load report, sample tests, scan JSON
lines, run on the bus)."""

from __future__ import annotations

import collections
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from rich.console import Console
from rich.table import Table

from dcops.errors import DetectionError

if TYPE_CHECKING:
    from dcops.detect.engine import Engine
    from dcops.detect.jsonio import BadLines
    from dcops.detect.samples import Decoder
    from dcops.detect.stream import LineStream

DEFAULT_RULES = Path("soc_rules")
console = Console()


def _dirs(dirs: list[Path] | None) -> list[Path]:
    return list(dirs) if dirs else [DEFAULT_RULES]


def check(
    dirs: Annotated[list[Path] | None, typer.Argument(help="Rule directories or files")] = None,
    lint: Annotated[bool, typer.Option(help="Also run pySigma's validators (sigma check)")] = True,
    strict: Annotated[bool, typer.Option(help="Exit 1 on any rejected rule or lint issue")] = False,
) -> None:
    """Load rules, count them by logsource, list every rule the engine cannot run and why."""
    from dcops.detect.linear import backtracking
    from dcops.detect.lint import lint as run_lint
    from dcops.detect.loader import load_rules

    paths = _dirs(dirs)
    rs = load_rules(paths)
    counts = collections.Counter(
        "/".join(p for p in (r.product, r.service, r.category) if p) or "(any)" for r in rs.rules
    )
    table = Table(title="Luật theo nguồn log / Rules by logsource")
    table.add_column("logsource")
    table.add_column("rules", justify="right")
    for ls, n in sorted(counts.items()):
        table.add_row(ls, str(n))
    console.print(table)
    console.print(
        f"files {rs.files} · rules {len(rs.rules)} · correlations {len(rs.correlations)} · "
        f"không chạy được / rejected {len(rs.rejected)}"
    )
    for rej in rs.rejected:
        console.print(f"[red]rejected[/] {rej.path} {rej.rule}: {rej.reason}", highlight=False)
    slow = backtracking()
    console.print(f"regex chạy tuyến tính / regexes in linear time (RE2): all but {len(slow)}")
    for pattern, why in sorted(slow.items()):
        console.print(f"[yellow]backtracking regex[/] {pattern!r}: {why} (a crafted value can "
                      "cost time growing faster than its length)", highlight=False)
    issues: list[str] = []
    if lint:
        found, skipped = run_lint(paths)
        for s in skipped:
            console.print(f"[yellow]lint skipped[/] {s}", highlight=False)
        for i in found:
            issues.append(i.message)
            console.print(f"[yellow]{i.severity}[/] {i.where}: {i.message}", highlight=False)
        console.print(f"sigma check: {len(found)} issue(s)")
    if strict and (rs.rejected or issues):
        raise DetectionError(f"{len(rs.rejected)} rejected rule(s), {len(issues)} lint issue(s)")


def sample_decoders() -> dict[str, Decoder]:
    """The collector shapes rule samples may be written in (`wazuh:` an alerts.json alert)."""
    from dcops.collectors.wazuh import sample_event

    return {"wazuh": sample_event}


def run_tests(
    dirs: Annotated[list[Path] | None, typer.Argument(help="Rule directories")] = None,
) -> None:
    """Run every rule against its hit and miss samples (<rule>.samples.yaml beside it)."""
    from dcops.detect.samples import run_samples

    report = run_samples(_dirs(dirs), sample_decoders())
    for r in report.results:
        mark = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
        extra = f" -> {r.detail}" if r.detail and not r.ok else ""
        console.print(f"{mark} {r.expect:4} {r.rule_file}: {r.name}{extra}", highlight=False)
    for m in report.missing:
        console.print(f"[red]FAIL[/] {m}: no samples file", highlight=False)
    failed = sum(not r.ok for r in report.results) + len(report.missing)
    console.print(f"{len(report.results)} case(s), {failed} failed / lỗi")
    if failed:
        raise DetectionError(f"{failed} sample case(s) failed")


def scan(
    file: Annotated[Path, typer.Argument(help="Events as JSON lines ('-' for stdin)")],
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", "-r", help="Rule directory (repeatable)")
    ] = None,
    batch: Annotated[int, typer.Option(help="Events per engine batch", min=1)] = 1000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Detection processes; events are routed by the correlations' group-by "
            "values, so the detections are those of one process (their order interleaves)",
        ),
    ] = 1,
) -> None:
    """Run the rules over JSON-line events; print detections as JSON lines on stdout.

    A malformed line is reported on stderr (FILE:LINE, the first 20) and skipped; the scan goes
    on and exits non-zero at the end with the count. On a live pipe (`tail -F x | dcops detect
    scan -`) a batch runs when the input pauses for 0.2 s, and SIGTERM or Ctrl-C ends the scan
    after detecting every line read (what the pipe already holds, up to 4 MiB, included).
    """
    from dcops.collectors.heap import batch_gc
    from dcops.detect.engine import Engine
    from dcops.detect.jsonio import BadLines
    from dcops.detect.parallel import scan_parallel
    from dcops.detect.stream import LineStream

    engine = Engine.from_dirs(_dirs(rules))
    batch_gc()  # the rules out of every collection; a batch's events are not walked every 700
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for rej in engine.ruleset.rejected:
        err.print(f"rejected {rej.path} {rej.rule}: {rej.reason}")
    out = sys.stdout.buffer
    src = sys.stdin.buffer if str(file) == "-" else None
    try:
        fh = src or file.open("rb")
    except OSError as exc:
        raise DetectionError(f"{file}: cannot read: {exc}") from exc
    bad = BadLines(lambda m: err.print(m, markup=False))
    stream = LineStream(fh)
    # SIGTERM or Ctrl-C: stop reading, detect what was read, exit (nothing read is dropped)
    previous = {s: signal.signal(s, stream.stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with fh:
            if workers > 1:  # each batch's detections are flushed as they come back
                scan_parallel(engine, stream.lines(), lambda b: (out.write(b), out.flush()),
                              workers, str(file), batch=batch, bad=bad)
            else:
                _scan_one(engine, stream, batch, str(file), bad, out)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    out.flush()
    if stream.stopped:
        err.print("stopped by a signal: every line read was scanned / đã dừng theo tín hiệu")
    bad.check()  # after the other lines' detections: a bad line fails the run, loses nothing


def _scan_one(engine: Engine, stream: LineStream, batch: int, where: str, bad: BadLines,
              out: BinaryIO) -> None:
    """One process: a batch runs when it is full, when the input pauses and at its end."""
    from dcops.detect.jsonio import detection_line, events_from_lines
    from dcops.detect.stream import IDLE

    chunk: list[tuple[int, bytes]] = []
    no = 0
    for line in stream.lines():
        if line is not IDLE:
            no += 1
            chunk.append((no, line))
            if len(chunk) < batch:
                continue
        for d in engine.process(events_from_lines(chunk, where, bad.add)):
            out.write(detection_line(d) + b"\n")
        chunk = []
        if line is IDLE:
            out.flush()  # a live pipe's reader sees the detections now
    for d in engine.process(events_from_lines(chunk, where, bad.add)):
        out.write(detection_line(d) + b"\n")


def register(app: typer.Typer) -> None:
    """Add the `detect` command group to the root application."""
    group = typer.Typer(
        help="Sigma detection: check rules, test samples, scan events, run on the bus.",
        no_args_is_help=True
    )
    group.command("check")(check)
    group.command("test")(run_tests)
    group.command("scan")(scan)
    from dcops.cli.detect_run import run

    group.command("run")(run)
    app.add_typer(group, name="detect")

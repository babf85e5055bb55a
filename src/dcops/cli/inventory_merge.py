"""`dcops inventory merge A B`: the report (table or JSON) and exit codes of a province merge."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dcops.errors import DcopsError
from dcops.inventory.merge import Comparison, Finding

EXIT_CONFLICTS = 1


def _where(ref: object) -> str:
    return str(ref) if ref is not None else "-"


def _as_json(c: Comparison, findings: list[Finding], out: Path, written: bool) -> str:
    return json.dumps({
        "a": str(c.a.path), "b": str(c.b.path), "out": str(out), "written": written,
        "findings": [{"kind": f.kind, "blocking": f.blocking, "message": f.message,
                      "a": {"file": f.a.file, "line": f.a.line} if f.a else None,
                      "b": {"file": f.b.file, "line": f.b.line} if f.b else None}
                     for f in findings],
        "hosts": sorted([*c.a.model.hosts, *c.a.model.devices, *c.b.model.hosts,
                         *c.b.model.devices]) if written else [],
    }, ensure_ascii=False, indent=2)


def _print(c: Comparison, findings: list[Finding], out: Path, written: bool) -> None:
    console = Console()
    if findings:
        blocking = sum(f.blocking for f in findings)
        table = Table(title=f"merge {c.a.path} + {c.b.path}: {blocking} conflict(s) / xung đột, "
                            f"{len(findings) - blocking} note(s) / ghi chú")
        for column in ("kind / loại", "in A / trong A", "in B / trong B", "finding / phát hiện"):
            table.add_column(column, overflow="fold")
        for f in findings:
            kind = f"[red]{f.kind}[/]" if f.blocking else f"[yellow]{f.kind}[/]"
            table.add_row(kind, _where(f.a), _where(f.b), f.message)
        console.print(table)
    if written:
        model_a, model_b = c.a.model, c.b.model
        console.print(f"[green]OK[/] merged into {out}: "
                      f"{len(model_a.sites) + len(model_b.sites)} sites, "
                      f"{len(model_a.systems) + len(model_b.systems)} systems, "
                      f"{len(model_a.hosts) + len(model_b.hosts)} servers, "
                      f"{len(model_a.devices) + len(model_b.devices)} network devices / "
                      "đã hợp nhất; next: dcops inventory check -i " + str(out))
    else:
        console.print(f"[red]not merged / chưa hợp nhất[/]: nothing written to {out} "
                      "(resolve the conflicts in copies of A or B, then run again)")


def run_merge(a: Path, b: Path, out: Path, name: str | None, overwrite: bool,
              vault_password_file: Path | None, as_json: bool, force: bool = False) -> None:
    """Compare, write when clean, report; exit 0 merged, 1 conflicts, 2 bad arguments
    (typer.BadParameter: one line from cli.failures)."""
    from dcops.inventory.merge import compare  # ansible-core: imported only when used
    from dcops.inventory.mergerename import forced
    from dcops.inventory.mergewrite import check_out, write_merged

    for label, path in (("A", a), ("B", b)):
        if not path.is_dir():
            raise typer.BadParameter(f"inventory {label} {path}: not a directory (expected an "
                                     "Ansible YAML inventory directory)")
    if a.resolve() == b.resolve():
        raise typer.BadParameter(f"A and B are the same inventory {a} (expected two former "
                                 "provinces)")
    try:
        check_out(out, a, b, overwrite)
    except DcopsError as exc:
        raise typer.BadParameter(str(exc)) from exc
    c = compare(a, b, vault_password_file)
    findings = list(c.findings)
    written = False
    with tempfile.TemporaryDirectory(prefix="dcops-merge-") as work:
        if force and c.blocking:
            c, findings = forced(c, Path(work), vault_password_file)
        if not c.blocking:
            problems = write_merged(c, out, name, overwrite, vault_password_file)
            findings.extend(problems)
            written = not problems
    if as_json:
        typer.echo(_as_json(c, findings, out, written))
    else:
        _print(c, findings, out, written)
    if not written:
        raise typer.Exit(EXIT_CONFLICTS)


"""`dcops demo` (what `make demo` runs): the whole toolkit on the embedded defaults, step by step.

Every step runs the same `dcops ...` or `ansible-playbook ...` command a user would, so the demo
doubles as a script of what to type. Whatever the demo starts is stopped on success, failure or
Ctrl-C, so it can run twice in a row.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from dcops.errors import DcopsError

console = Console()


class DemoError(DcopsError):
    """A demo step failed; the message names the step and the command."""


@dataclass
class Demo:
    """State shared by the steps: where things are, what was started, what each step reported."""

    root: Path
    state: Path
    lab_name: str = "dcops-demo"
    env: dict[str, str] = field(default_factory=dict)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    results: list[tuple[str, str, float, str]] = field(default_factory=list)

    def run(self, *argv: str, check: bool = True, capture: bool = False,
            timeout: float | None = 900) -> subprocess.CompletedProcess[str]:
        """Run a command as a user would, showing it first."""
        console.print(f"[dim]$ {shlex.join(argv)}[/]")
        proc = subprocess.run(argv, cwd=self.root, env=self.env, text=True, check=False,
                              capture_output=capture, timeout=timeout)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout or "")[-2000:] if capture else ""
            raise DemoError(f"`{shlex.join(argv)}` exited {proc.returncode}\n{detail}")
        return proc

    def dcops(self, *args: str, check: bool = True, capture: bool = False
              ) -> subprocess.CompletedProcess[str]:
        """Run `dcops ARGS` from this virtualenv."""
        return self.run(str(Path(sys.executable).with_name("dcops")), *args, check=check,
                        capture=capture)

    def spawn(self, *argv: str, log: str) -> subprocess.Popen[bytes]:
        """Start a long-running service for the rest of the demo; stopped at cleanup."""
        console.print(f"[dim]$ {shlex.join(argv)} &  (log: {self.state / log})[/]")
        out = (self.state / log).open("wb")
        proc = subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(proc)
        return proc

    def cleanup(self) -> None:
        """Stop everything the demo started, newest first; never raises."""
        for proc in reversed(self.background):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        self.background.clear()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:
                console.print(f"[yellow]cleanup: {exc}[/]")
        self.cleanups.clear()


Step = tuple[str, Callable[[Demo], str]]


def _ignore(_: object) -> None:
    """Drop a result (cleanups return nothing)."""


def step_lab_up(demo: Demo) -> str:
    """The lab: three hosts in systemd mode on a private bridge."""
    demo.cleanups.append(lambda: _ignore(demo.dcops("lab", "down", "--name", demo.lab_name,
                                                    check=False)))
    demo.dcops("lab", "up", "--name", demo.lab_name, "--hosts", "3", "--mode", "systemd")
    demo.dcops("lab", "status", "--name", demo.lab_name)
    return "3 lab hosts up (systemd mode)"


def step_inventory(demo: Demo) -> str:
    """The site model: validate the example province and the lab, show the province."""
    demo.dcops("inventory", "check", "-i", "inventories/production")
    demo.dcops("inventory", "check", "-i", "inventories/lab")
    demo.dcops("inventory", "show", "-i", "inventories/production")
    return "example province and lab inventories valid"


NEXT_STEPS = """\
[bold]Data-centre engineers / Kỹ sư trung tâm dữ liệu[/]
  dcops inventory check -i inventories/production    validate the site model
  dcops inventory show -i inventories/production     sites, systems, devices
  dcops lab up --hosts 3 --mode systemd              local test hosts
[bold]Security analysts / Chuyên viên giám sát an toàn thông tin[/]
  dcops collect --help                               collectors (SNMP, traps, syslog, logs)
[bold]Auditors / Kiểm toán viên[/]
  dcops inventory show --json                        systems and their security level (cấp độ)
"""


STEPS: list[Step] = [
    ("Lab up / Khởi động phòng thí nghiệm", step_lab_up),
    ("Site model / Mô hình hạ tầng", step_inventory),
]


def run_demo(demo: Demo, steps: list[Step]) -> None:
    """Run the steps in order, cleaning up whatever happens."""
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for number, (title, fn) in enumerate(steps, start=1):
            console.rule(f"[bold]{number}/{len(steps)} {title}")
            started = time.monotonic()
            try:
                summary = fn(demo)
            except Exception as exc:
                demo.results.append((title, "failed", time.monotonic() - started, str(exc)))
                raise
            demo.results.append((title, "done", time.monotonic() - started, summary))
            console.print(f"[green]done[/] {title}: {summary}")
    finally:
        console.rule("[bold]cleanup / dọn dẹp")
        demo.cleanup()
        signal.signal(signal.SIGTERM, previous)
        _summary(demo)


def _summary(demo: Demo) -> None:
    table = Table(title="dcops demo")
    for column in ("step / bước", "status", "seconds", "result / kết quả"):
        table.add_column(column, overflow="fold")
    for title, status, seconds, summary in demo.results:
        colour = "green" if status == "done" else "red"
        table.add_row(title, f"[{colour}]{status}[/]", f"{seconds:.1f}", summary)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `dcops demo` to the root application."""

    @app.command("demo")
    def demo_command(
        state: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(
            "out/demo"),
        lab_name: Annotated[str, typer.Option(help="Name of the demo lab.")] = "dcops-demo",
    ) -> None:
        """Run the whole toolkit on the embedded defaults (what `make demo` runs)."""
        root = Path.cwd()
        state = state.resolve()
        state.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, DCOPS_STATE_DIR=str(state / "state"), PYTHONUNBUFFERED="1")
        demo = Demo(root=root, state=state, lab_name=lab_name, env=env)
        try:
            run_demo(demo, STEPS)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: everything the demo started has been stopped[/]")
            raise typer.Exit(130) from None
        except DcopsError as exc:
            console.print(f"[bold red]demo failed:[/] {exc}")
            raise typer.Exit(1) from None
        console.print(Panel(NEXT_STEPS, title="What next / Bước tiếp theo"))

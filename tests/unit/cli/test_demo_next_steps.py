"""The command the demo prints at its end is well-formed, parses, and serves the console."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import typer.main

from dcops.cli import app, demo
from dcops.cli.demo import print_next_steps, serve_again_command

REPO = Path(__file__).resolve().parents[3]


def test_the_printed_command_sets_the_state_dir_and_parses(tmp_path: Path) -> None:
    state = tmp_path / "out demo"  # a space, as a user's path may have
    words = shlex.split(serve_again_command(state))
    assert words[0] == f"DCOPS_STATE_DIR={state / 'state'}"  # not DCOPS_<path>_DIR=...
    assert words[1:3] == ["dcops", "serve"]
    command = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    command.make_context("dcops serve", words[3:])  # raises on an unknown option or bad value


def test_the_closing_advice_prints_the_command_on_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dcops.cli import demo

    state = tmp_path / ("a-long-directory-name-" * 4)
    demo.console.width = 80
    print_next_steps(state)
    out = capsys.readouterr().out
    assert serve_again_command(state) in out.splitlines()
    assert "DCOPS_/" not in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_printed_command_runs(tmp_path: Path) -> None:
    """Run exactly what the demo prints (plus a free port) from the repository: the console
    answers with the demo's state directory."""
    port = _free_port()
    (tmp_path / "state").mkdir()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("DCOPS_STATE_DIR", None)
    env.pop("DCOPS_DB_URL", None)
    line = f"{serve_again_command(tmp_path)} --port {port}"
    proc = subprocess.Popen(["bash", "-c", line], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    answered = False
    try:
        deadline = time.monotonic() + 120  # a wait for start-up, not a speed assertion
        while time.monotonic() < deadline and proc.poll() is None and not answered:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    answered = r.status == 200
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert answered, output
    assert (tmp_path / "state" / "alerts.db").exists(), output  # it used the demo's state


def test_a_second_run_keeps_the_first_in_its_own_dated_folder(tmp_path: Path) -> None:
    from dcops.cli.demo import DEMO_USERS, keep_previous_run

    assert keep_previous_run(tmp_path) is None  # a first run: nothing to keep
    (tmp_path / "state" / "evidence" / "dr_drill").mkdir(parents=True)
    (tmp_path / "state" / "evidence" / "dr_drill" / "lab-app1-1.json").write_text("{}")
    (tmp_path / "state" / "alerts.db").write_bytes(b"first run's store")
    (tmp_path / "audit-lgsp").mkdir()
    (tmp_path / "console-logins.txt").write_text("analyst x\n")
    (tmp_path / "syslog.log").write_text("log\n")
    (tmp_path / "prometheus-data").mkdir()
    os.utime(tmp_path / "syslog.log", (1764672000, 1764672000))  # 2025-12-02 10:40 UTC
    first = keep_previous_run(tmp_path)
    assert first == tmp_path / "runs" / "20251202T104000Z"
    assert (first / "state" / "alerts.db").read_bytes() == b"first run's store"
    assert (first / "state" / "evidence" / "dr_drill" / "lab-app1-1.json").is_file()
    assert {p.name for p in first.iterdir()} == {
        "state", "audit-lgsp", "console-logins.txt", "syslog.log"}
    assert not (tmp_path / "state").exists() and (tmp_path / "prometheus-data").is_dir()
    # the same second again gets its own folder, never a merge into the first
    (tmp_path / "state").mkdir()
    (tmp_path / "syslog.log").write_text("log 2\n")
    os.utime(tmp_path / "syslog.log", (1764672000, 1764672000))
    os.utime(tmp_path / "state", (1764672000, 1764672000))
    assert keep_previous_run(tmp_path) == tmp_path / "runs" / "20251202T104000Z-2"
    assert (first / "syslog.log").read_text() == "log\n"
    assert "admin" in {role for _, role in DEMO_USERS}  # every console role has a demo login


def test_the_demo_prometheus_scrapes_only_what_the_demo_runs(tmp_path: Path) -> None:
    """The house configuration less the collectors the demo does not start (they paged the
    demo's analysts with three critical "collector down" alerts about the demo itself); promtool
    accepts it and finds the house rules through the absolute paths."""
    import shutil
    import subprocess

    import yaml

    d = demo.Demo(root=REPO, state=tmp_path, env={"PATH": "/usr/bin"})
    path = demo._prometheus_config(d)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    jobs = {j["job_name"] for j in cfg["scrape_configs"]}
    assert "dcops-syslog" in jobs and "dcops-snmp" in jobs
    assert not jobs & set(demo.NOT_RUN_BY_DEMO)
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (scripts/apt-packages.txt)"
    out = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr and "rules" in out.stdout + out.stderr

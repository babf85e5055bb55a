"""Every command line in the README's ```sh/```bash/```console blocks is checked by a rule here.

The rule is chosen by the program (`.venv/bin/` stripped; `cd DIR && ...` chains are followed):

- `dcops ...`: the sub-command exists, `--help` answers, and the whole argv parses (options,
  arguments, their types) without running it; the offline commands of RUN_FOR_REAL then run for
  real in-process against a private state dir, their `out/...` and output paths redirected there;
  `dcops lab ctl -- CMD` also checks CMD.
- `make T`: T is a Makefile target. `ansible-playbook`: `--syntax-check` of the exact command
  (and `--tags` must be tags of the playbook). `ansible-inventory`, `promtool`, `amtool`: run for
  real (the tools come from `make setup`). `molecule SUB` in a role: the scenario exists and
  `molecule SUB --help` answers. `pytest`: markers are declared and paths exist.
  `python scripts/...py`: it parses and declares (argparse) every option used. `scripts/...sh`:
  `bash -n`. `source FILE`: FILE exists. `export NAME=...`: NAME is read by dcops.
- Anything else fails: put a command that cannot run here in a plain ``` block instead.

What needs root, a lab or a remote service is checked here by parsing only; it runs for real in:
`make demo` (dcops demo: lab, site.yml, collectors, alerts, report); tests/integration/lab/
(`dcops lab up/status/ssh/ctl/down`); tests/integration/snmp/ (`dcops collect snmp/traps`, lab
SNMP agents, promtool/amtool); tests/integration/soc_ingest/ (`dcops collect syslog/logs/wazuh`);
tests/integration/ansible/test_molecule.py (`molecule test` of every role; the backup scenario
runs `dr_drill.yml`); tests/integration/compliance/ (`dcops audit run` on a lab);
tests/integration/alerts/ (`dcops serve` over TLS, PostgreSQL via DCOPS_DB_URL, silences in a
real Alertmanager); tests/unit/alerts/ (every `dcops alerts` action);
tests/unit/detect/test_detect_cli.py (`dcops detect scan`); tests/unit/collectors/test_tls_probe.py
(`dcops collect certs`).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from dcops.cli import app

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
VENV_BIN = REPO / ".venv" / "bin"
ANSIBLE_ENV = {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}

# dcops commands safe to run for real on any machine (no root, no lab, no network, state in a
# private directory); every other dcops command is parsed only.
RUN_FOR_REAL = (
    "dcops --help",
    "dcops inventory check",
    "dcops inventory show",
    "dcops iac plan",
    "dcops iac policies",
    "dcops detect check",
    "dcops detect test",
    "dcops collect node-targets",
    "dcops alerts list",
    "dcops alerts incidents list",
    "dcops alerts sla",
    "dcops alerts audit",
    "dcops alerts verify-audit",
    "dcops alerts users add",
    "dcops alerts users list",
    "dcops audit catalogue",
    "dcops audit run -i inventories/production",
    "dcops audit annual -i inventories/production",
)
STDIN = {"dcops alerts users add": "Readme-Test-Passw0rd\nReadme-Test-Passw0rd\n"}
# Options whose value is a file dcops writes: redirected into the private directory.
OUTPUT_OPTIONS = ("-o", "--output", "--out", "--svg", "--events-out")
# Environment variables dcops reads that are no option's envvar.
OTHER_ENV = {"DCOPS_STATE_DIR", "ANSIBLE_VAULT_PASSWORD_FILE"}
SHELL_OPERATORS = {"|", "||", ";", ">", ">>", "<", "&", "2>", "2>&1"}


def readme_commands() -> list[str]:
    """Command lines of the README's ```sh blocks (comments dropped, continuation lines joined)."""
    text = README.read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"^\s*```(?:sh|bash|console)\n(.*?)^\s*```", text, flags=re.S | re.M):
        pending = ""
        for raw in block.splitlines():
            line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].rstrip()
            line = line.strip().removeprefix("$ ").strip()
            if not line:
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append((pending + line).strip())
            pending = ""
        assert not pending, f"continuation line without an end: {pending}"
    return commands


COMMANDS = readme_commands()


@dataclass
class Ctx:
    """Where a command runs: its working directory and the private directory for real runs."""

    cwd: Path
    work: Path
    command: str


def run(argv: list[str], cwd: Path, timeout: float = 120, **env: str
        ) -> subprocess.CompletedProcess[str]:
    """Run a tool and return the finished process (never raises on its exit status)."""
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False, env=dict(os.environ, **env))


def output(proc: subprocess.CompletedProcess[str]) -> str:
    """The tail of a process's output, for assertion messages."""
    return (proc.stdout[-2000:] + proc.stderr[-2000:]).strip()


# --- dcops ------------------------------------------------------------------------------------

ROOT = typer.main.get_command(app)


def is_group(node: Any) -> bool:
    """Whether a command of the CLI has sub-commands."""
    return hasattr(node, "commands")


def resolve(argv: list[str]) -> tuple[list[str], Any, list[str]]:
    """Split `dcops A B --x y` into the sub-command path, its (click) command and the rest."""
    path: list[str] = []
    node: Any = ROOT
    rest = argv[1:]
    while is_group(node) and rest and rest[0] in node.commands:
        node = node.commands[rest[0]]
        path.append(rest.pop(0))
    return path, node, rest


def all_envvars(node: Any = ROOT) -> set[str]:
    """Every environment variable an option of the CLI reads."""
    found = {p.envvar for p in node.params if isinstance(p.envvar, str)}
    for sub in getattr(node, "commands", {}).values():
        found |= all_envvars(sub)
    return found


def real_args(argv: list[str], work: Path) -> list[str]:
    """The argv with `out/...` paths and output options pointed into the private directory."""
    args: list[str] = []
    redirect_next = False
    for word in argv[1:]:
        if word.startswith("out/"):
            args.append(str(work / word))
        elif redirect_next:
            args.append(str(work / "written" / Path(word).name))
        else:
            args.append(word)
        redirect_next = word in OUTPUT_OPTIONS
    return args


def check_dcops(argv: list[str], ctx: Ctx) -> None:
    path, command, rest = resolve(argv)
    if is_group(command):
        assert rest in ([], ["--help"]), f"`{shlex.join(argv)}`: no such dcops command"
    help_result = CliRunner().invoke(app, [*path, "--help"])
    assert help_result.exit_code == 0, help_result.output
    if not is_group(command):
        problem = ""
        try:  # parse exactly what the README says, without running it
            command.make_context(shlex.join(["dcops", *path]), list(rest))
        except typer.Exit as exc:
            problem = "" if exc.exit_code == 0 else f"exit {exc.exit_code}"
        except Exception as exc:  # the CLI's click raises UsageError, BadParameter, ...
            problem = getattr(exc, "format_message", exc.__str__)()
        assert not problem, f"`{shlex.join(argv)}` does not parse: {problem}"
    if path == ["lab", "ctl"]:
        check_argv(rest[rest.index("--") + 1:], ctx)
    line = shlex.join(argv)
    if line.startswith(RUN_FOR_REAL):
        state = ctx.work / "state"
        state.mkdir(parents=True, exist_ok=True)
        (ctx.work / "written").mkdir(exist_ok=True)
        stdin = next((v for k, v in STDIN.items() if line.startswith(k)), None)
        old = Path.cwd()
        os.chdir(ctx.cwd)
        try:
            result = CliRunner().invoke(app, real_args(argv, ctx.work), input=stdin,
                                        env={"DCOPS_STATE_DIR": str(state)})
        finally:
            os.chdir(old)
        assert result.exit_code == 0, f"`{line}` exited {result.exit_code}:\n" + (
            result.output[-3000:] + repr(result.exception))


# --- other programs ---------------------------------------------------------------------------

def check_make(argv: list[str], ctx: Ctx) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert len(argv) == 2, "one target per make line"
    assert re.search(rf"^{re.escape(argv[1])}:", makefile, flags=re.M), f"no make target {argv[1]}"


def playbook_tags(argv: list[str], cwd: Path) -> set[str]:
    """Tags of the playbook(s) in argv, from `ansible-playbook --list-tags`."""
    listing: list[str] = []
    skip = False
    for word in argv[1:]:
        if skip or word in ("--tags", "-t"):
            skip = not skip
            continue
        if not word.startswith("--tags="):
            listing.append(word)
    proc = run([str(VENV_BIN / "ansible-playbook"), *listing, "--list-tags"], cwd, **ANSIBLE_ENV)
    assert proc.returncode == 0, output(proc)
    return {t.strip() for group in re.findall(r"TAGS: \[(.*?)\]", proc.stdout)
            for t in group.split(",") if t.strip()}


def check_ansible_playbook(argv: list[str], ctx: Ctx) -> None:
    playbooks = [a for a in argv if a.endswith(".yml") and a.startswith("playbooks/")]
    assert playbooks, "no playbooks/*.yml named"
    for playbook in playbooks:
        assert (ctx.cwd / playbook).is_file(), playbook
    tags = [t for i, a in enumerate(argv) if a in ("--tags", "-t") for t in argv[i + 1].split(",")]
    if tags:  # --list-tags parses the playbooks as fully as --syntax-check
        missing = set(tags) - playbook_tags(argv, ctx.cwd)
        assert not missing, f"no such tag(s) in {playbooks}: {sorted(missing)}"
        return
    proc = run([str(VENV_BIN / "ansible-playbook"), *argv[1:], "--syntax-check"], ctx.cwd,
               **ANSIBLE_ENV)
    assert proc.returncode == 0, output(proc)


def check_ansible_inventory(argv: list[str], ctx: Ctx) -> None:
    proc = run([str(VENV_BIN / "ansible-inventory"), *argv[1:]], ctx.cwd, **ANSIBLE_ENV)
    assert proc.returncode == 0, output(proc)


def check_installed_tool(argv: list[str], ctx: Ctx) -> None:
    tool = shutil.which(argv[0])
    if tool is None:
        pytest.skip(f"{argv[0]} is not installed (make setup installs it)")
    proc = run([tool, *argv[1:]], ctx.cwd)
    assert proc.returncode == 0, output(proc)


def check_molecule(argv: list[str], ctx: Ctx) -> None:
    scenario = "default"
    if "-s" in argv:
        scenario = argv[argv.index("-s") + 1]
    assert (ctx.cwd / "molecule" / scenario / "molecule.yml").is_file(), \
        f"no molecule scenario {scenario} in {ctx.cwd}"
    proc = run([str(VENV_BIN / "molecule"), argv[1], "--help"], ctx.cwd)
    assert proc.returncode == 0, output(proc)


def check_pytest(argv: list[str], ctx: Ctx) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {m.split(":")[0] for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]}
    words = iter(argv[1:])
    for word in words:
        if word in ("-m", "-k"):
            value = next(words)
            if word == "-m":
                used = set(re.findall(r"[A-Za-z_]\w*", value)) - {"and", "or", "not"}
                assert used <= declared, f"undeclared marker(s) {sorted(used - declared)}"
        elif not word.startswith("-"):
            assert (ctx.cwd / word).exists(), f"no such test path {word}"


def check_python(argv: list[str], ctx: Ctx) -> None:
    script = ctx.cwd / argv[1]
    assert argv[1].startswith("scripts/") and argv[1].endswith(".py"), "only scripts/*.py"
    assert script.is_file(), argv[1]
    # the scripts' argparse options, read from the source (their --help imports heavy stacks)
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    options = {arg.value for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "attr", "") == "add_argument"
               for arg in node.args if isinstance(arg, ast.Constant)}
    assert options, f"{argv[1]} declares no argparse options"
    for word in argv[2:]:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{argv[1]} has no option {word}"


def check_shell_script(argv: list[str], ctx: Ctx) -> None:
    script = ctx.cwd / argv[0]
    assert script.is_file() and os.access(script, os.X_OK), f"{argv[0]} is not an executable file"
    proc = run(["bash", "-n", str(script)], ctx.cwd)
    assert proc.returncode == 0, output(proc)


def check_source(argv: list[str], ctx: Ctx) -> None:
    assert (ctx.cwd / argv[1]).is_file(), argv[1]


def check_export(argv: list[str], ctx: Ctx) -> None:
    for assignment in argv[1:]:
        name = assignment.split("=", 1)[0]
        assert name in all_envvars() | OTHER_ENV, f"dcops reads no environment variable {name}"


CHECKERS: dict[str, Callable[[list[str], Ctx], None]] = {
    "dcops": check_dcops,
    "make": check_make,
    "ansible-playbook": check_ansible_playbook,
    "ansible-inventory": check_ansible_inventory,
    "promtool": check_installed_tool,
    "amtool": check_installed_tool,
    "molecule": check_molecule,
    "pytest": check_pytest,
    "python": check_python,
    "source": check_source,
    "export": check_export,
}


def check_argv(argv: list[str], ctx: Ctx) -> None:
    """Check one simple command with the rule for its program."""
    assert argv, "empty command"
    program = argv[0]
    if program.startswith(".venv/bin/"):
        assert (ctx.cwd / program).is_file(), program
        program = program.removeprefix(".venv/bin/")
    if program.startswith("scripts/") and program.endswith(".sh"):
        check_shell_script(argv, ctx)
        return
    checker = CHECKERS.get(program)
    if checker is None:
        pytest.fail(f"`{ctx.command}`: no rule checks `{program}` commands; add one to "
                    "tests/unit/test_readme_commands.py or put the command in a plain ``` block")
    checker([program, *argv[1:]], ctx)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One private directory for the whole README, so later commands see earlier outputs."""
    return tmp_path_factory.mktemp("readme")


def test_readme_starts_with_the_two_commands() -> None:
    assert COMMANDS[:2] == ["make demo", "make test"]


def test_the_rules_see_every_sh_block() -> None:
    fences = re.findall(r"^\s*```(\w*)$", README.read_text(encoding="utf-8"), flags=re.M)
    languages = set(fences[0::2])
    assert languages <= {"", "sh", "yaml"}, f"code blocks the rules do not know: {languages}"
    assert len(COMMANDS) > 50


@pytest.mark.parametrize("command", COMMANDS,
                         ids=[f"{i:02d} {c[:60]}" for i, c in enumerate(COMMANDS)])
def test_readme_command(command: str, work: Path) -> None:
    words = shlex.split(command)
    operators = SHELL_OPERATORS & set(words)
    assert not operators and "$(" not in command and "`" not in command, \
        f"`{command}`: shell constructs {operators or '$(...)'} cannot be checked; use && only"
    ctx = Ctx(cwd=REPO, work=work, command=command)
    part: list[str] = []
    for word in [*words, "&&"]:
        if word != "&&":
            part.append(word)
            continue
        if part and part[0] == "cd":
            ctx.cwd = (ctx.cwd / part[1]).resolve()
            assert ctx.cwd.is_dir(), f"no directory {part[1]}"
        else:
            check_argv(part, ctx)
        part = []

"""Every dcops command, given bad input, prints one `error:` line and exits non-zero.

The commands run in-process through the entry point's own error path (dcops.cli.failures.run,
what `dcops` calls); a few run as the real `dcops` program to check stderr as a user sees it.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from dcops.cli import app, failures

REPO = Path(__file__).resolve().parents[3]
LAB = str(REPO / "inventories" / "lab")
NOPE = "/nonexistent/dcops-bad-input"
DCOPS = Path(sys.executable).parent / "dcops"

# (argv, expected exit code, a fragment of the error line). NOPE: a path that does not exist.
CASES: list[tuple[list[str], int, str]] = [
    (["serve", "--port", "80000"], 2, "'--port'"),
    (["serve", "--timezone", "Mars/Olympus"], 1, "unknown time zone 'Mars/Olympus'"),
    (["demo", "--console-port", "0"], 2, "'--console-port'"),
    (["demo", "--bus", "kafka"], 2, "'--bus'"),
    (["inventory", "check", "-i", NOPE], 1, "inventory not found"),
    (["inventory", "check", "-i", LAB, "--vault-password-file", NOPE], 1,
     "vault password file"),
    (["inventory", "merge", NOPE, LAB, "--out", "OUT"], 2, "not a directory"),
    (["inventory", "scaffold", "--province", "Atlantis", "--out", "OUT"], 2,
     "unknown province 'Atlantis'"),
    (["inventory", "show", "-i", NOPE], 1, "inventory not found"),
    (["lab", "image", "--bogus"], 2, "No such option"),
    (["lab", "up", "--mode", "bogus", "--name", "badin"], 1, "--mode bogus"),
    (["lab", "status", "--name", "Bad Name"], 1, "lab name"),
    (["lab", "down", "--name", "Bad Name"], 1, "lab name"),
    (["lab", "ssh", "nohost", "--name", "badin"], 1, "no running host"),
    (["lab", "ctl", "--name", "badin", "--", "true"], 1, "is down"),
    (["lab", "snmp-agents", "-i", NOPE], 1, "inventory not found"),
    (["lab", "audit", "up", "nohost", "--name", "badin"], 1, "no running host"),
    (["lab", "audit", "down", "--name", "Bad Name"], 1, "lab name"),
    (["lab", "audit", "status", "--name", "Bad Name"], 1, "lab name"),
    (["iac", "policies", "extra"], 2, "unexpected extra argument"),
    (["iac", "plan", "--stack", "bogus"], 1, "--stack"),
    (["iac", "plan", "--program-dir", "/nonexistent/pulumi"], 2, "--program-dir"),
    (["collect", "snmp", "-i", NOPE, "--once"], 1, "inventory not found"),
    (["collect", "snmp", "-i", LAB, "--shard", "3/2", "--once"], 2,
     "'--shard': '3/2': expected I between 1 and N=2"),
    (["collect", "snmp", "-i", LAB, "--shard", "2", "--once"], 2, "expected I/N"),
    (["collect", "snmp-targets", "--shards", "0"], 2, "'--shards'"),
    (["collect", "snmp-targets", "--shards", "3", "--listen", "127.0.0.1:65534"], 1,
     "shard 3 would need port 65536"),
    (["collect", "traps", "-i", NOPE], 1, "inventory not found"),
    (["collect", "node-targets", "-i", LAB, "--port", "70000"], 2, "'--port'"),
    (["collect", "syslog", "--udp-port", "70000"], 2, "--udp-port"),
    (["collect", "syslog", "--workers", "0"], 2, "'--workers'"),
    (["collect", "syslog", "--workers", "2", "--tcp-port", "-1", "--udp-port", "-1"], 1,
     "--workers 2: the workers receive TCP; --tcp-port is -1"),
    (["collect", "syslog", "--read-bytes", "10"], 2, "'--read-bytes'"),
    (["collect", "logs", "/etc/hostname", "--metrics-listen", "127.0.0.1:70000"], 1,
     "from 0 to 65535"),
    (["collect", "syslog", "--tls-port", "6514", "--udp-port", "-1", "--tcp-port", "-1"], 1,
     "--tls-cert"),
    (["collect", "logs", NOPE, "--once"], 1, "no such file"),
    (["collect", "certs", "--once"], 1, "nothing to probe"),
    (["collect", "wazuh", "agents", "--url", "https://127.0.0.1:1", "--password-file", NOPE], 1,
     "--password-file"),
    (["collect", "wazuh", "sca", "001", "--url", "https://127.0.0.1:1", "--password-file", NOPE],
     1, "--password-file"),
    (["collect", "wazuh", "alerts", NOPE, "--once"], 1, "no such file"),
    (["detect", "check", NOPE], 1, NOPE),
    (["detect", "test", NOPE], 1, NOPE),
    (["detect", "scan", NOPE], 1, NOPE),
    (["detect", "scan", "-", "--workers", "0"], 2, "'--workers'"),
    (["detect", "run", "--bus", "ftp://h/x", "--once"], 1, "--bus 'ftp://h/x': expected a spool"),
    (["detect", "run", "--bus", "nats://h:4222?replicas=2", "--once"], 1,
     "replicas=2: expected 1, 3 or 5"),
    (["detect", "run", "--worker-group", "a.b", "--once"], 1,
     "--worker-group 'a.b': expected letters, digits, - or _"),
    (["detect", "run", "--worker-group", "g", "--partitions", "0"], 2, "'--partitions'"),
    (["detect", "run", "--worker-group", "g", "--cross-host-rules", "maybe", "--once"], 1,
     "--cross-host-rules 'maybe': expected refuse or skip"),
    (["detect", "run", "--bus", "nats://h:4222?partitions=0", "--once"], 1,
     "partitions=0: expected 1 to 256"),
    (["detect", "run", "--bus", "nats://h:4222?partitions=x", "--once"], 1,
     "partitions='x': expected an integer"),
    (["detect", "run", "--metrics-listen", "127.0.0.1", "--once"], 1,
     "--metrics-listen '127.0.0.1': expected HOST:PORT with a port from 0 to 65535"),
    (["detect", "run", "--worker-group", "g", "--metrics-listen", "h:70000", "--once"], 1,
     "--metrics-listen 'h:70000': expected HOST:PORT"),
    (["collect", "logs", "/etc/hostname", "--once", "--bus", "nats://127.0.0.1:1", "--detect"], 1,
     "--detect with a nats:// bus"),
    (["collect", "syslog", "--bus", "sqlite://relative.db"], 1, "expected sqlite:///absolute"),
    (["alerts", "list", "--severity", "urgent"], 2, "'urgent' is not one of"),
    (["alerts", "list", "--status", "bogus"], 2, "'bogus' is not one of"),
    (["alerts", "list", "--since", "bogus"], 1, "--since"),
    (["alerts", "show", "99999"], 1, "99999"),
    (["alerts", "ack", "99999"], 1, "99999"),
    (["alerts", "investigate", "99999"], 1, "99999"),
    (["alerts", "assign", "99999", "bob"], 1, "99999"),
    (["alerts", "note", "99999", "text"], 1, "99999"),
    (["alerts", "resolve", "99999"], 1, "99999"),
    (["alerts", "silence", "99999", "--duration", "bogus"], 1, "--duration"),
    (["alerts", "verify-audit", "--anchors", NOPE], 1, NOPE),
    (["alerts", "audit", "--target", "bogus"], 1, "--target"),
    (["alerts", "sla", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "login", "bob", "--password-stdin", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "anchor", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "add", "bob", "--role", "king"], 2, "'king' is not one of"),
    (["alerts", "users", "list", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "role", "bob", "--role", "king"], 2, "'king' is not one of"),
    (["alerts", "users", "disable", "bob", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "token", "bob", "--out", "OUT", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "tokens", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "token-revoke", "99999"], 1, "99999"),
    (["alerts", "users", "map-os-user", "root", "bob", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "unmap-os-user", "root", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "unlock", "bob", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "users", "locks", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "incidents", "list", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "incidents", "merge", "1", "2"], 1, "incident"),
    (["alerts", "incidents", "split", "99999", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "trail", "init", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "trail", "seal", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "trail", "rotate-key", "--db", "bogus://x"], 1, "bogus://x"),
    (["alerts", "trail", "grant-app", "app", "--db", "bogus://x"], 1, "bogus://x"),
    (["change", "open", "--ticket", "CHG-1"], 1, "at least one host"),
    (["change", "open", "--ticket", "CHG-1", "--host", "h", "--duration", "3d"], 1, "at most"),
    (["change", "open", "--ticket", "CHG-1", "--host", "h", "--duration", "soon"], 1,
     "--duration"),
    (["change", "open", "--ticket", "CHG-1", "--host", "h", "--source", "puppet"], 2,
     "'puppet' is not one of"),
    (["change", "close", "99999"], 1, "change window 99999 does not exist"),
    (["change", "close"], 1, "expected a window ID or --ticket"),
    (["change", "list", "--db", "bogus://x"], 1, "bogus://x"),
    (["audit", "catalogue", "--regime", "xyz"], 2, "'xyz' is not one of"),
    (["audit", "run", "-i", LAB, "--out", "OUT", "--regime", "iso"], 2, "'iso' is not one of"),
    (["audit", "run", "-i", NOPE, "--out", "OUT"], 1, "inventory not found"),
    (["audit", "verify", NOPE + "/report.pdf"], 2, "no such file"),
    (["audit", "sign", NOPE + "/report.pdf", "--sign-key", NOPE, "--sign-cert", NOPE], 2,
     "no such file"),
    (["audit", "run", "-i", LAB, "--out", "OUT", "--from-evidence", NOPE], 1, "--from-evidence"),
    (["audit", "run", "-i", LAB, "--out", "OUT", "--ssh-concurrency", "0"], 2, "--ssh-concurrency"),
    (["audit", "run", "-i", LAB, "--out", "OUT", "--system", "lgsp", "--no-pdf", "--no-iac",
      "--lab", "badin"], 1, "--lab badin: no running lab"),
    (["audit", "run", "-i", LAB, "--out", "OUT", "--system", "lgsp", "--no-pdf", "--no-iac"], 1,
     "expected --lab NAME"),
    (["audit", "annual", "-i", LAB, "--out", "OUT", "--from-evidence", NOPE], 1,
     "--from-evidence"),
    (["audit", "crosscheck", "-i", LAB, "--out", "OUT", "--oscap-results", "lab-app1"], 2,
     "'lab-app1': expected HOST=FILE"),
    (["audit", "run", "-i", LAB, "--out", "OUT", "--crosscheck", NOPE], 2,
     "expected the crosscheck.json"),
    (["hosts", "trust", "nohost", "-i", NOPE], 1, "inventory not found"),
]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty state directory; no store URL or debug flag from the environment."""
    for name in ("DCOPS_DB_URL", "DCOPS_DEBUG", "DCOPS_TOKEN_FILE", "DCOPS_ALERTS_CONFIG",
                 "DCOPS_VAULT_PASSWORD_FILE", "DCOPS_WAZUH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(REPO)  # default paths (soc_rules/) are relative to the repository
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"not the password\n")))
    return tmp_path


@functools.cache
def _leaf_commands() -> frozenset[tuple[str, ...]]:
    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        subs = getattr(command, "commands", None)
        if subs is None:
            yield path
            return
        for name, sub in subs.items():
            yield from walk(sub, (*path, name))

    return frozenset(walk(typer.main.get_command(app), ()))


def _path(argv: list[str]) -> tuple[str, ...]:
    leaves = _leaf_commands()
    return next(tuple(argv[:n]) for n in range(1, 4) if tuple(argv[:n]) in leaves)


def test_every_command_has_a_bad_input_case() -> None:
    covered = {_path(argv) for argv, _, _ in CASES}
    assert _leaf_commands() - covered == set()


@pytest.mark.parametrize(("argv", "code", "fragment"), CASES,
                         ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_is_one_error_line(argv: list[str], code: int, fragment: str, state: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(state / "out") if a == "OUT" else a for a in argv]
    assert failures.run(app, argv) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "a dcops bug" not in errors[0]
    assert fragment in errors[0], errors[0]


def test_a_yaml_syntax_error_is_its_row_without_ansible_warnings(
        state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = state / "inv"
    shutil.copytree(LAB, inventory)
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text(encoding="utf-8") + "  broken: [unclosed\n",
                     encoding="utf-8")
    assert failures.run(app, ["inventory", "check", "-i", str(inventory)]) == 1
    out, err = capsys.readouterr()
    assert "malformed-yaml" in out and "hosts.yml:" in out
    assert "[WARNING]" not in out + err and "Traceback" not in out + err


def test_a_malformed_cloud_prefix_is_one_error_line_naming_file_line_and_key(
        state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = state / "inv"
    shutil.copytree(LAB, inventory)
    sites = inventory / "group_vars" / "all" / "sites.yml"
    lines = sites.read_text(encoding="utf-8").splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines, 1) if "cloud_prefix: 10.10.0.0/16" in text)
    lines[line - 1] = lines[line - 1].replace("10.10.0.0/16", "10.10.0/16")
    sites.write_text("".join(lines), encoding="utf-8")
    assert failures.run(app, ["iac", "plan", "-i", str(inventory), "--no-svg"]) == 1
    out, err = capsys.readouterr()
    errors = [text for text in err.splitlines() if text.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out + err, err
    assert f"group_vars/all/sites.yml:{line}: site 'primary-dc': cloud_prefix '10.10.0/16' is " \
        "not a network address (expected an IPv4 /16" in err, err
    assert "(key: dcops_sites.primary-dc.cloud_prefix)" in err, err


def test_a_malformed_auditors_note_stops_the_audit_before_collection(
        state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = state / "inv"
    shutil.copytree(LAB, inventory)
    notes = inventory / "compliance" / "notes.yml"
    notes.write_text("all:\n  vars:\n    dcops_compliance_notes:\n"
                     "      SRV-14: {kind: someday, vi: x, en: y}\n", encoding="utf-8")
    argv = ["audit", "run", "-i", str(inventory), "--out", str(state / "out"), "--no-ssh",
            "--no-pdf"]
    assert failures.run(app, argv) == 1
    out, err = capsys.readouterr()
    errors = [text for text in err.splitlines() if text.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out + err, err
    assert f"{notes}:4: kind 'someday': expected one of expected, gap" in errors[0], errors[0]
    assert "(key: all.vars.dcops_compliance_notes.SRV-14.kind)" in errors[0], errors[0]
    assert "ssh:" not in out and not (state / "out" / "evidence.json").exists()


def _dcops(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DCOPS), *argv], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_the_program_prints_one_line_and_debug_adds_the_traceback(state: Path) -> None:
    env = dict(os.environ, DCOPS_STATE_DIR=str(state / "state"))
    bad = _dcops("alerts", "list", "--severity", "urgent", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: ")
    missing = _dcops("inventory", "check", "-i", NOPE, env=env)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"error: {NOPE}: inventory not found"
    debug = _dcops("--debug", "inventory", "check", "-i", NOPE, env=env)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == missing.stderr.strip()


@pytest.fixture
def not_ssh() -> Iterator[int]:
    """A TCP port that accepts connections and answers garbage instead of an SSH banner."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"not ssh\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_unreachable_hosts_are_listed_and_the_exit_code_says_partial(
        state: Path, not_ssh: int) -> None:
    """The issue's case: hosts that do not answer SSH gave paramiko tracebacks and exit 0."""
    key = state / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known = state / "known_hosts"
    known.write_text(f"[127.0.0.1]:{not_ssh} {key.with_suffix('.pub').read_text().split()[0]} "
                     f"{key.with_suffix('.pub').read_text().split()[1]}\n", encoding="utf-8")
    config = state / "ssh_config"
    config.write_text("".join(
        f"Host {name}\n  HostName 127.0.0.1\n  Port {not_ssh}\n  User root\n"
        f"  IdentityFile {key}\n  UserKnownHostsFile {known}\n"
        for name in ("lab-app1", "lab-db1")), encoding="utf-8")
    env = dict(os.environ, DCOPS_STATE_DIR=str(state / "state"), COLUMNS="200")
    result = _dcops("audit", "run", "-i", LAB, "--ssh-config", str(config), "--system", "lgsp",
                    "--no-pdf", "--no-iac", "--out", str(state / "out"), env=env)
    assert result.returncode == failures.EXIT_PARTIAL, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Unreachable hosts" in result.stdout
    assert f"lab-app1 │ root@127.0.0.1:{not_ssh}" in result.stdout
    assert (state / "out" / "findings.json").is_file()  # the report is still written
    # progress: one line per phase, one per host with its outcome (issue 19, item 6)
    for phase in ("site", "manual", "backup", "soc", "ssh", "assess"):
        assert re.search(rf"✓ {phase}: \d+ ", result.stdout), (phase, result.stdout)
    for host in ("lab-app1", "lab-db1"):
        assert re.search(rf"✗ ssh {host} \(\d+\.\d s, \w+", result.stdout), result.stdout

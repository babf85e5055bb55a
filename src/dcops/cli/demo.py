"""`dcops demo` (what `make demo` runs): the whole toolkit on the embedded defaults, step by step.

Every step runs the same `dcops ...` or `ansible-playbook ...` command a user would, so the demo
doubles as a script of what to type. Whatever the demo starts is stopped on success, failure or
Ctrl-C, so it can run twice in a row.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from dcops.cli.common import configure_lab, vault_password_file
from dcops.errors import DcopsError

if TYPE_CHECKING:
    from dcops.lab import Lab

console = Console()
#: What carries the demo's events from the collectors to detection.
DemoBus = Literal["sqlite", "nats"]


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
    console_port: int = 8080
    wait: bool = False
    outputs: dict[str, Path] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    bus: str = "sqlite"  # or "nats": a 3-node JetStream cluster in the lab controller
    bus_url: str = ""

    def run(self, *argv: str, check: bool = True, capture: bool = False,
            timeout: float | None = 900, quiet: bool = False, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run a command as a user would, showing it first (unless `quiet`)."""
        if not quiet:
            console.print(f"[dim]$ {shlex.join(argv)}[/]", highlight=False)
        try:
            proc = subprocess.run(argv, cwd=self.root, env=self.env, text=True, check=False,
                                  capture_output=capture, timeout=timeout, input=input)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DemoError(f"`{shlex.join(argv)}`: {exc}") from exc
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
        console.print(f"[dim]$ {shlex.join(argv)} &  (log: {self.state / log})[/]",
                      highlight=False)
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


# ---- helpers shared by the steps ---------------------------------------------------------------
LAB_INVENTORY = "inventories/lab"
LAB_VAULT = "inventories/lab/.vault-pass-LAB-ONLY"
COMMUNE_ATTACKER = "10.78.1.50"  # an address of the Phường Biên Hòa ward office (lab: 10.78.1.0/24)
TARGET_HOST, TARGET_ADDRESS = "lab-app1", "10.77.0.11"  # an LGSP application server
COMMUNE_ROUTER = "lab-bien-hoa-rtr1"  # the ward office's commune router (v2c traps)
WAN_UPLINK = "GigabitEthernet0/0/0"
DEMO_USERS = (("analyst", "analyst"), ("auditor", "auditor"), ("engineer", "engineer"),
              ("admin", "admin"))

# What the scenario must raise: rule title -> what caused it (the demo fails if one is missing).
EXPECTED_ALERTS = {
    "SSH Brute Force From One Source": "12 failed SSH logins from a ward office address",
    "SSH Login Success After Failures": "then a successful login from the same address",
    "Sudoers Policy Changed Through Sudo": "a drop-in written to /etc/sudoers.d",
    "Network Interface Flapping": f"{COMMUNE_ROUTER} {WAN_UPLINK} down and flapping (traps)",
    "TLS Certificate Close To Expiry": "the LGSP API certificate expires in 10 days",
}


def _lab(demo: Demo) -> Lab:
    from dcops.lab import Lab

    return Lab(demo.lab_name)


def _ctl(demo: Demo, *argv: str) -> list[str]:
    """argv of a command run in the lab's controller namespace (10.77.0.1)."""
    return _lab(demo).ctl_argv(list(argv))


def _dcops_exe() -> str:
    return str(Path(sys.executable).with_name("dcops"))


def _wait(what: str, ready: Callable[[], bool], timeout: float,
          procs: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    """Wait until `ready()`; fail with `what` if it takes longer or a process died."""
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {what}"):
        while time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    args = proc.args if isinstance(proc.args, list) else [proc.args]
                    raise DemoError(f"{what}: `{shlex.join(str(a) for a in args)}` "
                                    f"exited {proc.returncode} (see its log)")
            if ready():
                return
            time.sleep(0.5)
    raise DemoError(f"{what}: not ready after {timeout:.0f} s")


def _http_ok(demo: Demo, url: str) -> bool:
    """True when `url` answers 2xx from inside the controller namespace."""
    code = "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)"
    proc = subprocess.run(_ctl(demo, sys.executable, "-c", code, url), capture_output=True,
                          check=False, timeout=20)
    return proc.returncode == 0


def _local_http_ok(url: str) -> bool:
    """True when `url` answers (any HTTP status) in this machine's own namespace."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 - a fixed http://127.0.0.1 URL
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _prometheus_targets(demo: Demo) -> str:
    """One line of Prometheus' scrape health per job, as seen from the controller."""
    code = ("import json,sys,urllib.request,collections; t=json.load(urllib.request.urlopen("
            "sys.argv[1], timeout=5))['data']['activeTargets']; c=collections.Counter("
            "(x['labels']['job'], x['health']) for x in t); "
            "print('; '.join(f'{j} {h} {n}' for (j, h), n in sorted(c.items())))")
    proc = subprocess.run(_ctl(demo, sys.executable, "-c", code,
                               "http://127.0.0.1:9090/api/v1/targets"),
                          capture_output=True, text=True, check=False, timeout=30)
    return proc.stdout.strip() or f"unavailable ({proc.stderr.strip()[-200:]})"


def _log_has(demo: Demo, log: str, text: str) -> bool:
    path = demo.state / log
    return path.exists() and text in path.read_text(errors="replace")


def _ssh(demo: Demo, host: str, command: str, *, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    """`dcops lab ssh HOST -- COMMAND`, as a user types it."""
    return demo.dcops("lab", "ssh", "--name", demo.lab_name, host, "--", command, check=check,
                      capture=True)


def _alerts(demo: Demo) -> list[dict[str, Any]]:
    proc = demo.run(_dcops_exe(), "alerts", "list", "--json", "--limit", "1000", capture=True,
                    quiet=True)
    data = json.loads(proc.stdout or "[]")
    return list(data["alerts"] if isinstance(data, dict) else data)


# ---- the steps ------------------------------------------------------------------------------
def step_lab_up(demo: Demo) -> str:
    """The lab: 5 hosts in systemd mode, SNMP agents of DC gear and ward routers, SOC/NOC stack."""
    demo.cleanups.append(lambda: _ignore(demo.dcops("lab", "down", "--name", demo.lab_name,
                                                    check=False)))
    demo.dcops("lab", "up", "--name", demo.lab_name, "--hosts", "5", "--mode", "systemd")
    demo.dcops("lab", "status", "--name", demo.lab_name)
    demo.dcops("inventory", "check", "-i", "inventories/production")
    demo.dcops("inventory", "check", "-i", LAB_INVENTORY)
    demo.dcops("inventory", "show", "-i", "inventories/production")
    dcops = _dcops_exe()
    # Everything below runs in the controller namespace, where the lab hosts send their logs.
    agents = demo.spawn(*_ctl(demo, dcops, "lab", "snmp-agents", "-i", LAB_INVENTORY),
                        log="snmp-agents.log")
    _wait("SNMP agents", lambda: _log_has(demo, "snmp-agents.log", "serving until"), 60,
          [agents])
    # SQLite: the syslog collector detects over the shared spool; NATS: every collector forwards
    # through an outbox of its own and the detection worker group reads the bus.
    bus_procs = _start_nats_bus(demo, [agents]) if demo.bus == "nats" else []
    poller = demo.spawn(*_ctl(demo, dcops, "collect", "snmp", "-i", LAB_INVENTORY,
                              "--listen", "127.0.0.1:9716", "--interval", "10",
                              *_bus_args(demo, "snmp")),
                        log="collect-snmp.log")
    traps = demo.spawn(*_ctl(demo, dcops, "collect", "traps", "-i", LAB_INVENTORY,
                             "--listen", "127.0.0.1:162", "--metrics-listen", "127.0.0.1:9717",
                             *_bus_args(demo, "traps")),
                       log="collect-traps.log")
    syslog = demo.spawn(*_ctl(demo, dcops, "collect", "syslog", "--listen", "10.77.0.1",
                              "--udp-port", "514", "--tcp-port", "514",
                              *(_bus_args(demo, "syslog") or ["--detect"]),
                              "-i", LAB_INVENTORY, "--metrics-listen", "127.0.0.1:9719"),
                        log="collect-syslog.log")
    # The webhook's bearer token: one secrets file read by dcops serve and by Alertmanager (the
    # house alertmanager.yml with its credentials_file pointed at it).
    token_file = demo.state / "webhook-token"
    token_file.unlink(missing_ok=True)
    token_file.touch(0o600)
    token_file.write_text(secrets.token_urlsafe(32) + "\n")
    am_cfg = demo.state / "alertmanager.yml"
    am_cfg.write_text((demo.root / "monitoring/alertmanager/alertmanager.yml").read_text()
                      .replace("/etc/prometheus/dcops-webhook-token", str(token_file)))
    hook = demo.spawn(*_ctl(demo, dcops, "serve", "-i", LAB_INVENTORY, "--host", "127.0.0.1",
                            "--port", "8080", "--webhook-token-file", str(token_file)),
                      log="serve-webhook.log")
    prom_dir, am_dir = demo.state / "prometheus-data", demo.state / "alertmanager-data"
    prom = demo.spawn(*_ctl(demo, "prometheus",
                            f"--config.file={_prometheus_config(demo)}",
                            f"--storage.tsdb.path={prom_dir}",
                            "--web.listen-address=127.0.0.1:9090"), log="prometheus.log")
    am = demo.spawn(*_ctl(demo, "prometheus-alertmanager",
                          f"--config.file={am_cfg}",
                          f"--storage.path={am_dir}", "--cluster.listen-address=",
                          "--web.listen-address=127.0.0.1:9093"), log="alertmanager.log")
    # The analysts' console, reachable from this machine (same alert store as the webhook).
    console_proc = demo.spawn(dcops, "serve", "-i", LAB_INVENTORY, "--host", "127.0.0.1",
                              "--port", str(demo.console_port),
                              "--prometheus-url", "http://127.0.0.1:9090",  # the NOC view
                              log="serve-console.log")
    procs = [agents, *bus_procs, poller, traps, syslog, hook, prom, am, console_proc]
    _wait("SNMP poller /metrics", lambda: _http_ok(demo, "http://127.0.0.1:9716/metrics"), 60,
          procs)
    _wait("Prometheus", lambda: _http_ok(demo, "http://127.0.0.1:9090/-/ready"), 90, procs)
    _wait("Alertmanager", lambda: _http_ok(demo, "http://127.0.0.1:9093/-/ready"), 60, procs)
    _wait("syslog collector", lambda: _log_has(demo, "collect-syslog.log", "10.77.0.1"), 60,
          procs)
    url = f"http://127.0.0.1:{demo.console_port}/login"
    _wait(f"the console on 127.0.0.1:{demo.console_port}", lambda: _local_http_ok(url), 60, procs)
    demo.procs = procs
    if demo.bus == "nats":
        return ("5 lab hosts (systemd); 8 SNMP agents; poller, trap receiver and syslog collector "
                f"on the NATS bus, {NATS_WORKERS} detection workers, a 3-node JetStream cluster, "
                "Prometheus and Alertmanager in the lab controller (10.77.0.1)")
    return ("5 lab hosts (systemd); 8 SNMP agents; poller, trap receiver, syslog collector with "
            "detection, Prometheus and Alertmanager in the lab controller (10.77.0.1)")


NATS_WORKERS, NATS_PARTITIONS, NATS_GROUP = 2, 4, "demo"


def _start_nats_bus(demo: Demo, procs: list[subprocess.Popen[bytes]]
                    ) -> list[subprocess.Popen[bytes]]:
    """`--bus nats`: a 3-node JetStream cluster on the controller's loopback (plain NATS, no TLS:
    only the controller namespace reaches it), then a detection worker group on it."""
    from dcops.lab.natscluster import bus_url, write_cluster

    root = demo.state / "nats"
    shutil.rmtree(root, ignore_errors=True)
    demo.cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    nodes = write_cluster(root)
    started = [demo.spawn(*_ctl(demo, "nats-server", "-c", str(n.conf)), log=f"nats-{n.name}.log")
               for n in nodes]
    for n in nodes:
        _wait(f"NATS node {n.name}", partial(_http_ok, demo, n.health_url), 60,
              [*procs, *started])
    demo.bus_url = f"{bus_url(nodes)}&partitions={NATS_PARTITIONS}"  # subjects by host
    for i in range(1, NATS_WORKERS + 1):
        log = f"detect-worker-{i}.log"
        started.append(demo.spawn(*_ctl(demo, _dcops_exe(), "detect", "run", "--bus", demo.bus_url,
                                        "--worker-group", NATS_GROUP, "--partitions",
                                        str(NATS_PARTITIONS), "--worker-id", f"demo-{i}",
                                        "-i", LAB_INVENTORY), log=log))
        _wait(f"detection worker {i}", partial(_log_has, demo, log, "detect: worker"), 90,
              [*procs, *started])
    return started


def _bus_args(demo: Demo, collector: str) -> list[str]:
    """A collector's `--bus` and outbox with `--bus nats`; nothing on the SQLite spool."""
    if demo.bus != "nats":
        return []
    return ["--bus", demo.bus_url, "--spool", str(demo.state / "state" / f"outbox-{collector}.db")]


def bus_line(demo: Demo) -> str:
    """Which bus carried the scenario's events (printed after the scenario)."""
    if demo.bus != "nats":
        return (f"Event bus / Kênh sự kiện: SQLite spool {demo.state / 'state' / 'spool.db'} "
                "(detection in the syslog collector)")
    code = ("import json,sys,urllib.request; d=json.load(urllib.request.urlopen(sys.argv[1], "
            "timeout=5)); print(sum(s['state']['messages'] for a in d.get('account_details', []) "
            "for s in a.get('stream_detail', []) if s['name'].endswith('_EVENTS')))")
    proc = subprocess.run(_ctl(demo, sys.executable, "-c", code,
                               "http://127.0.0.1:18222/jsz?streams=true"),
                          capture_output=True, text=True, check=False, timeout=30)
    held = proc.stdout.strip() or "?"
    return (f"Event bus / Kênh sự kiện: NATS JetStream, 3-node cluster {demo.bus_url} "
            f"({held} events in the stream); detection / phát hiện: {NATS_WORKERS} workers of "
            f"group {NATS_GROUP}")


# Collectors of the house Prometheus configuration that the demo does not run: scraped, they
# would page the analysts with "collector down" alerts about the demo itself.
NOT_RUN_BY_DEMO = ("dcops-logs", "dcops-wazuh", "dcops-detect")


def _prometheus_config(demo: Demo) -> Path:
    """monitoring/prometheus/prometheus.yml without the jobs of collectors the demo does not
    run, its relative paths made absolute (the copy lives in the demo's state folder)."""
    import yaml

    base = demo.root / "monitoring" / "prometheus"
    cfg = yaml.safe_load((base / "prometheus.yml").read_text(encoding="utf-8"))
    cfg["rule_files"] = [str(base / r) for r in cfg.get("rule_files") or []]
    jobs = []
    for job in cfg.get("scrape_configs") or []:
        if job.get("job_name") in NOT_RUN_BY_DEMO:
            continue
        for sd in job.get("file_sd_configs") or []:
            sd["files"] = [str(base / f) for f in sd.get("files") or []]
        jobs.append(job)
    cfg["scrape_configs"] = jobs
    out = demo.state / "prometheus.yml"
    out.write_text("# Written by dcops demo from monitoring/prometheus/prometheus.yml\n"
                   + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return out


def step_iac(demo: Demo) -> str:
    """Pulumi under mocks: both DCs and the WAN from the example province, policies, diagram."""
    svg = demo.state / "topology.svg"
    demo.dcops("iac", "plan", "-i", "inventories/production", "--stack", "primary",
               "--svg", str(svg))
    demo.dcops("iac", "plan", "-i", "inventories/production", "--stack", "backup", "--no-svg")
    if not svg.is_file() or svg.stat().st_size == 0:
        raise DemoError(f"the topology diagram {svg} was not written")
    demo.outputs["Topology diagram / Sơ đồ"] = svg
    return f"primary and backup DC plans pass the policies; diagram {svg}"


def _playbook(demo: Demo, playbook: str, *extra: str) -> None:
    """Run a playbook; its callback (ansible.cfg) records the run as a change window, so the
    alerts the run itself causes (accounts it creates) reach the queue as expected changes."""
    demo.env["DCOPS_CHANGE_TICKET"] = f"DEMO-{Path(playbook).stem}"
    try:
        demo.run("ansible-playbook", "-i", LAB_INVENTORY, "-e", f"dcops_lab_name={demo.lab_name}",
                 "--vault-password-file", LAB_VAULT, playbook, *extra, timeout=2400)
    finally:
        demo.env.pop("DCOPS_CHANGE_TICKET", None)


def expected_summary(alerts: list[dict[str, Any]]) -> str:
    """How many alerts of the queue are the demo's own changes (linked to a change window)."""
    expected = [a for a in alerts if a.get("change_window_id") is not None]
    return (f"{len(alerts)} alerts in the queue, {len(expected)} of them expected changes of "
            f"the demo's own playbook runs / thay đổi dự kiến (dcops change list)")


def step_configure(demo: Demo) -> str:
    """The site playbook converges the lab; a first backup, then a restore drill."""
    _playbook(demo, "playbooks/site.yml")
    _ssh(demo, "lab-app1", "sudo systemctl start dcops-backup.service")
    _playbook(demo, "playbooks/dr_drill.yml", "-e", "dr_drill_host=lab-app1")
    drills = sorted((demo.state / "state" / "evidence" / "dr_drill").glob("lab-app1-*.json"))
    if not drills:
        raise DemoError("the DR drill wrote no evidence record")
    record = json.loads(drills[-1].read_text())
    if record.get("result") != "pass":
        raise DemoError(f"the DR drill did not pass: {drills[-1]}")
    demo.outputs["DR drill evidence / Bằng chứng diễn tập"] = drills[-1]
    return (f"baseline, PKI, backup, SNMP agents, monitoring on 5 hosts; DR drill of lab-app1: "
            f"{record.get('files_verified')} files verified, RTO {record.get('rto_seconds')} s")


def step_scenario(demo: Demo) -> str:
    """An incident plays out while the collectors and detection run."""
    lab = _lab(demo)
    ctl = lab.ctl_netns
    # (a) SSH brute force from the Phường Biên Hòa ward office, then a success.
    console.print("[bold]a) SSH brute force from a ward office address, then a login[/]")
    demo.run("ip", "-n", ctl, "address", "replace", f"{COMMUNE_ATTACKER}/32", "dev", "lo")
    _ssh(demo, TARGET_HOST, "sudo ip route replace 10.78.0.0/16 via 10.77.0.1")
    attacker_key = demo.state / "attacker_ed25519"
    if not attacker_key.exists():
        demo.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(attacker_key),
                 capture=True)
    ssh_opts = ["-b", COMMUNE_ATTACKER, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                "-o", "IdentitiesOnly=yes"]
    users = ("admin", "oracle", "postgres", "test", "ubuntu", "guest", "deploy", "lgsp",
             "backup", "support", "operator", "www")
    for n, user in enumerate(users):
        demo.run(*_ctl(demo, "ssh", *ssh_opts, "-o", "StrictHostKeyChecking=no",
                       "-o", "UserKnownHostsFile=/dev/null", "-i", str(attacker_key),
                       f"{user}@{TARGET_ADDRESS}", "true"), check=False, capture=True,
                 quiet=n > 0)
    console.print(f"[dim]  ... {len(users)} attempts with guessed user names[/]")
    demo.run(*_ctl(demo, "ssh", *ssh_opts, "-o", f"UserKnownHostsFile={lab.known_hosts_path}",
                   "-i", str(lab.key_path), f"ansible@{TARGET_ADDRESS}", "true"))
    # (b) A sudoers drop-in that gives an account root without a password.
    console.print("[bold]b) a sudoers change[/]")
    _ssh(demo, TARGET_HOST, "echo 'dcops-admin ALL=(ALL) NOPASSWD: ALL' | "
                            "sudo tee /etc/sudoers.d/90-demo >/dev/null")
    _ssh(demo, TARGET_HOST, "sudo rm -f /etc/sudoers.d/90-demo")
    # (c) The ward office router's WAN uplink goes down, then flaps (its own linkDown/linkUp traps).
    console.print(f"[bold]c) {COMMUNE_ROUTER} {WAN_UPLINK} down, then flapping[/]")
    from dcops.inventory import load_inventory

    router = load_inventory(LAB_INVENTORY, vault_password_file()).devices[COMMUNE_ROUTER]
    community = router.snmp.community.reveal() if router.snmp and router.snmp.community else ""
    for n, state in enumerate(("down", "up", "down", "up", "down", "up")):
        oid, oper = ("1.3.6.1.6.3.1.1.5.3", "2") if state == "down" else (
            "1.3.6.1.6.3.1.1.5.4", "1")
        demo.run(*_ctl(demo, "snmptrap", "-v", "2c", "-c", community,
                       f"--clientaddr={router.address}", "127.0.0.1:162", str(n + 1), oid,
                       "1.3.6.1.2.1.2.2.1.1.1", "i", "1", "1.3.6.1.2.1.2.2.1.7.1", "i", "1",
                       "1.3.6.1.2.1.2.2.1.8.1", "i", oper,
                       "1.3.6.1.2.1.31.1.1.1.1.1", "s", WAN_UPLINK), quiet=n > 0)
        time.sleep(0.5)
    # (d) The LGSP API endpoint serves a certificate that expires in 10 days.
    console.print("[bold]d) a certificate close to expiry[/]")
    _ssh(demo, TARGET_HOST,
         "sudo openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 "
         "-subj /CN=lgsp-api.lab -addext subjectAltName=DNS:lgsp-api.lab,IP:10.77.0.11 "
         "-keyout /run/demo-api.key -out /run/demo-api.crt 2>/dev/null && "
         "sudo systemd-run --unit dcops-demo-api --collect openssl s_server -accept 443 "
         "-cert /run/demo-api.crt -key /run/demo-api.key -www -quiet")
    _wait("the LGSP API endpoint", lambda: subprocess.run(
        _ctl(demo, sys.executable, "-c",
             "import socket,sys; socket.create_connection((sys.argv[1], 443), 2)",
             TARGET_ADDRESS), capture_output=True, check=False).returncode == 0, 30)
    # The certificate probe runs from now on (Prometheus scrapes it on 127.0.0.1:9718); its
    # one-shot table is what an engineer sees (exit 1: a certificate is expiring).
    targets = demo.state / "tls-targets.yml"
    targets.write_text(f"- {{name: {TARGET_HOST}, target: '{TARGET_ADDRESS}:443', "
                       "sni: lgsp-api.lab}\n")
    demo.spawn(*_ctl(demo, _dcops_exe(), "collect", "certs", "--targets-file", str(targets),
                     "--listen", "127.0.0.1:9718", "--interval", "300",
                     *_bus_args(demo, "certs")), log="collect-certs.log")
    demo.run(*_ctl(demo, _dcops_exe(), "collect", "certs", "--targets-file", str(targets),
                   "--once", "--no-spool"), check=False)
    # The detections reach the queue.
    missing: list[str] = []

    def all_there() -> bool:
        titles = {a.get("rule_title") for a in _alerts(demo)}
        missing[:] = [t for t in EXPECTED_ALERTS if t not in titles]
        return not missing

    try:
        _wait("the scenario's alerts", all_there, 120, demo.procs)
    except DemoError:
        raise DemoError("alerts missing from the queue: " + ", ".join(missing)) from None
    if demo.bus == "nats":
        console.print(bus_line(demo), highlight=False, soft_wrap=True)
    return "every expected alert is in the queue: " + "; ".join(EXPECTED_ALERTS)


def step_alerts(demo: Demo) -> str:
    """The queue as an analyst sees it, and the console's address and logins."""
    demo.dcops("alerts", "list", "--open")
    demo.dcops("change", "list")
    # The certificate probe started last: give Prometheus one scrape interval (30 s) to see it.
    with contextlib.suppress(DemoError):
        _wait("Prometheus to scrape the certificate probe",
              lambda: "dcops-tls up" in _prometheus_targets(demo), 45)
    console.print(f"Prometheus targets (job health count) / Mục tiêu Prometheus: "
                  f"{_prometheus_targets(demo)}", highlight=False)
    console.print("[dim](node: node_exporter on the example province's servers, not in the lab)[/]")
    logins = demo.state / "console-logins.txt"
    lines = []
    for user, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        demo.run(_dcops_exe(), "alerts", "users", "add", user, "--role", role,
                 "--password-stdin", input=password + "\n", capture=True)
        lines.append(f"{user:10} {password}   ({role})")
    logins.write_text("\n".join(lines) + "\n")
    logins.chmod(0o600)
    url = f"http://127.0.0.1:{demo.console_port}"
    console.print(Panel("\n".join([f"Web console / Bảng điều khiển: {url}",
                                   f"NOC view / Giám sát mạng: {url}/noc",
                                   "Demo logins (this run only) / Tài khoản demo:", *lines]),
                        title="Triage console"))
    demo.outputs["Console logins / Tài khoản"] = logins
    if demo.wait:
        console.print(f"[bold]The console is up at {url}: press Enter to go on and clean up "
                      "/ nhấn Enter để tiếp tục[/]")
        with contextlib.suppress(EOFError):
            input()
    else:
        console.print("[dim]The console stops with the demo: `dcops demo --wait` keeps it up "
                      "until you press Enter.[/]")
    return f"{expected_summary(_alerts(demo))}; console at {url}"


def step_report(demo: Demo) -> str:
    """The LGSP compliance report (Circular 12/2022 level 3), from evidence collected now."""
    out = demo.state / "audit-lgsp"
    demo.dcops("audit", "run", "-i", LAB_INVENTORY, "--system", "lgsp", "--lab", demo.lab_name,
               "--out", str(out), check=False)
    html, pdf = out / "report.html", out / "report.pdf"
    for path in (html, pdf):
        if not path.is_file() or path.stat().st_size == 0:
            raise DemoError(f"the compliance report {path} was not written")
    demo.outputs["Compliance report (HTML) / Báo cáo"] = html
    demo.outputs["Compliance report (PDF) / Báo cáo"] = pdf
    return f"LGSP report: {html} and {pdf}"


NEXT_STEPS = """\
[bold]Data-centre engineers / Kỹ sư trung tâm dữ liệu[/]
  dcops inventory show -i inventories/production     sites, systems (cấp độ), devices
  dcops iac plan --stack backup                      the backup DC under Pulumi mocks
  dcops lab up --hosts 5 --mode systemd              your own lab, then ansible-playbook ...
[bold]Security analysts / Chuyên viên giám sát an toàn thông tin[/]
  dcops alerts list --open                           the queue (also at the web console)
  dcops detect test                                  every Sigma rule against its samples
  dcops collect syslog --help                        collectors: syslog, logs, traps, snmp, wazuh
[bold]Auditors / Kiểm toán viên[/]
  dcops audit catalogue --level 3                    the controls of level 3
  dcops audit run -i inventories/lab --system lgsp --lab NAME --out DIR
See README.md for one guide per user.
"""


def serve_again_command(state: Path) -> str:
    """The shell command that serves the demo's alerts again from its state directory."""
    return (f"DCOPS_STATE_DIR={shlex.quote(str(state / 'state'))} "
            f"dcops serve -i inventories/lab")


def print_next_steps(state: Path) -> None:
    """The closing advice; the command to serve the alerts again on one unwrapped line."""
    console.print(Panel(NEXT_STEPS, title="What next / Bước tiếp theo"))
    console.print(f"The demo's alerts stay in {state / 'state'}: browse them again (logins in "
                  f"{state / 'console-logins.txt'}) with:", highlight=False, markup=False)
    console.print(serve_again_command(state), soft_wrap=True, highlight=False, markup=False)


STEPS: list[Step] = [
    ("Lab and SOC/NOC stack up / Khởi động phòng thí nghiệm", step_lab_up),
    ("DC and WAN plan (Pulumi) / Kế hoạch hạ tầng", step_iac),
    ("Configure servers, DR drill / Cấu hình, diễn tập khôi phục", step_configure),
    ("Incident scenario, detection / Kịch bản tấn công, phát hiện", step_scenario),
    ("Alert queue, console / Hàng đợi cảnh báo", step_alerts),
    ("Compliance report LGSP / Báo cáo tuân thủ", step_report),
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
    if demo.outputs:
        files = Table(title="Files / Tệp kết quả")
        files.add_column("what / nội dung")
        files.add_column("path / đường dẫn", overflow="fold")
        for what, path in demo.outputs.items():
            files.add_row(what, str(path))
        console.print(files)


# What one run leaves that is worth keeping: its alert store, trail, spool and evidence (state/),
# its report, its logins and logs. Metrics databases are the lab's and are dropped.
RUN_FILES = ("state", "audit-lgsp", "console-logins.txt", "topology.svg")
SCRATCH = ("prometheus-data", "alertmanager-data", "nats")


def keep_previous_run(state: Path) -> Path | None:
    """Move the previous run's files to STATE/runs/<its oldest file, UTC>/ so that a new run starts
    empty without erasing the last one's alerts, trail and DR-drill evidence."""
    kept = [state / name for name in RUN_FILES if (state / name).exists()]
    kept += sorted(state.glob("*.log"))
    if not kept:
        return None
    started = min(path.stat().st_mtime for path in kept)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    dest = state / "runs" / stamp
    n = 1
    while dest.exists():
        n += 1
        dest = state / "runs" / f"{stamp}-{n}"
    dest.mkdir(parents=True)
    for path in kept:
        path.rename(dest / path.name)
    return dest


def _fresh_state(demo: Demo) -> None:
    """Stop what a previous run may have left (killed without cleanup), keep its files in their
    own dated folder, then start empty."""
    demo.dcops("lab", "down", "--name", demo.lab_name, check=False)
    for child in SCRATCH:
        shutil.rmtree(demo.state / child, ignore_errors=True)
    kept = keep_previous_run(demo.state)
    if kept is not None:
        console.print(f"Previous run kept / Lần chạy trước được giữ tại: {kept}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `dcops demo` to the root application."""

    @app.command("demo")
    def demo_command(
        state: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(
            "out/demo"),
        lab_name: Annotated[str, typer.Option(help="Name of the demo lab.")] = "dcops-demo",
        console_port: Annotated[int, typer.Option(
            help="Port of the web console on 127.0.0.1.", min=1, max=65535)] = 8080,
        wait: Annotated[bool, typer.Option(
            "--wait/--no-wait",
            help="Pause with the console up (until Enter) before cleaning up.")] = False,
        bus: Annotated[DemoBus, typer.Option(
            help="sqlite: the embedded spool (default); nats: a 3-node NATS JetStream cluster "
            "in the lab controller, collectors forwarding to it and 2 detection workers "
            "(docs/scale.md).")] = "sqlite",
    ) -> None:
        """Run the whole toolkit on the embedded defaults (what `make demo` runs)."""
        root = Path.cwd()
        state = state.resolve()
        state.mkdir(parents=True, exist_ok=True)
        venv_bin = str(Path(sys.executable).parent)  # ansible-playbook, dcops of this virtualenv
        env = dict(os.environ, DCOPS_STATE_DIR=str(state / "state"), PYTHONUNBUFFERED="1",
                   PATH=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]),
                   ANSIBLE_CONFIG=str(root / "ansible.cfg"))
        configure_lab(state / "state")  # dcops.lab in this process too
        if not sys.stdout.isatty():  # logs and CI: wide enough for the tables
            env["COLUMNS"] = env.get("COLUMNS", "150")
            console.width = int(env["COLUMNS"])
        demo = Demo(root=root, state=state, lab_name=lab_name, env=env,
                    console_port=console_port, wait=wait, bus=bus)
        if os.geteuid() != 0:
            console.print("[bold red]dcops demo needs root[/] (network namespaces for the lab)")
            raise typer.Exit(1)
        try:
            _fresh_state(demo)
            run_demo(demo, STEPS)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: everything the demo started has been stopped[/]")
            raise typer.Exit(130) from None
        except DcopsError as exc:
            console.print(f"[bold red]demo failed:[/] {exc}")
            raise typer.Exit(1) from None
        print_next_steps(state)

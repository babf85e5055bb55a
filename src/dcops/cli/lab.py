"""CLI: `dcops lab image|up|status|down|ssh|ctl|audit|snmp-agents`: the lab on this machine."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Lab name (several labs can coexist).")]


def _err(msg: str) -> None:
    Console(stderr=True).print(f"[dim]{msg}[/]", highlight=False)


lab_app = typer.Typer(help="Local lab: test hosts in network namespaces (phòng thí nghiệm).",
                      no_args_is_help=True)


@lab_app.callback()
def _lab_roots() -> None:
    """Local lab: test hosts in network namespaces (phòng thí nghiệm)."""
    from dcops.cli.common import configure_lab

    configure_lab()


@lab_app.command("image")
def image(force: Annotated[bool, typer.Option(help="Rebuild even when cached.")] = False,
          prune: Annotated[bool, typer.Option(
              help="Remove cached images of other recipes that no lab uses.")] = False,
          ) -> None:
    """Build (once) the base Debian root and the lab apt repository, cached outside the repo."""
    from dcops.lab.aptrepo import ensure_repo
    from dcops.lab.image import ensure_image
    from dcops.lab.recipe import Recipe

    recipe = Recipe()
    base = ensure_image(recipe, force=force, log=_err)
    repo = ensure_repo(base, recipe.image_name, log=_err)
    Console().print(f"base image {recipe.image_name}: {base}\napt repository: {repo}",
                    highlight=False)
    if prune:
        from pathlib import Path

        from dcops.lab import running_labs
        from dcops.lab.image import prune as prune_cache

        keep = {recipe.image_name}
        for running in running_labs():
            state = running.state()
            if state is not None:
                keep.add(Path(state.base).parent.name)
        prune_cache(keep, log=_err)


@lab_app.command("up")
def up(name: NameOpt = "lab",
       hosts: Annotated[int, typer.Option(help="Number of hosts (3 default, 5 named).")] = 3,
       mode: Annotated[str, typer.Option(help="chroot (sshd as PID 1) or systemd (nspawn).")]
       = "chroot") -> None:
    """Start the lab's hosts (idempotent) and write its SSH config and inventory."""
    from dcops.lab import Lab

    the_lab = Lab(name)
    started = the_lab.up(hosts=hosts, mode=mode, log=_err)
    out = Console()
    out.print(f"lab [bold]{name}[/]: {len(started)} hosts up ({mode})", highlight=False)
    out.print(f"  ssh -F {the_lab.ssh_config_path} {started[0].name}", highlight=False)
    out.print(f"  ansible-playbook -i inventories/lab -i {the_lab.inventory_path} ...",
              highlight=False)


@lab_app.command("status")
def status(name: NameOpt = "lab",
           as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
           ) -> None:
    """Show each host: address, mode, up/down, whether sshd answers."""
    from dcops.lab import Lab

    rows = Lab(name).status()
    if as_json:
        typer.echo(json.dumps({"lab": name, "hosts": [asdict(r) for r in rows]}, indent=2))
        return
    if not rows:
        Console().print(f"lab {name} is down (không chạy)")
        return
    table = Table(title=f"Lab {name} / Phòng thí nghiệm {name}")
    for col in ("Host / Máy", "Address / Địa chỉ", "Mode / Chế độ", "State / Trạng thái",
                "sshd"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.host, r.address, r.mode,
                      "[green]up[/]" if r.up else "[red]down[/]",
                      "[green]answering[/]" if r.sshd else "[red]silent[/]")
    Console().print(table)


@lab_app.command("down")
def down(name: NameOpt = "lab",
         every: Annotated[bool, typer.Option("--all", help="Every lab with state.")] = False,
         ) -> None:
    """Stop the lab: no process, mount or namespace is left behind."""
    from dcops.lab import Lab, running_labs

    for the_lab in running_labs() if every else [Lab(name)]:
        the_lab.down(log=_err)


@lab_app.command("ssh")
def ssh(host: Annotated[str, typer.Argument(help="Host name or address.")],
        command: Annotated[list[str] | None, typer.Argument(help="Command to run.")] = None,
        name: NameOpt = "lab") -> None:
    """Open a shell (or run a command) on a lab host as the `ansible` user."""
    from dcops.lab import Lab

    argv = Lab(name).ssh_argv(host, *(command or []))
    os.execvp(argv[0], argv)  # noqa: S606 - replaces dcops with ssh; argv is a list



@lab_app.command("ctl", context_settings={"allow_extra_args": True,
                                          "ignore_unknown_options": True})
def ctl(command: Annotated[list[str], typer.Argument(help="Command (after --) to run.")],
        name: NameOpt = "lab") -> None:
    """Run a command inside the lab's controller namespace (address 10.77.0.1), e.g. a collector."""
    from dcops.lab import Lab

    the_lab = Lab(name)
    if the_lab.state() is None:
        from dcops.errors import LabError

        raise LabError(f"lab {name} is down: run `dcops lab up --name {name}` first")
    argv = the_lab.ctl_argv(command)
    os.execvp(argv[0], argv)  # noqa: S606 - replaces dcops with the command; argv is a list


audit_app = typer.Typer(help="Audit sidecar: a lab host's own auditd where the kernel accepts it "
                        "(one per machine; docs/lab.md).", no_args_is_help=True)
lab_app.add_typer(audit_app, name="audit")


@audit_app.command("up")
def audit_up(host: Annotated[str, typer.Argument(help="Host name or address.")],
             name: NameOpt = "lab",
             rules: Annotated[Path | None, typer.Option(
                 help="Rules file on this machine (default: the host's /etc/audit/audit.rules).")]
             = None) -> None:
    """Start HOST's auditd in its namespaces but this machine's pid namespace; load its rules."""
    from dcops.lab import Lab

    record = Lab(name).audit_up(host, rules)
    out = Console()
    out.print(f"audit sidecar for {record.host} (lab {name}): auditd pid {record.pid}, "
              f"{len(record.rules)} rules loaded / đã nạp {len(record.rules)} quy tắc",
              highlight=False)
    for line in record.dropped:
        _err(f"not loaded (control line, kernel-wide): {line}")
    out.print(f"  log: {record.log_path}", highlight=False)


@audit_app.command("down")
def audit_down(name: NameOpt = "lab") -> None:
    """Delete the sidecar's rules, stop its auditd, restore the kernel's audit flag."""
    from dcops.lab import Lab

    record = Lab(name).audit_down()
    Console().print(f"audit sidecar of lab {name}: "
                    + (f"stopped ({record.host})" if record else "none running / không chạy"),
                    highlight=False)


@audit_app.command("status")
def audit_status(host: Annotated[str | None, typer.Argument(
                     help="Also ask the kernel (auditctl -s, -l) through this host's auditctl; "
                     "default: the sidecar's host.")] = None,
                 name: NameOpt = "lab",
                 as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
                 ) -> None:
    """Show the sidecar (host, daemon, rules) and the kernel's audit state; exit 1 if none runs."""
    from dcops.lab import Lab
    from dcops.lab import auditd_sidecar as sidecar

    the_lab = Lab(name)
    record = the_lab.audit_status()
    running = record is not None and sidecar.alive(record)
    via = host or (record.host if running and record else None)
    kernel, kernel_rules = the_lab.audit_kernel(via) if via else ({}, [])
    if as_json:
        doc = {"lab": name, "running": running,
               "host": record.host if record else None, "pid": record.pid if record else None,
               "rules": record.rules if record else [],
               "dropped": record.dropped if record else [],
               "log": str(record.log_path) if record else None,
               "kernel": kernel, "kernel_rules": kernel_rules}
        typer.echo(json.dumps(doc, indent=2))
    else:
        out = Console()
        if record is None:
            out.print(f"lab {name}: no audit sidecar / không có sidecar kiểm toán")
        else:
            state = "running / đang chạy" if running else "daemon gone / tiến trình đã dừng"
            out.print(f"lab {name}: audit sidecar for {record.host}, auditd pid {record.pid} "
                      f"({state}), {len(record.rules)} rules / quy tắc\n  log: "
                      f"{record.log_path}", highlight=False)
        if via:
            out.print(f"kernel / nhân: enabled {kernel.get('enabled', '?')}, audit daemon pid "
                      f"{kernel.get('pid', '?')}, {len(kernel_rules)} rules loaded / quy tắc "
                      "đã nạp", highlight=False)
            for line in kernel_rules:
                out.print(f"  {line}", highlight=False, markup=False)
    if not running:
        raise typer.Exit(1)


@lab_app.command("snmp-agents")
def snmp_agents(
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory directory.")]
    = Path("inventories/lab"),
    device: Annotated[list[str] | None, typer.Option(
        help="Only this device (repeatable; default every device of the inventory).")] = None,
    workdir: Annotated[Path | None, typer.Option(
        help="Where snmpd keeps its configuration (default $DCOPS_STATE_DIR/lab/snmp-agents).")]
    = None,
) -> None:
    """Run real snmpd agents answering for the inventory's simulated devices until stopped.

    Each device is served on its loopback address and port with its own Vault credentials
    (SNMPv3 authPriv users, or the lab's v2c community for the commune and ward routers).
    """
    import signal
    import threading

    from dcops.cli.common import state_dir, vault_password_file
    from dcops.inventory import load_inventory
    from dcops.lab.snmp import agents_for_devices

    model = load_inventory(inventory, vault_password_file())
    wanted = set(device or ())
    unknown = wanted - set(model.devices)
    if unknown:
        from dcops.errors import ConfigError

        raise ConfigError(f"--device {', '.join(sorted(unknown))}: not a device of {inventory}")
    devices = [d for n, d in sorted(model.devices.items()) if not wanted or n in wanted]
    agents = agents_for_devices(devices, workdir or state_dir() / "lab" / "snmp-agents")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for agent in agents:
            agent.start()
        table = Table(title="SNMP agents / Tác tử SNMP")
        for col in ("Device / Thiết bị", "Site / Địa điểm", "Address / Địa chỉ", "SNMP"):
            table.add_column(col)
        for d in devices:
            version = d.snmp.version if d.snmp else "?"
            table.add_row(d.name, d.site, f"{d.address}:{d.snmp.port if d.snmp else '?'}",
                          f"v{version}")
        Console().print(table)
        Console().print("serving until Ctrl-C / SIGTERM", highlight=False)
        while not stop.wait(1.0):
            for agent in agents:
                if agent.proc is not None and agent.proc.poll() is not None:
                    from dcops.errors import LabError

                    raise LabError(f"snmpd in {agent.workdir} exited with "
                                   f"{agent.proc.returncode}")
    finally:
        for agent in agents:
            agent.stop()


def register(app: typer.Typer) -> None:
    """Add the `lab` command group to the root application."""
    app.add_typer(lab_app, name="lab")

"""CLI: `dcops hosts trust HOST`: record a host's SSH key deliberately, after checking it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dcops.cli.common import VAULT_ENV
from dcops.errors import HostKeyError

console = Console(soft_wrap=True)  # a fingerprint is never broken across lines
hosts_app = typer.Typer(help="SSH host keys of the inventory's servers (known_hosts).",
                        no_args_is_help=True)

InventoryOpt = Annotated[Path, typer.Option("-i", "--inventory",
                                            help="Inventory directory (Ansible YAML).")]
VaultOpt = Annotated[Path | None, typer.Option(
    "--vault-password-file", envvar=VAULT_ENV,
    help="Vault password file (default: the inventory's .vault-pass-* files).")]
KnownOpt = Annotated[Path | None, typer.Option(
    "--known-hosts", help="known_hosts file to write (default: the host's UserKnownHostsFile "
                          "from the inventory's ssh args, else ~/.ssh/known_hosts).")]
ExpectOpt = Annotated[str | None, typer.Option(
    "--expect", help="The fingerprint (SHA256:...) read on the host's console; anything else "
                     "is refused.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Record without asking.")]


@hosts_app.command("trust")
def trust(host: Annotated[str, typer.Argument(help="Inventory name or address of the server.")],
          inventory: InventoryOpt = Path("inventories/production"),
          vault_password_file: VaultOpt = None, known_hosts: KnownOpt = None,
          expect: ExpectOpt = None, yes: YesOpt = False) -> None:
    """Show the key HOST presents, and record it in known_hosts once you confirm it.

    Compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the
    host's own console (not over the network you are checking) before you answer yes.
    """
    from paramiko import ProxyCommand

    from dcops.compliance.collect import hostkeys
    from dcops.compliance.collect.ssh import targets_from_hostvars
    from dcops.inventory import check_inventory
    from dcops.inventory.ansible_io import read

    model, _ = check_inventory(inventory, vault_password_file)
    raw = read(inventory, vault_password_file)
    target = next((t for t in targets_from_hostvars(model, raw.hostvars)
                   if host in (t.name, t.address)), None)
    if target is None:
        raise HostKeyError(f"{inventory}: no server {host!r} (servers: "
                           f"{', '.join(sorted(model.hosts)) or 'none'})")
    file = known_hosts or (Path(target.known_hosts.split()[0]).expanduser() if target.known_hosts
                           else Path(hostkeys.DEFAULT_KNOWN_HOSTS[0]).expanduser())
    sock = None
    if target.proxy_command:
        sock = ProxyCommand(target.proxy_command.replace("%h", target.address)
                            .replace("%p", str(target.port)).replace("%r", target.user))
    key = hostkeys.presented_key(target.address, target.port, sock)
    presented = hostkeys.fingerprint(key)
    where = f"{target.name} ({target.address}:{target.port})"
    recorded = (hostkeys.expected(hostkeys.HostId(target.name, target.address, target.port,
                                                  str(file)), hostkeys.load([file]))
                if file.is_file() else [])
    console.print(f"{where} presents / máy chủ trình khóa: {key.get_name()} {presented}",
                  highlight=False)
    if f"{key.get_name()} {presented}" in recorded:
        console.print(f"[green]already trusted[/] / đã tin cậy: {file}", highlight=False)
        return
    if recorded:
        console.print(f"[bold red]CHANGED[/] / đã thay đổi: {file} records "
                      f"{'; '.join(recorded)}", highlight=False)
    if expect is not None and expect.strip() != presented:
        raise HostKeyError(f"{where}: presented {presented}, expected {expect.strip()} "
                           "(--expect): not recorded")
    if not yes and not typer.confirm(f"Record this key for {target.name} in {file}?"):
        console.print("not recorded / chưa ghi nhận")
        raise typer.Exit(1)
    hostkeys.record(file, target.address, target.port, key, names=(target.name,))
    console.print(f"[green]recorded[/] / đã ghi nhận {key.get_name()} {presented} in {file}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `hosts` group to the root application."""
    app.add_typer(hosts_app, name="hosts")

"""CLI: `dcops inventory check|show|scaffold` over the site model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from dcops.cli.common import VAULT_ENV
from dcops.model import Secret, SiteKind, SiteModel

DEFAULT_INVENTORY = Path("inventories/production")

InventoryOpt = Annotated[Path, typer.Option("-i", "--inventory",
                                            help="Inventory directory (Ansible YAML).")]
VaultOpt = Annotated[Path | None, typer.Option(
    "--vault-password-file", envvar=VAULT_ENV,
    help="Vault password file (default: the inventory's single .vault-pass-* file).")]

inventory_app = typer.Typer(help="Validate and show the site model (sites, systems, devices).",
                            no_args_is_help=True)


@inventory_app.command("check")
def check(inventory: InventoryOpt = DEFAULT_INVENTORY, vault_password_file: VaultOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Report every problem of the inventory at once, with file, line and key; exit 1 if any."""
    from dcops.inventory import check_inventory  # ansible-core: imported only when used

    model, problems = check_inventory(inventory, vault_password_file)
    if as_json:
        typer.echo(json.dumps([{"kind": p.kind, "file": p.source.file if p.source else None,
                                "line": p.source.line if p.source else None, "key": p.key,
                                "message": p.message} for p in problems], ensure_ascii=False,
                              indent=2))
    else:
        console = Console()
        if problems:
            table = Table(title=f"{len(problems)} problem(s) / lỗi trong inventory {inventory}")
            for column in ("where / vị trí", "key / khóa", "kind / loại", "problem / mô tả"):
                table.add_column(column, overflow="fold")
            for p in problems:
                table.add_row(str(p.source or inventory), p.key, p.kind, p.message)
            console.print(table)
        else:
            console.print(f"[green]OK[/] {inventory}: {len(model.sites)} sites, "
                          f"{len(model.systems)} systems, {len(model.hosts)} servers, "
                          f"{len(model.devices)} network devices / không có lỗi")
    if problems:
        raise typer.Exit(1)


@inventory_app.command("merge")
def merge(a: Annotated[Path, typer.Argument(
              metavar="A", help="Inventory of former province A (kept first).")],
          b: Annotated[Path, typer.Argument(
              metavar="B", help="Inventory of former province B.")],
          out: Annotated[Path, typer.Option("--out", help="New directory for the merged "
                                            "inventory (written only without conflicts).")],
          name: Annotated[str | None, typer.Option(
              "--name", help="The merged province's name (default: A's).")] = None,
          overwrite: Annotated[bool, typer.Option(
              "--overwrite", help="Replace an earlier merge in --out.")] = False,
          force: Annotated[bool, typer.Option(
              "--force", help="Rename B's hosts, sites and systems that A also has (suffix: "
              "B's directory name), then merge if nothing else conflicts.")] = False,
          vault_password_file: VaultOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Merge two former provinces' inventories (2025 merger): report duplicate hosts, address
    overlaps, systems and sites in both; write --out only if clean. Exit 0 merged, 1 conflicts."""
    from dcops.cli.inventory_merge import run_merge

    run_merge(a, b, out, name, overwrite, vault_password_file, as_json, force)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def model_as_dict(model: SiteModel) -> dict[str, Any]:
    """The site model as plain data, secrets masked."""
    def one(obj: Any) -> Any:
        data = asdict(obj)
        data.pop("source", None)
        return _jsonable(data)

    return {
        "settings": one(model.settings),
        "sites": {k: one(v) for k, v in model.sites.items()},
        "systems": {k: one(v) for k, v in model.systems.items()},
        "hosts": {k: one(v) for k, v in model.hosts.items()},
        "devices": {k: one(v) for k, v in model.devices.items()},
    }


@inventory_app.command("show")
def show(inventory: InventoryOpt = DEFAULT_INVENTORY, vault_password_file: VaultOpt = None,
         as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
         table: Annotated[bool, typer.Option("--table", help="Tables instead of a tree.")] = False,
         ) -> None:
    """Print the sites, systems and devices of the site model as a tree (or tables, or JSON)."""
    from dcops.inventory import check_inventory  # ansible-core: imported only when used

    model, problems = check_inventory(inventory, vault_password_file)
    if as_json:
        typer.echo(json.dumps(model_as_dict(model), ensure_ascii=False, indent=2))
        return
    console = Console()
    systems = Table(title="Information systems / Hệ thống thông tin")
    for column in ("system", "tên hệ thống", "level / cấp độ", "owner / chủ quản", "DR", "zones",
                   "servers"):
        systems.add_column(column, overflow="fold")
    for s in model.systems.values():
        zones = ", ".join(z.value for z in s.zones)
        servers = str(len(model.hosts_of_system(s.name)))
        systems.add_row(s.name, s.display_name_vi, str(s.level), s.owner, "yes" if s.dr else "no",
                        zones, servers)
    console.print(systems)
    if table:
        devices = Table(title="Network devices / Thiết bị mạng")
        for column in ("device", "site", "class", "address", "SNMP"):
            devices.add_column(column)
        for d in sorted(model.devices.values(), key=lambda d: (d.site, d.name)):
            devices.add_row(d.name, d.site, d.device_class, d.address,
                            f"v{d.snmp.version}" if d.snmp else "-")
        console.print(devices)
    else:
        root = Tree(f"[bold]{model.settings.province_vi or model.settings.province}[/] "
                    f"({model.settings.environment})")
        order = [SiteKind.PRIMARY_DC, SiteKind.BACKUP_DC, SiteKind.LAB, SiteKind.DISTRICT,
                 SiteKind.COMMUNE]
        for kind in order:
            for site in model.sites_of(kind):
                if kind is SiteKind.COMMUNE and site.parent in model.sites:
                    continue  # shown under its district
                _site_branch(root, model, site.name)
        console.print(root)
    if problems:
        console.print(f"[yellow]{len(problems)} problem(s): run `dcops inventory check`[/]")


def _site_branch(parent: Tree, model: SiteModel, name: str) -> None:
    site = model.sites[name]
    label = f"[bold cyan]{site.display_name_vi}[/] / {site.display_name} [dim]({site.kind})[/]"
    branch = parent.add(label)
    for host in sorted((h for h in model.hosts.values() if h.site == name), key=lambda h: h.name):
        zone = host.zone.value if host.zone else "-"
        branch.add(f"server {host.name} {host.address} zone={zone} "
                   f"systems={','.join(host.systems) or '-'}")
    for device in model.devices_at(name):
        branch.add(f"device {device.name} {device.address} {device.device_class}")
    for child in model.sites.values():
        if child.parent == name:
            _site_branch(branch, model, child.name)


@inventory_app.command("scaffold")
def scaffold_cmd(
    province: Annotated[str, typer.Option(
        "--province", help='One of the 34 provinces, with or without diacritics ("Đồng Nai", '
        '"Dong Nai") or its code (75).')],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the inventory to.")],
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Write into a non-empty --out (replaces the scaffold's files only).")]
    = False,
) -> None:
    """Write a starting inventory for a province: both DCs, a site and router per commune, ward
    and special zone (official code and name), and example systems; it passes `inventory check`
    and `iac plan` as written."""
    from dcops.inventory.divisions import UnknownDivisionError
    from dcops.inventory.scaffold import scaffold

    try:
        result = scaffold(province, out, overwrite=overwrite)
    except UnknownDivisionError as exc:
        raise typer.BadParameter(str(exc), param_hint="--province") from None
    typer.echo(f"wrote {result.path}: {result.province.name} (code {result.province.code:02d}), "
               f"{result.sites} sites ({result.communes} communes, wards and special zones + "
               f"2 DCs), {result.servers} example servers, {result.devices} network devices "
               f"({result.communes} commune routers) in {len(result.files)} files / đã tạo")
    typer.echo("next: replace the EXAMPLE systems, DC locations and secrets (dcops_example: "
               f"true), then `dcops inventory check -i {result.path}` and "
               f"`dcops iac plan -i {result.path}`")


def register(app: typer.Typer) -> None:
    """Add the `inventory` group to the root application."""
    app.add_typer(inventory_app, name="inventory")

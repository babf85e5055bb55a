"""CLI: `dcops iac plan` runs the Pulumi program offline and shows what it would create."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from dcops.cli.common import VAULT_ENV, state_dir

if TYPE_CHECKING:
    from dcops.iac import Plan, PlannedResource, PolicyViolation

DEFAULT_INVENTORY = Path("inventories/production")

iac_app = typer.Typer(help="Infrastructure as code (Pulumi on OpenStack), run offline under mocks.",
                      no_args_is_help=True)


def _rule_text(p: Mapping[str, Any], tags: Mapping[str, str]) -> str:
    del tags
    ports = p.get("portRangeMin")
    return (f"{p.get('direction')} {p.get('protocol')}/{int(ports) if ports else 'any'} "
            f"{'from' if p.get('direction') == 'ingress' else 'to'} "
            f"{p.get('remoteIpPrefix', 'any')}")


def _instance_text(p: Mapping[str, Any], tags: Mapping[str, str]) -> str:
    twin = f" standby of {tags['twin']}" if tags.get("twin") else ""
    return f"{p.get('name')} {p.get('flavorName', '')}{twin}"


def _port_text(p: Mapping[str, Any], tags: Mapping[str, str]) -> str:
    del tags
    ips = [str(f.get("ipAddress", "")) for f in p.get("fixedIps") or [] if isinstance(f, dict)]
    return f"{p.get('name', '')} {' '.join(ips)}"


#: Short type -> one-line summary of what the resource is.
_DESCRIBE: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], str]] = {
    "networking.SecGroupRule": _rule_text,
    "networking.Subnet": lambda p, _: str(p.get("cidr", "")),
    "compute.Instance": _instance_text,
    "blockstorage.Volume": lambda p, _: f"{int(p.get('size', 0))} GB",
    "networking.SubnetRoute": lambda p, _: f"{p.get('destinationCidr', '')} via "
                                           f"{p.get('nextHop', '')}",
    "networking.Port": _port_text,
    "vpnaas.EndpointGroup": lambda p, _: f"{p.get('type', '')} x{len(p.get('endpoints') or [])}",
    "vpnaas.SiteConnection": lambda p, _: f"peer {p.get('peerAddress', '')}",
}


def _describe(res: PlannedResource) -> str:
    describe = _DESCRIBE.get(res.kind)
    return describe(res.props, res.tags) if describe else str(res.props.get("name", ""))


def _print_plan(console: Console, plan: Plan, violations: list[PolicyViolation],
                warnings: list[str]) -> None:
    tree = Tree(f"[bold]{plan.stack}[/] stack ({plan.site}): {len(plan.resources)} resources / "
                "tài nguyên sẽ tạo")
    for system, zones in sorted(plan.grouped().items()):
        count = sum(len(v) for v in zones.values())
        branch = tree.add(f"[bold cyan]{system}[/] ({count})")
        for zone, items in sorted(zones.items()):
            zbranch = branch.add(f"[bold]{zone}[/] ({len(items)})")
            for res in sorted(items, key=lambda r: (r.kind, r.name)):
                zbranch.add(f"{res.kind} [dim]{res.name}[/] {_describe(res)}", highlight=False)
    console.print(tree)
    table = Table(title="Policies / Chính sách")
    for column in ("policy / chính sách", "result / kết quả", "violations / vi phạm"):
        table.add_column(column)
    from dcops.iac import POLICIES

    failed = Counter(v.policy for v in violations)
    for policy in POLICIES:
        n = failed.get(policy.name, 0)
        table.add_row(f"{policy.name}: {policy.description}",
                      "[red]FAIL / không đạt[/]" if n else "[green]pass / đạt[/]", str(n))
    console.print(table)
    for v in violations:
        console.print(f"[red]✗[/] {v}", highlight=False)
    for warning in warnings:
        console.print(f"[yellow]warning / cảnh báo:[/] {warning}", highlight=False)


@iac_app.command("policies")
def policies_cmd() -> None:
    """List the policies `plan`, the tests and the CrossGuard pack enforce."""
    from dcops.iac import POLICIES

    table = Table(title="Policies / Chính sách (pulumi/policy, dcops.iac.policies)")
    table.add_column("name / tên")
    table.add_column("checks / kiểm tra")
    table.add_column("scope / phạm vi")
    for p in POLICIES:
        scope = "+".join(k for k, f in (("resource", p.resource_check),
                                        ("stack", p.stack_check)) if f is not None)
        table.add_row(p.name, p.description, scope)
    Console().print(table)


@iac_app.command("plan")
def plan_cmd(
    stack: Annotated[str, typer.Option("--stack", help="primary or backup")] = "primary",
    inventory: Annotated[Path, typer.Option("-i", "--inventory", help="Inventory directory.")]
    = DEFAULT_INVENTORY,
    vault_password_file: Annotated[Path | None, typer.Option(
        "--vault-password-file", envvar=VAULT_ENV)] = None,
    svg: Annotated[Path | None, typer.Option(
        "--svg", help="Topology SVG of both DCs and the WAN "
        "(default $DCOPS_STATE_DIR/iac/topology.svg).")] = None,
    no_svg: Annotated[bool, typer.Option("--no-svg", help="Do not write the SVG.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Plan and violations as JSON.")]
    = False,
    program_dir: Annotated[Path | None, typer.Option(
        "--program-dir", envvar="DCOPS_PULUMI_DIR", exists=True, file_okay=False,
        help="The Pulumi project (default: the nearest pulumi/ with a Pulumi.yaml upwards).")]
    = None,
) -> None:
    """Run the Pulumi program for one DC under mocks; show resources, policies and topology.

    Exits 1 when a policy fails, like `pulumi preview --policy-pack pulumi/policy` would.
    """
    from dcops.iac import PolicyContext, evaluate, plan
    from dcops.iac.layout import STACK_KINDS, IacInputError
    from dcops.iac.svg import peer_groups, render
    from dcops.inventory import load_inventory

    if stack not in STACK_KINDS:
        raise IacInputError(f"--stack {stack!r}: expected one of {', '.join(STACK_KINDS)}")
    model = load_inventory(inventory, vault_password_file)
    result = plan(model, stack, program_dir=program_dir)
    violations = evaluate(result, PolicyContext.from_model(model, stack))
    warnings: list[str] = []  # address-plan mistakes are errors now (load_inventory/plan)
    svg_path: Path | None = None
    if not no_svg:
        other = plan(model, "backup" if stack == "primary" else "primary",
                     program_dir=program_dir)
        pair = [result, other] if stack == "primary" else [other, result]
        svg_path = svg or state_dir() / "iac" / "topology.svg"
        svg_path.parent.mkdir(parents=True, exist_ok=True)
        svg_path.write_text(render(pair, f"dcops {model.settings.province or 'province'}",
                                   peer_groups(model)),
                            encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "svg": str(svg_path) if svg_path else None,
                               "violations": [asdict(v) for v in violations],
                               "warnings": warnings},
                              ensure_ascii=False, indent=2, default=str))
    else:
        console = Console()
        _print_plan(console, result, violations, warnings)
        if svg_path:
            console.print(f"topology / sơ đồ: {svg_path}", highlight=False)
    if violations:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the iac commands to the root application."""
    app.add_typer(iac_app, name="iac")

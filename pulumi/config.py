"""The one place the program reads Pulumi config (and, through it, the inventory)."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from dcops.iac.layout import STACK_KINDS
from dcops.iac.stackconfig import StackConfig, parse_peer_addresses
from dcops.model.site import SiteModel

PROJECT_DIR = Path(__file__).resolve().parent


def _network_id(name: str) -> pulumi.Output[str]:
    """The UUID of the external (provider) network called `name`."""
    import pulumi_openstack as openstack

    return openstack.networking.get_network_output(name=name, external=True).id


def refuse_examples(model: SiteModel, stack: str) -> None:
    """`pulumi up` never runs with an example inventory or the example stack secrets (sealed
    with the published passphrase); a preview only warns (docs/security.md)."""
    from dcops.errors import ExampleSecretError
    from dcops.inventory.examples import passphrase_from, stack_findings

    found = [f.label() for f in stack_findings(PROJECT_DIR / f"Pulumi.{stack}.yaml",
                                               passphrase_from(os.environ), base=PROJECT_DIR)]
    if model.settings.example:
        found.insert(0, "the inventory declares itself an example (dcops_example: true)")
    if not found:
        return
    message = "committed example secrets / khóa mẫu: " + "; ".join(found)
    if pulumi.runtime.is_dry_run():
        pulumi.log.warn(f"{message}. `pulumi up` refuses this stack.")
        return
    raise ExampleSecretError(f"refusing `pulumi up`: {message}. Make real secrets: README.md, "
                             "\"Real secrets\"", file=f"Pulumi.{stack}.yaml")


def load(model: SiteModel | None = None) -> StackConfig:
    """Stack settings; the stack name (primary or backup) says which DC this is."""
    cfg = pulumi.Config("dcops")
    stack = pulumi.get_stack()
    if stack not in STACK_KINDS:
        raise ValueError(f"stack {stack!r}: expected one of {sorted(STACK_KINDS)}")
    if model is None:
        from dcops.inventory import load_inventory

        vault = cfg.get("vaultPasswordFile") or None
        model = load_inventory(PROJECT_DIR / (cfg.get("inventory") or "../inventories/production"),
                               vault_password_file=PROJECT_DIR / vault if vault else None)
    refuse_examples(model, stack)
    return StackConfig(
        stack=stack,
        model=model,
        image_name=cfg.get("imageName") or "debian-12-generic-amd64",
        default_flavor=cfg.get("defaultFlavor") or "m1.medium",
        external_network_id=cfg.get("externalNetworkId") or _network_id(
            cfg.get("externalNetwork") or "public"),
        vpn_psk=cfg.require_secret("vpnPsk"),
        peer_addresses=parse_peer_addresses(cfg.get_object("peerAddresses"), model,
                                            f"Pulumi.{stack}.yaml"),
        operator_role=cfg.get("operatorRole") or "member",
    )

"""The one place the program reads Pulumi config (and, through it, the inventory)."""

from __future__ import annotations

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

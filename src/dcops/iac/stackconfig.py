"""Settings of one Pulumi stack (primary or backup DC), from pulumi/config.py or a test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dcops.model.site import SiteModel


@dataclass(frozen=True)
class StackConfig:
    """What the program needs besides the site model: images, external network, VPN secret."""

    stack: str  # "primary" or "backup"
    model: SiteModel
    image_name: str = "debian-12-generic-amd64"
    default_flavor: str = "m1.medium"
    external_network_id: Any = ""  # provider network for router gateways (str or Output); ""=none
    vpn_psk: Any = None  # pulumi.Output[str] (a secret) in a real run, a plain str under mocks
    peer_addresses: Mapping[str, str] = field(default_factory=dict)  # site -> VPN peer address
    operator_role: str = "member"  # Keystone role the deploying account gets in each project

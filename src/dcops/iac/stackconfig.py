"""Settings of one Pulumi stack (primary or backup DC), from pulumi/config.py or a test."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dcops.errors import ConfigError
from dcops.model.site import SiteModel

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


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


def parse_peer_addresses(value: object, model: SiteModel | None = None,
                         where: str = "Pulumi.<stack>.yaml") -> dict[str, str]:
    """`dcops:peerAddresses` (a list of "site=address") as {site: address}; ConfigError if bad.

    A list because Pulumi project config declares only string, integer, boolean and array.
    """
    key = "dcops:peerAddresses"
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ConfigError(f"expected a list of 'site=address' strings, got "
                          f"{type(value).__name__}", file=where, key=key)
    out: dict[str, str] = {}
    for i, item in enumerate(value):
        site, sep, address = str(item).partition("=")
        site, address = site.strip(), address.strip()
        if not isinstance(item, str) or not sep or not site or not address:
            raise ConfigError(f"{item!r} is not 'site=address'", file=where, key=f"{key}[{i}]")
        if model is not None and site not in model.sites:
            raise ConfigError(f"unknown site {site!r}; known: {', '.join(sorted(model.sites))}",
                              file=where, key=f"{key}[{i}]")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            if not _HOSTNAME.match(address):
                raise ConfigError(f"{address!r} is neither an IP address nor a host name",
                                  file=where, key=f"{key}[{i}]") from None
        if site in out:
            raise ConfigError(f"site {site!r} is given twice", file=where, key=f"{key}[{i}]")
        out[site] = address
    return out

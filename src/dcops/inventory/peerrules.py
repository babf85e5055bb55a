"""Host firewall rules between the members of a clustered service, from the roles that run it.

A port of a role's `meta/ports.yml` may say who connects to it: `peers`, templated like the port
(role defaults, then the host's inventory variables), a list of inventory host names, e.g. the
Alertmanager pair's gossip from `monitoring_server_alertmanager_cluster_hosts` or the NATS routes
from `event_bus_nodes`. Each such port becomes one inbound rule on the host the role runs on, open
to those peers' addresses only (`/32` of `ansible_host`, the host itself left out), so the
baseline's default-deny firewall (`baseline_nftables_peer_rules`) lets a cluster talk without a
rule open to a whole zone. Every playbook of `playbooks/` counts, not only site.yml's: the event
bus is run by `event_bus.yml` beside it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from dcops.errors import InventoryError
from dcops.inventory.ansible_io import RawInventory, key_position
from dcops.inventory.roleports import EPHEMERAL, every_play, role_ports


def peer_rules(root: Path, raw: RawInventory) -> dict[str, list[dict[str, Any]]]:
    """host -> its inbound peer rules `{port, protocol, sources, comment}` (hosts with none left
    out), in the form of `baseline_nftables_extra_rules`."""
    out: dict[str, list[dict[str, Any]]] = {}
    for host, ports in role_ports(root, raw, every_play(root)).items():
        for rp in ports:
            if rp.peers is None:
                continue
            protocol, _, port = rp.port.partition("/")
            if port.startswith(EPHEMERAL):
                raise InventoryError(f"host {host}: role {rp.role} declares peers for an "
                                     f"ephemeral port ({rp.port}): a firewall rule needs a number",
                                     file=f"playbooks/roles/{rp.role}/meta/ports.yml",
                                     key="peers")
            sources = sorted({_address(raw, host, peer, rp.role) for peer in rp.peers
                              if peer != host}, key=_key)
            if not sources:
                continue  # the only member: nobody to let in
            rule = {"port": int(port), "protocol": protocol, "sources": sources,
                    "comment": f"{rp.role}: {rp.why} (peers {', '.join(sorted(set(rp.peers)))})"}
            if rule not in out.setdefault(host, []):
                out[host].append(rule)
    return out


def _address(raw: RawInventory, host: str, peer: str, role: str) -> str:
    vars_ = raw.hostvars.get(peer)
    if vars_ is None:
        raise InventoryError(f"host {host}: role {role} names peer {peer!r}, which is no host of "
                             "the inventory", file=f"playbooks/roles/{role}/meta/ports.yml",
                             key="peers")
    address = str(vars_.get("ansible_host", ""))
    try:
        return f"{ipaddress.IPv4Address(address)}/32"
    except ValueError:
        at = key_position(vars_, "ansible_host", raw.path) if "ansible_host" in vars_ else None
        raise InventoryError(f"host {host}: peer {peer} of role {role} has ansible_host "
                             f"{address!r}: expected an IPv4 address (the firewall rule's source)",
                             file=at.file if at else None, line=at.line if at else None,
                             key=f"{peer}.ansible_host") from None


def _key(cidr: str) -> int:
    return int(ipaddress.ip_network(cidr).network_address)

"""The event bus nodes the inventory declares (group `event_bus`, the event_bus role's hosts).

A JetStream cluster elects by majority, so it has an odd number of nodes, at least 3 for R3 streams
(one is allowed in the lab); the nodes are servers of a DC's management zone, and servers, so the
pki_cert role (playbooks/pki.yml: group `servers`) issues the certificate their TLS uses.
"""

from __future__ import annotations

from dcops.inventory.ansible_io import Problem, RawInventory
from dcops.inventory.planchecks import Where
from dcops.model import SiteKind, SiteModel, Zone

BUS_GROUP = "event_bus"
CERT_GROUP = "servers"  # playbooks/pki.yml issues host certificates to this group
BUS_ZONES = (Zone.MGMT,)
DC_KINDS = (SiteKind.PRIMARY_DC, SiteKind.BACKUP_DC)


def check_event_bus(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Bus nodes: odd count (>= 3 outside the lab), DC management zone, certificates declared."""
    nodes = sorted(raw.groups.get(BUS_GROUP, ()))
    if not nodes:
        return []  # no bus declared: the SQLite spool (embedded default)
    at = Where(model, raw)
    out: list[Problem] = []
    lab = model.settings.environment == "lab"
    if len(nodes) % 2 == 0 or (len(nodes) < 3 and not lab):
        out.append(Problem(
            "event-bus", f"group {BUS_GROUP} has {len(nodes)} node(s) ({', '.join(nodes)}): "
            "expected an odd number, at least 3 (JetStream R3 needs a majority of 3; 1 only in "
            "the lab)",
            at.host(nodes[0], "ansible_host"), f"{BUS_GROUP}"))
    for name in nodes:
        host = model.hosts.get(name)
        if host is None:
            out.append(Problem("event-bus", f"{BUS_GROUP} node {name} is not a server of the "
                               "inventory (a network device or unknown host)",
                               at.host(name, "ansible_host"), f"{BUS_GROUP}.{name}"))
            continue
        if host.zone not in BUS_ZONES:
            out.append(Problem(
                "event-bus", f"{BUS_GROUP} node {name} is in zone "
                f"{host.zone.value if host.zone else 'none'}: expected "
                f"{' or '.join(z.value for z in BUS_ZONES)} (the DC management zone)",
                at.host(name, "dcops_zone"), f"{name}.dcops_zone"))
        site = model.sites.get(host.site)
        if site is not None and site.kind not in DC_KINDS:
            out.append(Problem(
                "event-bus", f"{BUS_GROUP} node {name} is at site {host.site} ({site.kind.value}): "
                "expected a primary or backup DC", at.host(name, "dcops_site"),
                f"{name}.dcops_site"))
        if name not in raw.groups.get(CERT_GROUP, ()):
            out.append(Problem(
                "event-bus", f"{BUS_GROUP} node {name} is not in group {CERT_GROUP}, so pki_cert "
                "issues it no certificate: the bus needs TLS for clients and routes",
                at.host(name, "ansible_host"), f"{BUS_GROUP}.{name}"))
    return out

"""Policies as code over planned resources: used by pytest, `dcops iac plan` and CrossGuard."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .resources import (
    IKE,
    INSTANCE,
    IPSEC,
    NETWORK,
    PROJECT,
    RULE,
    SECGROUP,
    SUBNET,
    Finding,
    PolicyContext,
    ResourceView,
)
from .tags import REQUIRED_TAGS, UNTAGGABLE_TYPES, tags_of
from .wanpolicy import check_wan_endpoints
from .zones import BACKUP_DC_ZONES, SSH_PORT, WEB_PORTS, required_zones

ANY_NETS = frozenset({"0.0.0.0/0", "::/0"})
STRONG_AUTH = frozenset({"sha256", "sha384", "sha512"})
#: DH groups at or above MODP-2048 (14); 22-24 are weak-subgroup MODP and excluded.
STRONG_PFS = frozenset({f"group{n}" for n in (14, 15, 16, 17, 18, 19, 20, 21, 31)})
ZONE_TAGS_NOT_ZONES = frozenset({"tenant", "perimeter", "wan"})


@dataclass(frozen=True, slots=True)
class PolicyViolation:
    """One failed check: which policy, which resource, and what is wrong."""

    policy: str
    resource: str
    resource_type: str
    message: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.resource_type} {self.resource}: {self.message}"


StackCheck = Callable[[Sequence[ResourceView], PolicyContext], Iterable[Finding]]
ResourceCheck = Callable[[ResourceView], Iterable[str]]


@dataclass(frozen=True)
class Policy:
    """A named policy with a per-resource check, a whole-stack check, or both."""

    name: str
    description: str
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None


def _ports(props: Mapping[str, Any]) -> tuple[int, int] | None:
    """The rule's port range, or None for "all ports" (no range or no protocol)."""
    lo, hi = props.get("portRangeMin"), props.get("portRangeMax")
    if not props.get("protocol") or lo is None or hi is None:
        return None
    return int(lo), int(hi)


def _is_ingress(res: ResourceView) -> bool:
    return res.type == RULE and res.props.get("direction", "ingress") == "ingress"


def _from_anywhere(props: Mapping[str, Any]) -> bool:
    remote = props.get("remoteIpPrefix")
    return (remote in ANY_NETS) or (not remote and not props.get("remoteGroupId"))


def _covers(props: Mapping[str, Any], port: int) -> bool:
    rng = _ports(props)
    return rng is None or rng[0] <= port <= rng[1]


def _port_text(props: Mapping[str, Any]) -> str:
    rng = _ports(props)
    proto = props.get("protocol") or "any"
    if rng is None:
        return f"{proto}/all ports"
    return f"{proto}/{rng[0]}" if rng[0] == rng[1] else f"{proto}/{rng[0]}-{rng[1]}"


def check_public_ingress(res: ResourceView) -> Iterable[str]:
    """Ingress from 0.0.0.0/0 only to DMZ web ports."""
    if not _is_ingress(res) or not _from_anywhere(res.props):
        return []
    rng = _ports(res.props)
    web = (res.props.get("protocol") == "tcp" and rng is not None and rng[0] == rng[1]
           and rng[0] in WEB_PORTS)
    if res.tags.get("zone") == "dmz" and web:
        return []
    return [f"allows {_port_text(res.props)} from the Internet (0.0.0.0/0) into zone "
            f"{res.tags.get('zone', '?')!r}; only DMZ ports {sorted(WEB_PORTS)} may be public"]


def check_vpn_crypto(res: ResourceView) -> Iterable[str]:
    """IKE and IPsec policies: AES-256, SHA-256 or better, PFS group 14 or better."""
    if res.type not in (IKE, IPSEC):
        return []
    p, out = res.props, []
    if not str(p.get("encryptionAlgorithm", "aes-128")).startswith("aes-256"):
        out.append(f"encryption {p.get('encryptionAlgorithm', 'aes-128 (default)')} is weaker "
                   "than aes-256")
    if p.get("authAlgorithm", "sha1") not in STRONG_AUTH:
        out.append(f"integrity {p.get('authAlgorithm', 'sha1 (default)')} is weaker than sha256")
    if p.get("pfs", "group5") not in STRONG_PFS:
        out.append(f"PFS {p.get('pfs', 'group5 (default)')} is weaker than group14")
    return out


def check_tags(res: ResourceView) -> Iterable[str]:
    """Every taggable resource carries system, zone and level."""
    if res.type in UNTAGGABLE_TYPES or not res.type.startswith("openstack:"):
        return []
    own = tags_of(res.type, res.props)  # what the cloud will hold, not what a plan inferred
    missing = [k for k in REQUIRED_TAGS if not own.get(k)]
    return [f"missing tags {', '.join(missing)}"] if missing else []


def check_rule_default_deny(res: ResourceView) -> Iterable[str]:
    """Groups drop Neutron's allow-all defaults; zone networks keep port security; no any-rules."""
    if res.type == SECGROUP and res.props.get("deleteDefaultRules") is not True:
        return ["keeps Neutron's default allow-all egress rules (deleteDefaultRules is not true)"]
    if res.type == NETWORK and res.props.get("portSecurityEnabled") is False:
        return ["port security is off: security groups (default deny) are not enforced"]
    if res.type == RULE and _ports(res.props) is None and res.props.get("protocol") != "icmp":
        return [f"allows {_port_text(res.props)} ({res.props.get('direction', 'ingress')}); "
                "rules must name a protocol and port"]
    return []


def _index(resources: Sequence[ResourceView], ctx: PolicyContext) -> dict[str, tuple[str, str]]:
    """CIDR -> (system, zone) from the stack's subnets and the context."""
    index = dict(ctx.cidr_zones)
    for res in resources:
        if res.type == SUBNET and res.props.get("cidr"):
            index[str(res.props["cidr"])] = (res.tags.get("system", ""), res.tags.get("zone", ""))
    return index


def _source_zone(res: ResourceView, index: Mapping[str, tuple[str, str]]) -> str | None:
    remote = res.props.get("remoteIpPrefix")
    if not remote:
        return None
    try:
        net = str(ipaddress.ip_network(str(remote), strict=False))
    except ValueError:
        return None
    return index.get(net, ("", ""))[1] or None


def check_zone_default_deny(res_list: Sequence[ResourceView],
                            ctx: PolicyContext) -> Iterable[Finding]:
    """Every zone network has its own default-deny security group."""
    del ctx
    groups = {(r.tags.get("system"), r.tags.get("zone")) for r in res_list if r.type == SECGROUP}
    for res in res_list:
        key = (res.tags.get("system"), res.tags.get("zone"))
        if res.type == NETWORK and key[1] not in ZONE_TAGS_NOT_ZONES and key not in groups:
            yield res, (f"zone {key[1]!r} of {key[0]!r} has no security group of its own, so "
                        "the project default group (allow within group) applies")


def check_ssh_from_mgmt(res_list: Sequence[ResourceView], ctx: PolicyContext) -> Iterable[Finding]:
    """SSH (22) is accepted only from a management-zone subnet."""
    index = _index(res_list, ctx)
    for res in res_list:
        if _is_ingress(res) and res.props.get("protocol") in ("tcp", None, "") \
                and _covers(res.props, SSH_PORT):
            src = _source_zone(res, index)
            if src != "mgmt":
                remote = res.props.get("remoteIpPrefix") or res.props.get("remoteGroupId") or "any"
                yield res, (f"allows SSH from {remote} (zone {src or 'unknown'!r}); SSH is "
                            "allowed only from the management zone")


def check_db_from_app(res_list: Sequence[ResourceView], ctx: PolicyContext) -> Iterable[Finding]:
    """The database zone accepts connections only from the application zone (SSH: mgmt)."""
    index = _index(res_list, ctx)
    for res in res_list:
        if not _is_ingress(res) or res.tags.get("zone") != "db":
            continue
        src = _source_zone(res, index)
        rng = _ports(res.props)
        if src == "app" or (src == "mgmt" and rng == (SSH_PORT, SSH_PORT)):
            continue
        yield res, (f"database zone accepts {_port_text(res.props)} from zone "
                    f"{src or 'unknown'!r} ({res.props.get('remoteIpPrefix') or 'any'}); "
                    "only the application zone may reach it")


def check_zones_per_level(res_list: Sequence[ResourceView],
                          ctx: PolicyContext) -> Iterable[Finding]:
    """Each system's project has a network for every zone its level requires."""
    del ctx
    zones: dict[str, set[str]] = {}
    for res in res_list:
        if res.type == NETWORK:
            zones.setdefault(res.tags.get("system", ""), set()).add(res.tags.get("zone", ""))
    for res in res_list:
        system, level = res.tags.get("system", ""), res.tags.get("level", "")
        if res.type != PROJECT or system == "wan" or not level.isdigit():
            continue
        need = {z.value for z in required_zones(int(level))}
        if res.tags.get("dc") == "backup" and res.tags.get("dr") == "true":
            need |= {z.value for z in BACKUP_DC_ZONES}
        missing = sorted(need - zones.get(system, set()))
        if missing:
            yield res, (f"level {level} requires zones {', '.join(missing)} which have no "
                        "network (Circular 12/2022; replication for DR in the backup DC)")


def check_dr_twins(res_list: Sequence[ResourceView], ctx: PolicyContext) -> Iterable[Finding]:
    """Every primary workload of a DR system has a standby twin in the backup stack."""
    if ctx.expected_twins is None:
        return
    present = {(r.tags.get("system"), r.tags.get("twin")) for r in res_list if r.type == INSTANCE}
    projects = {r.tags.get("system"): r for r in res_list if r.type == PROJECT}
    for system, unit in sorted(ctx.expected_twins):
        if (system, unit) not in present:
            yield projects.get(system) or _Missing(system), (
                f"DR system {system!r}: primary workload {unit!r} has no standby twin in the "
                f"backup stack (expected compute.Instance tagged twin={unit})")


@dataclass(frozen=True)
class _Missing:
    """Stand-in when the stack has nothing to attach a finding to."""

    system: str
    type: str = PROJECT
    props: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Where the finding belongs."""
        return f"(no project for {self.system})"


POLICIES: tuple[Policy, ...] = (
    Policy("no-public-ingress", "No ingress from 0.0.0.0/0 except to DMZ web ports",
           resource_check=check_public_ingress),
    Policy("ssh-from-mgmt-only", "SSH only from the management zone",
           stack_check=check_ssh_from_mgmt),
    Policy("db-from-app-only", "The database zone is reachable only from the application zone",
           stack_check=check_db_from_app),
    Policy("zone-default-deny", "Every zone denies by default; only declared flows pass",
           resource_check=check_rule_default_deny, stack_check=check_zone_default_deny),
    Policy("zones-per-level", "Zones required by the system's level exist (Circular 12/2022)",
           stack_check=check_zones_per_level),
    Policy("dr-twins", "Every system marked for DR has its twin in the backup stack",
           stack_check=check_dr_twins),
    Policy("vpn-crypto", "VPN crypto at least AES-256, SHA-256, PFS group 14",
           resource_check=check_vpn_crypto),
    Policy("wan-endpoints", "DR replication subnets are DC-DC VPN endpoints; every local "
           "endpoint is on the VPN router and routed to its peers",
           stack_check=check_wan_endpoints),
    Policy("required-tags", "Every resource is tagged with system, zone and level",
           resource_check=check_tags),
)


def evaluate(plan: Any, context: PolicyContext | None = None,
             policies: Sequence[Policy] = POLICIES) -> list[PolicyViolation]:
    """Run every policy over a Plan (or any object with `.resources`); [] means compliant."""
    resources: Sequence[ResourceView] = list(plan.resources)
    ctx = context or PolicyContext()
    out: list[PolicyViolation] = []
    for policy in policies:
        if policy.resource_check is not None:
            out.extend(PolicyViolation(policy.name, r.name, r.type, msg)
                       for r in resources for msg in policy.resource_check(r))
        if policy.stack_check is not None:
            out.extend(PolicyViolation(policy.name, r.name, r.type, msg)
                       for r, msg in policy.stack_check(resources, ctx))
    return out

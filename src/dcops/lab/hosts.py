"""The lab's host catalogue: names, addresses and roles (inventories/lab/hosts.yml mirrors it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dcops.errors import LabError

SUBNET = "10.77.0.0/24"
CONTROLLER_ADDRESS = "10.77.0.1"
PREFIX_LEN = 24
FIRST_HOST_OCTET = 11
# Addresses .11-.210 of the /24. A chroot host is one sshd in its namespaces (a few MB): 100+ fit
# this machine kind, enough to audit a province's fleet (scripts/bench/audit_scale.py).
MAX_HOSTS = 200
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}(-[a-z0-9]{1,9})?$")


@dataclass(frozen=True, slots=True)
class LabHost:
    """One lab host: its inventory name, address and the production role it stands in for."""

    name: str
    address: str
    role: str
    zone: str
    site: str
    systems: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    @property
    def octet(self) -> int:
        """The last octet of the address (names the host's veth in the controller)."""
        return int(self.address.rsplit(".", 1)[1])


CATALOGUE: tuple[LabHost, ...] = (
    LabHost("lab-app1", "10.77.0.11", "lgsp_app", "app", "primary-dc", ("lgsp",)),
    LabHost("lab-db1", "10.77.0.12", "db", "db", "primary-dc", ("lgsp",), ("postgresql",)),
    LabHost("lab-backup1", "10.77.0.13", "backup", "mgmt", "backup-dc", (), ("restic",)),
    LabHost("lab-ca1", "10.77.0.14", "ca", "mgmt", "primary-dc"),
    LabHost("lab-mon1", "10.77.0.15", "monitoring", "mgmt", "primary-dc"),
)


def lab_hosts(count: int) -> list[LabHost]:
    """The first `count` hosts: the catalogue, then generic `lab-nodeNN` hosts in the app zone."""
    if not 1 <= count <= MAX_HOSTS:
        raise LabError(f"--hosts {count}: expected a number of hosts between 1 and {MAX_HOSTS}")
    hosts = list(CATALOGUE[:count])
    for index in range(len(CATALOGUE), count):
        octet = FIRST_HOST_OCTET + index
        hosts.append(LabHost(f"lab-node{index + 1:02d}", f"10.77.0.{octet}", "generic", "app",
                             "primary-dc"))
    return hosts


def check_lab_name(name: str) -> str:
    """A lab name becomes part of namespace and machine names: keep it short and plain."""
    if not NAME_RE.match(name):
        raise LabError(f"lab name {name!r}: expected lower-case letters and digits, at most "
                       "two parts joined by '-' (e.g. 'lab', 'ans', 'soc-t1')")
    return name

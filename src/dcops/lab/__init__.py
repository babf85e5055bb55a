"""dcops.lab: the local lab (test hosts in network namespaces), SNMP agents and event replay."""

from dcops.lab.hosts import CATALOGUE, LabHost
from dcops.lab.lab import HostStatus, Lab, running_labs

__all__ = ["CATALOGUE", "HostStatus", "Lab", "LabHost", "running_labs"]

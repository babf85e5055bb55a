"""Components of the dcops Pulumi program (house style: dataclass args, parent=self)."""

from .datacentre import DataCentre, DataCentreArgs
from .program import build
from .tenant import SystemTenant, SystemTenantArgs
from .wan import Wan, WanArgs

__all__ = ["DataCentre", "DataCentreArgs", "SystemTenant", "SystemTenantArgs", "Wan", "WanArgs",
           "build"]

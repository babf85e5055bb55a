"""Typed data only: the site model, events, alerts, controls and findings. No I/O here."""

from dcops.model.event import Detection, Event, LogSource
from dcops.model.site import (
    Device,
    Flow,
    Host,
    Location,
    Secret,
    Settings,
    Site,
    SiteKind,
    SiteModel,
    SnmpCredentials,
    SourceRef,
    System,
    Zone,
)

__all__ = [
    "Detection",
    "Device",
    "Event",
    "Flow",
    "Host",
    "Location",
    "LogSource",
    "Secret",
    "Settings",
    "Site",
    "SiteKind",
    "SiteModel",
    "SnmpCredentials",
    "SourceRef",
    "System",
    "Zone",
]

"""Zones per level: defined in the inventory layer (dcops.inventory.zones), re-exported here."""

from __future__ import annotations

from dcops.inventory.zones import (
    BACKUP_DC_ZONES,
    REQUIRED_ZONES,
    SSH_PORT,
    WEB_PORTS,
    ZONE_LABELS,
    required_zones,
    tenant_zones,
)

__all__ = ["BACKUP_DC_ZONES", "REQUIRED_ZONES", "SSH_PORT", "WEB_PORTS", "ZONE_LABELS",
           "required_zones", "tenant_zones"]

"""Where an alert happened: the site and information system of its host, from the site model.

Detections name a host the way the log or packet did (syslog host name, device, address); the
analyst and the compliance report need the site (a DC, a commune or ward office; a legacy
district) and the system (LGSP, portal...) with its security level. An address that is no known
server or device but lies in a site's LAN (`subnets`: a commune office's PCs and printers) gets
that site, the most specific prefix winning; so does an address in a DC's cloud prefix (the block
the IaC carves the DC's zone subnets from: a new instance not yet in the inventory). Unknown
hosts keep empty values.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from dcops.model.event import Detection
from dcops.model.site import SiteModel


class SiteEnricher:
    """Fills `site` and `system` of detections whose host is a server or device of the model."""

    def __init__(self, model: SiteModel) -> None:
        self._where: dict[str, tuple[str, str]] = {}
        for d in model.devices.values():
            self._where[d.name] = (d.site, "")
        for h in model.hosts.values():
            where = (h.site, ",".join(sorted(h.systems)))
            self._where[h.name] = where
            self._where.setdefault(h.address, where)
        # A device address is ambiguous when devices share it (lab agents on loopback).
        addresses: dict[str, list[str]] = {}
        for d in model.devices.values():
            addresses.setdefault(d.address, []).append(d.name)
        for address, names in addresses.items():
            if len(names) == 1:
                self._where.setdefault(address, self._where[names[0]])
        self._lans = sorted(((ipaddress.ip_network(net, strict=False), s.name)
                             for s in model.sites.values()
                             for net in (*s.subnets, *((s.cloud_prefix,) if s.cloud_prefix
                                                       else ()))),
                            key=lambda item: -item[0].prefixlen)

    def where(self, host: str) -> tuple[str, str]:
        """(site, system) of a host name or address; ("", "") when unknown."""
        known = self._where.get(host) or self._where.get(host.split(".", 1)[0])
        return known if known is not None else (self._lan_site(host), "")

    def _lan_site(self, host: str) -> str:
        """The site whose LAN holds this address (most specific prefix); "" for a name."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return ""
        return next((site for net, site in self._lans if address in net), "")

    def __call__(self, detection: Detection) -> Detection:
        if detection.site and detection.system:
            return detection
        site, system = self.where(detection.host)
        return dataclasses.replace(detection, site=detection.site or site,
                                   system=detection.system or system)

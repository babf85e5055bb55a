"""Alerts get the site and information system of their host from the site model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dcops.alerts.enrich import SiteEnricher
from dcops.inventory import load_inventory
from dcops.model.event import Detection

LAB = Path(__file__).resolve().parents[3] / "inventories" / "lab"


def _det(host: str, site: str = "") -> Detection:
    return Detection("r1", "Rule", "high", datetime(2026, 11, 22, tzinfo=UTC), ("e1",),
                     key=host, host=host, site=site)


def test_server_by_name_and_address_device_by_name_unknown_left_empty() -> None:
    enrich = SiteEnricher(load_inventory(LAB))
    by_name = enrich(_det("lab-app1"))
    assert (by_name.site, by_name.system) == ("primary-dc", "lgsp")
    by_address = enrich(_det("10.77.0.12"))
    assert (by_address.site, by_address.system) == ("primary-dc", "lgsp")
    router = enrich(_det("lab-bien-hoa-rtr1"))
    assert (router.site, router.system) == ("bien-hoa", "")
    # a commune router with an address of its own is found by address too
    assert enrich(_det("127.0.1.21")).site == "bien-hoa"
    # an address of a ward office's LAN (no server or device of the model) is that ward's
    assert (enrich(_det("10.78.2.7")).site, enrich(_det("10.78.2.7")).system) == ("tran-bien", "")
    assert enrich(_det("10.78.9.7")).site == ""  # outside every site's LAN
    # DC gear shares 127.0.0.1 in the lab: ambiguous, so not guessed
    assert enrich(_det("127.0.0.1")).site == ""
    stranger = enrich(_det("203.0.113.9"))
    assert (stranger.site, stranger.system) == ("", "")
    # a site the detection already carries is kept
    assert enrich(_det("lab-app1", site="backup-dc")).site == "backup-dc"
    assert enrich(_det("lab-app1")).id == _det("lab-app1").id  # same alert identity


def test_an_address_in_a_dc_cloud_prefix_is_that_dc() -> None:
    """The lab's DCs carve their IaC zones from 10.10.0.0/16 and 10.11.0.0/16 (cloud_prefix),
    apart from the lab bridge: an instance there, not yet in the inventory, is still the DC's."""
    enrich = SiteEnricher(load_inventory(LAB))
    assert enrich(_det("10.10.20.31")).site == "primary-dc"
    assert enrich(_det("10.11.20.31")).site == "backup-dc"
    assert enrich(_det("10.12.20.31")).site == ""

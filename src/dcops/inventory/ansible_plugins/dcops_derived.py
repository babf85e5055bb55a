"""Ansible inventory plugin `dcops_derived`: what the dcops site model implies, as inventory.

A source file `<inventory>/zz-derived.dcops.yml` (`plugin: dcops_derived`) is parsed after
hosts.yml (directory sources load in name order). The plugin reads the inventory directory into the
dcops site model and adds the backup DC's standby twins as hosts and `dcops_zone_networks` as a
variable of `all`, both computed by dcops.inventory.derived from the IaC's address plan, and
`dcops_peer_rules` on the hosts of clustered roles (the Alertmanager pair, the event bus).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from dcops.errors import DcopsError

DOCUMENTATION = r"""
name: dcops_derived
short_description: Standby twins and zone networks derived from the dcops site model
description:
  - Reads the inventory directory holding the source file into the dcops site model.
  - Adds every standby twin of the backup DC as a host (groups backup_twins, backup_servers and
    its system's group; ansible_host is the twin's planned address; dcops_twin_of names the
    primary hosts).
  - Sets dcops_zone_networks on the group all (zone -> CIDRs of both DCs from the address plan).
  - Sets dcops_peer_rules on each host a role with peer ports runs on (the inbound rules between
    the members of a cluster, sources the peers' addresses; dcops.inventory.peerrules).
options:
  plugin:
    description: The name of this plugin; makes the file a source of it.
    required: true
    choices: [dcops_derived]
"""

SUFFIXES = (".dcops.yml", ".dcops.yaml")


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]  # ansible-core is untyped
    """Adds the derived hosts and variables of the dcops site model."""

    NAME = "dcops_derived"

    def verify_file(self, path: str) -> bool:
        """Only `*.dcops.yml` files are sources of this plugin."""
        return bool(super().verify_file(path)) and path.endswith(SUFFIXES)

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        """Add the twins and the zone networks of the inventory directory holding `path`."""
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        from dcops.inventory.ansible_io import reading_inventory

        if reading_inventory():  # dcops itself is reading the inventory: only declared hosts
            return
        from dcops.inventory.derived import derived_for

        try:
            derived = derived_for(Path(path).resolve().parent)
        except DcopsError as exc:
            raise AnsibleParserError(f"{path}: dcops site model: {exc}") from exc
        self.inventory.set_variable("all", "dcops_zone_networks", derived.zone_networks)
        for host, rules in derived.peer_rules.items():
            self.inventory.set_variable(host, "dcops_peer_rules", rules)
        for group in derived.twin_groups:  # present even when empty: `servers:!backup_twins`
            self.inventory.add_group(group)
        for twin in derived.twins:
            for group in (*derived.twin_groups, derived.system_groups.get(twin.system, "")):
                if group:
                    self.inventory.add_group(group)
                    self.inventory.add_host(twin.name, group=group)
            for key, value in twin.hostvars().items():
                self.inventory.set_variable(twin.name, key, value)

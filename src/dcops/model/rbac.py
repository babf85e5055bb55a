"""Who may do what: the one role table that console routes and CLI commands both consult.

A console user has one of ``ROLES``. The CLI in single-user mode (a local SQLite store used by
the operating-system user who owns it) acts as ``OWNER``, which may do everything: whoever owns
the file can change it anyway, so refusing them would protect nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ROLES = ("analyst", "engineer", "auditor", "admin")
OWNER = "owner"

# read: queue, alerts, incidents, SLA; triage: lifecycle, assign, notes, bulk, merge/split;
# silence: Alertmanager silences; audit: the trail and its verification; users: user
# administration (add, role, disable, unlock, tokens, OS-user mapping); change: open and close
# change windows (`dcops change`, the playbooks' callback), whose alerts become expected changes.
PERMISSIONS_ALL = ("read", "triage", "silence", "audit", "users", "change")

PERMISSIONS: Mapping[str, frozenset[str]] = MappingProxyType({
    "analyst": frozenset({"read", "triage", "silence", "change"}),
    "engineer": frozenset({"read", "silence", "change"}),
    "auditor": frozenset({"read", "audit"}),
    "admin": frozenset({"read", "audit", "users"}),
    OWNER: frozenset(PERMISSIONS_ALL),
})


def allowed(role: str | None, permission: str) -> bool:
    """Whether the role grants the permission (unknown roles and permissions grant nothing)."""
    if permission not in PERMISSIONS_ALL:
        raise ValueError(f"unknown permission {permission!r}")
    return role is not None and permission in PERMISSIONS.get(role, frozenset())

"""What the console needs from the alert store (satisfied by dcops.alerts.backend.StoreBackend).

Declared here so the console never imports the store package (sibling layers); the CLI wires them.
Results are the store's dataclasses, used by attribute in templates, hence ``Any``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

SEVERITIES = ("critical", "high", "medium", "low", "informational")
OPEN_STATUSES = ("new", "acknowledged", "investigating")


class EventLookup(Protocol):
    """The triggering events' key fields, from wherever events are kept (the pipeline's spool).

    Each found event is a mapping with ``id``, ``time``, ``host``, ``source``, ``action`` and
    ``message`` (strings); ids not found (pruned, or another spool) are simply left out.
    """

    def events(self, ids: Sequence[str]) -> list[dict[str, str]]:
        """Key fields of the events with these ids, oldest first."""
        ...


class LoginOutcome(Protocol):
    """A login attempt's result: a user and session, or ``retry_after`` seconds to wait."""

    @property
    def username(self) -> str:
        """Empty when refused."""
        ...

    @property
    def role(self) -> str:
        """The user's role."""
        ...

    @property
    def session(self) -> str:
        """The new session id (kept in the signed cookie)."""
        ...

    @property
    def retry_after(self) -> float:
        """> 0 when the throttle refused the attempt without checking the password."""
        ...


class ConsoleBackend(Protocol):
    """Queries and actions of the triage console; actions raise DcopsError when refused."""

    @property
    def silences_enabled(self) -> bool:
        """Whether an Alertmanager is configured."""
        ...

    def query(self, **filters: Any) -> list[Any]:
        """Alerts (severity, site, system, status lists; since, text, incident_id, limit)."""
        ...

    def facets(self) -> dict[str, list[str]]:
        """Distinct sites and systems of all alerts (``site``, ``system``)."""
        ...

    def counts(self, **filters: Any) -> dict[str, dict[str, int]]:
        """Counts by severity, site, status."""
        ...

    def get(self, alert_id: int) -> Any | None:
        """One alert."""
        ...

    def notes(self, alert_id: int) -> list[Any]:
        """Notes."""
        ...

    def change_window(self, window_id: int) -> Any | None:
        """A change window (id, ticket, summary, hosts, accounts, opened_by, opened_at,
        closes_at, closed_at, closed_by, source), or None."""
        ...

    def silences(self, alert_id: int) -> list[Any]:
        """Silences."""
        ...

    def audit_records(self, target: str | None = None, limit: int | None = None,
                      newest_first: bool = False) -> list[Any]:
        """Audit trail."""
        ...

    def verify_audit(self) -> Any:
        """Chain verification result (ok, checked, first_bad, reason)."""
        ...

    def audit_verification(self, full: bool = False) -> Any:
        """The console's verification (result, full, full_at, full_through, incremental_from,
        full_running): only the records new since the last walk unless `full`."""
        ...

    def incidents(self, limit: int | None = None, offset: int = 0) -> list[Any]:
        """Incidents (not merged), newest first; a page with `limit`/`offset`."""
        ...

    def incident_count(self) -> int:
        """How many incidents `incidents()` lists without a limit."""
        ...

    def incident(self, incident_id: int) -> Any | None:
        """One incident."""
        ...

    def sla_rows(self) -> list[Any]:
        """SLA rows per severity."""
        ...

    def transition(self, alert_id: int, to: str, actor: str, note: str = "") -> None:
        """Lifecycle move."""
        ...

    def assign(self, alert_id: int, assignee: str, actor: str) -> None:
        """Assign."""
        ...

    def add_note(self, alert_id: int, actor: str, text: str) -> int:
        """Note."""
        ...

    def silence(self, alert_id: int, actor: str, comment: str) -> Any:
        """Silence in Alertmanager."""
        ...

    def merge_incidents(self, target: int, sources: list[int], actor: str) -> None:
        """Merge."""
        ...

    def split_incident(self, alert_ids: list[int], actor: str) -> int:
        """Split."""
        ...

    def ingest_webhook(self, payload: Any) -> dict[str, int]:
        """Alertmanager webhook."""
        ...

    def login(self, username: str, password: str, client: str = "") -> LoginOutcome:
        """Check the password through the login throttle; on success a new server session."""
        ...

    def session_role(self, username: str, session: str) -> str | None:
        """The role now if the session is live (not logged out, not ended by a password reset,
        not expired) and the user enabled; else None."""
        ...

    def logout(self, username: str, session: str) -> None:
        """End the session on the server."""
        ...

    def login_locks(self) -> list[Any]:
        """Locked accounts and addresses (key ``user:NAME``/``addr:IP``, until, last_client)."""
        ...

    def unlock(self, key: str, actor: str) -> bool:
        """End a lock; False when the key was not throttled."""
        ...

    def set_user_role(self, username: str, role: str, actor: str) -> None:
        """Change a user's role."""
        ...

    def list_users(self) -> list[Any]:
        """Users."""
        ...

    def add_user(self, username: str, password: str, role: str, actor: str) -> None:
        """Add or reset a user."""
        ...

    def set_user_disabled(self, username: str, disabled: bool, actor: str) -> None:
        """Disable or enable."""
        ...

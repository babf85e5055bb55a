"""The alert store as the web console sees it: plain arguments, no store types needed by callers.

``dcops.triage`` must not import ``dcops.alerts`` (sibling layers); it declares the Protocol
``dcops.triage.ports.ConsoleBackend`` and the CLI hands it this class, which satisfies it.
"""

from __future__ import annotations

from typing import Any

from dcops.alerts.audit import AuditRecord, VerifyResult
from dcops.alerts.bridge import ingest_webhook
from dcops.alerts.models import Alert, AlertFilter, Incident, Note, Silence, Status
from dcops.alerts.sla import SlaRow, sla_report
from dcops.alerts.store import AlertStore
from dcops.alerts.users import User, Users


class StoreBackend:
    """Adapter from AlertStore/Users to the console's ConsoleBackend protocol."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.users = Users(store.engine)

    @property
    def silences_enabled(self) -> bool:
        """Whether an Alertmanager is configured for silences."""
        return self.store.silencer is not None

    @staticmethod
    def _filter(filters: dict[str, Any]) -> AlertFilter:
        return AlertFilter(**filters)

    def query(self, **filters: Any) -> list[Alert]:
        """Alerts matching AlertFilter fields given as keywords."""
        return self.store.query(self._filter(filters))

    def counts(self, **filters: Any) -> dict[str, dict[str, int]]:
        """Counts by severity, site and status."""
        return self.store.counts(self._filter(filters))

    def get(self, alert_id: int) -> Alert | None:
        """One alert with events."""
        return self.store.get(alert_id)

    def notes(self, alert_id: int) -> list[Note]:
        """Notes of the alert."""
        return self.store.notes(alert_id)

    def silences(self, alert_id: int) -> list[Silence]:
        """Silences of the alert."""
        return self.store.silences(alert_id)

    def audit_records(self, target: str | None = None, limit: int | None = None,
                      newest_first: bool = False) -> list[AuditRecord]:
        """Audit trail."""
        return self.store.audit_records(target, limit, newest_first)

    def verify_audit(self) -> VerifyResult:
        """Verify the hash chain."""
        return self.store.verify_audit()

    def incidents(self) -> list[Incident]:
        """Open (not merged) incidents."""
        return self.store.incidents()

    def incident(self, incident_id: int) -> Incident | None:
        """One incident."""
        return self.store.incident(incident_id)

    def sla_rows(self) -> list[SlaRow]:
        """SLA figures per severity."""
        return sla_report(self.store.query(AlertFilter(limit=100000)), self.store.config)

    def transition(self, alert_id: int, to: str, actor: str, note: str = "") -> None:
        """Lifecycle move (raises LifecycleError, a DcopsError, when not allowed)."""
        self.store.transition(alert_id, Status(to), actor, note)

    def assign(self, alert_id: int, assignee: str, actor: str) -> None:
        """Set the assignee."""
        self.store.assign(alert_id, assignee, actor)

    def add_note(self, alert_id: int, actor: str, text: str) -> int:
        """Add a note."""
        return self.store.add_note(alert_id, actor, text)

    def silence(self, alert_id: int, actor: str, comment: str) -> Silence:
        """Push a silence to Alertmanager."""
        return self.store.silence(alert_id, actor, comment)

    def merge_incidents(self, target: int, sources: list[int], actor: str) -> None:
        """Merge incidents."""
        self.store.merge_incidents(target, sources, actor)

    def split_incident(self, alert_ids: list[int], actor: str) -> int:
        """Split alerts into a new incident."""
        return self.store.split_incident(alert_ids, actor)

    def ingest_webhook(self, payload: Any) -> dict[str, int]:
        """Alertmanager v4 webhook body into the queue."""
        r = ingest_webhook(self.store, payload)
        return {"created": r.created, "updated": r.updated, "resolved": r.resolved,
                "unchanged": r.unchanged}

    def authenticate(self, username: str, password: str,
                     client: str = "") -> tuple[str, str, str] | None:
        """(username, role, stamp) when the password matches an enabled user; audited either way."""
        u = self.users.login(username, password, client)
        check = self.users.session_check(u.username) if u else None
        return (u.username, *check) if u and check else None

    def session_check(self, username: str) -> tuple[str, str] | None:
        """(role, password stamp) now; None when disabled or removed."""
        return self.users.session_check(username)

    def list_users(self) -> list[User]:
        """Console users."""
        return self.users.list_users()

    def add_user(self, username: str, password: str, role: str, actor: str) -> None:
        """Create or reset a user."""
        self.users.add(username, password, role, actor)

    def set_user_disabled(self, username: str, disabled: bool, actor: str) -> None:
        """Disable or enable a user."""
        self.users.set_disabled(username, disabled, actor)

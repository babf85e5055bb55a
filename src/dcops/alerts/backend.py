"""The alert store as the web console sees it: plain arguments, no store types needed by callers.

``dcops.triage`` must not import ``dcops.alerts`` (sibling layers); it declares the Protocol
``dcops.triage.store_contract.ConsoleBackend`` and the CLI hands it this class, which satisfies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcops.alerts import slasql
from dcops.alerts.bridge import ingest_webhook
from dcops.alerts.chain import AuditRecord, VerifyResult
from dcops.alerts.changes import ChangeWindow
from dcops.alerts.db import reading
from dcops.alerts.models import Alert, AlertFilter, Incident, Note, Silence, Status
from dcops.alerts.sessions import Sessions
from dcops.alerts.sla import SlaRow
from dcops.alerts.store import AlertStore
from dcops.alerts.throttle import Lock, LoginThrottle
from dcops.alerts.timeutil import now
from dcops.alerts.users import User, Users
from dcops.alerts.verifycache import CachedVerify, TrailVerifier


@dataclass(frozen=True, slots=True)
class ConsoleLogin:
    """A console login: the user and session, or why not (``retry_after`` > 0: throttled)."""

    username: str = ""
    role: str = ""
    session: str = ""
    retry_after: float = 0.0


class StoreBackend:
    """Adapter from AlertStore/Users to the console's ConsoleBackend protocol."""

    def __init__(self, store: AlertStore, clock: Callable[[], datetime] = now) -> None:
        self.store = store
        self.users = Users(store.engine, LoginThrottle(store.engine, store.config.login, clock),
                           Sessions(store.engine, clock=clock))
        self.verifier = TrailVerifier(store.engine)

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

    def facets(self) -> dict[str, list[str]]:
        """Distinct sites and systems (the queue's filter choices)."""
        return self.store.facets()

    def counts(self, **filters: Any) -> dict[str, dict[str, int]]:
        """Counts by severity, site and status."""
        return self.store.counts(self._filter(filters))

    def get(self, alert_id: int) -> Alert | None:
        """One alert with events."""
        return self.store.get(alert_id)

    def notes(self, alert_id: int) -> list[Note]:
        """Notes of the alert."""
        return self.store.notes(alert_id)

    def change_window(self, window_id: int) -> ChangeWindow | None:
        """The change window an expected alert belongs to."""
        return self.store.changes.get(window_id)

    def silences(self, alert_id: int) -> list[Silence]:
        """Silences of the alert."""
        return self.store.silences(alert_id)

    def audit_records(self, target: str | None = None, limit: int | None = None,
                      newest_first: bool = False) -> list[AuditRecord]:
        """Audit trail."""
        return self.store.audit_records(target, limit, newest_first)

    def verify_audit(self) -> VerifyResult:
        """Verify the hash chain (a full walk)."""
        return self.store.verify_audit()

    def audit_verification(self, full: bool = False) -> CachedVerify:
        """The console's verification: the records new since the last walk, or all (`full`)."""
        return self.verifier.verify(full)

    def incidents(self, limit: int | None = None, offset: int = 0) -> list[Incident]:
        """Open (not merged) incidents, newest first; a page with `limit`/`offset`."""
        return self.store.incidents(limit=limit, offset=offset)

    def incident_count(self) -> int:
        """How many open (not merged) incidents there are."""
        return self.store.incident_count()

    def incident(self, incident_id: int) -> Incident | None:
        """One incident."""
        return self.store.incident(incident_id)

    def sla_rows(self) -> list[SlaRow]:
        """SLA figures per severity."""
        with reading(self.store.engine) as conn:  # times in SQL: dcops.alerts.slasql
            return slasql.sla_rows(conn, self.store.config)

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

    def login(self, username: str, password: str, client: str = "") -> ConsoleLogin:
        """A new session when the password matches an enabled user (throttled, audited)."""
        r = self.users.login(username, password, client, session=True)
        if r.user is None:
            return ConsoleLogin(retry_after=r.retry_after)
        return ConsoleLogin(r.user.username, r.user.role, r.session)

    def session_role(self, username: str, session: str) -> str | None:
        """The user's role if the session is live and the user enabled; else None."""
        return self.users.sessions.role(username, session)

    def logout(self, username: str, session: str) -> None:
        """End the session on the server."""
        self.users.logout(username, session)

    def login_locks(self) -> list[Lock]:
        """Accounts and addresses locked now."""
        return self.users.throttle.locks()

    def unlock(self, key: str, actor: str) -> bool:
        """End a lock (``user:NAME`` or ``addr:IP``)."""
        return self.users.throttle.unlock(key, actor)

    def set_user_role(self, username: str, role: str, actor: str) -> None:
        """Change a user's role."""
        self.users.set_role(username, role, actor)

    def list_users(self) -> list[User]:
        """Console users."""
        return self.users.list_users()

    def add_user(self, username: str, password: str, role: str, actor: str) -> None:
        """Create or reset a user."""
        self.users.add(username, password, role, actor)

    def set_user_disabled(self, username: str, disabled: bool, actor: str) -> None:
        """Disable or enable a user."""
        self.users.set_disabled(username, disabled, actor)

"""Tables of the alert store (SQLAlchemy Core); the Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# Timestamps are ISO 8601 UTC strings with microseconds and a trailing Z: they sort and compare the
# same way on SQLite and PostgreSQL, and the audit hash covers exactly what is stored.

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(300), nullable=False),
    Column("status", String(20), nullable=False, default="open"),  # open | merged | closed
    Column("merged_into", Integer, nullable=True),
    Column("group_host", String(255), nullable=False, default=""),
    Column("group_source_ip", String(64), nullable=False, default=""),
    Column("created_at", String(32), nullable=False),
    # The incident of a change window's expected alerts (0005); NULL for every other incident.
    Column("change_window_id", Integer, nullable=True),
    # The severity of the alert the title comes from (0005): a more severe one retitles it.
    Column("severity", String(20), nullable=True),
)

alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(20), nullable=False),  # sigma | alertmanager
    Column("rule_id", String(200), nullable=False),
    Column("rule_title", String(300), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("dedup_key", String(500), nullable=False, default=""),
    Column("site", String(100), nullable=False, default=""),
    Column("system", String(100), nullable=False, default=""),
    Column("system_level", Integer, nullable=True),
    Column("host", String(255), nullable=False, default=""),
    Column("source_ip", String(64), nullable=False, default=""),
    Column("first_seen", String(32), nullable=False),
    Column("last_seen", String(32), nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("tags", Text, nullable=False, default="[]"),
    Column("labels", Text, nullable=False, default="{}"),
    Column("description", Text, nullable=False, default=""),
    Column("fingerprint", String(64), nullable=False, default=""),
    Column("assignee", String(100), nullable=False, default=""),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("acked_at", String(32), nullable=True),
    Column("resolved_at", String(32), nullable=True),
    # The change window it was expected by (0005): "expected change / thay đổi dự kiến".
    Column("change_window_id", Integer, nullable=True),
    Index("ix_alerts_dedup", "rule_id", "dedup_key", "status"),
    Index("ix_alerts_status_severity", "status", "severity"),
    Index("ix_alerts_fingerprint", "fingerprint"),
    Index("ix_alerts_host_status", "host", "status"),
    Index("ix_alerts_source_ip_status", "source_ip", "status"),
    Index("ix_alerts_incident", "incident_id"),
    Index("ix_alerts_last_seen", "last_seen"),
)

# Change windows (0005): a planned change on some hosts (and accounts) for a ticket; alerts that
# match an open one are linked to it and handled per the `changes:` config, never dropped.
change_windows = Table(
    "change_windows", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket", String(100), nullable=False, index=True),
    Column("summary", Text, nullable=False, default=""),
    Column("hosts", Text, nullable=False),  # JSON list
    Column("accounts", Text, nullable=False, default="[]"),  # JSON list; empty: any account
    Column("opened_by", String(100), nullable=False),
    Column("opened_at", String(32), nullable=False),
    Column("closes_at", String(32), nullable=False),  # planned end
    Column("closed_at", String(32), nullable=True),
    Column("closed_by", String(100), nullable=True),
    Column("source", String(20), nullable=False, default="cli"),  # cli | ansible
    Index("ix_change_windows_closes_at", "closes_at"),
)

detections = Table(
    "alert_detections", metadata,
    Column("detection_id", String(64), primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("received_at", String(32), nullable=False),
)

alert_events = Table(
    "alert_events", metadata,
    Column("alert_id", Integer, ForeignKey("alerts.id"), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("seen_at", String(32), nullable=False),
)

notes = Table(
    "alert_notes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False, index=True),
    Column("author", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("text", Text, nullable=False),
)

silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False, index=True),
    Column("am_silence_id", String(64), nullable=False, default=""),
    Column("matchers", Text, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("starts_at", String(32), nullable=False),
    Column("ends_at", String(32), nullable=False),
    Column("state", String(20), nullable=False),  # active | expired
)

users = Table(
    "users", metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(20), nullable=False),
    Column("disabled", Integer, nullable=False, default=0),
    Column("created_at", String(32), nullable=False),
)

audit = Table(
    "audit_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target", String(100), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),  # HMAC-SHA-256 (key_id) or legacy SHA-256 ('')
    Column("key_id", String(40), nullable=False, server_default=""),
)

# One row (id=1) holding the chain head; appends lock it so concurrent writers stay in order.
# key_id: the key the next record is signed with ('' until the first keyed record).
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(40), nullable=False, server_default=""),
)

# ---- authentication and authorisation (console sessions, API tokens, OS users, throttle) ----

# One row per console login; the cookie carries the session id, the table only its SHA-256, so
# logout and a password change end a session on the server whatever the cookie still says.
console_sessions = Table(
    "console_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("username", String(100), nullable=False, index=True),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=True),
    Column("client", String(64), nullable=False, default=""),
)

# CLI credentials of console users: ``dcops_<id>.<secret>``; only the secret's SHA-256 is kept.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(16), primary_key=True),
    Column("username", String(100), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("label", String(100), nullable=False, default=""),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("revoked_at", String(32), nullable=True),
)

# Operating-system accounts an admin mapped to console users (``osuser@host`` -> username).
os_user_map = Table(
    "os_user_map", metadata,
    Column("os_user", String(200), primary_key=True),
    Column("username", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(100), nullable=False),
)

# Failed logins per account (``user:NAME``) and per source address (``addr:IP``).
login_throttle = Table(
    "login_throttle", metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_failure_at", String(32), nullable=True),
    Column("locked_until", String(32), nullable=True),
    Column("locks", Integer, nullable=False, default=0),
    Column("last_client", String(64), nullable=False, default=""),
)

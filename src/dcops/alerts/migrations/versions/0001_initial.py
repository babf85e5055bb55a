"""Initial alert store: alerts, incidents, detections, events, notes, silences, users, audit chain.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.String(32)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("merged_into", sa.Integer, nullable=True),
        sa.Column("group_host", sa.String(255), nullable=False),
        sa.Column("group_source_ip", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("rule_title", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dedup_key", sa.String(500), nullable=False),
        sa.Column("site", sa.String(100), nullable=False),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("system_level", sa.Integer, nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("assignee", sa.String(100), nullable=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("acked_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
    )
    op.create_index("ix_alerts_dedup", "alerts", ["rule_id", "dedup_key", "status"])
    op.create_index("ix_alerts_status_severity", "alerts", ["status", "severity"])
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
    op.create_table(
        "alert_detections",
        sa.Column("detection_id", sa.String(64), primary_key=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_table(
        "alert_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_alert_notes_alert_id", "alert_notes", ["alert_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("am_silence_id", sa.String(64), nullable=False),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
    )
    op.create_index("ix_silences_alert_id", "silences", ["alert_id"])
    op.create_table(
        "users",
        sa.Column("username", sa.String(100), primary_key=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("disabled", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')"))


def downgrade() -> None:
    """Drop everything (the audit trail with it: only for throw-away stores)."""
    for table in ("audit_head", "audit_log", "users", "silences", "alert_notes", "alert_events",
                  "alert_detections", "alerts", "incidents"):
        op.drop_table(table)

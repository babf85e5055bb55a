"""Indexes for a queue of 100,000 alerts: incident grouping by host and source address, the
incident pages (alerts of an incident) and the queue's newest-activity order.

Revision ID: 0004_scale_indexes
Revises: 0003_trail
"""

from __future__ import annotations

from alembic import op

revision = "0004_scale_indexes"
down_revision = "0003_trail"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_alerts_host_status", ["host", "status"]),
    ("ix_alerts_source_ip_status", ["source_ip", "status"]),
    ("ix_alerts_incident", ["incident_id"]),
    ("ix_alerts_last_seen", ["last_seen"]),
)


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "alerts", columns)


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="alerts")

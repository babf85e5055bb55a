"""Change windows: planned changes (who, which hosts and accounts, ticket) that alerts are
matched against; alerts and incidents name the window they belong to, and an incident keeps the
severity of the alert its title comes from (a more severe alert retitles it).

Revision ID: 0005_change_windows
Revises: 0004_scale_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_change_windows"
down_revision = "0004_scale_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The change_windows table; nullable columns on alerts and incidents (plain ADD COLUMN)."""
    op.create_table(
        "change_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket", sa.String(100), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("hosts", sa.Text, nullable=False),
        sa.Column("accounts", sa.Text, nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("opened_at", sa.String(32), nullable=False),
        sa.Column("closes_at", sa.String(32), nullable=False),
        sa.Column("closed_at", sa.String(32), nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
    )
    op.create_index("ix_change_windows_ticket", "change_windows", ["ticket"])
    op.create_index("ix_change_windows_closes_at", "change_windows", ["closes_at"])
    op.add_column("alerts", sa.Column("change_window_id", sa.Integer, nullable=True))
    op.add_column("incidents", sa.Column("change_window_id", sa.Integer, nullable=True))
    op.add_column("incidents", sa.Column("severity", sa.String(20), nullable=True))


def downgrade() -> None:
    """Drop the columns and the table (alerts keep their status; the links are lost)."""
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("severity")
        batch.drop_column("change_window_id")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("change_window_id")
    op.drop_index("ix_change_windows_closes_at", table_name="change_windows")
    op.drop_index("ix_change_windows_ticket", table_name="change_windows")
    op.drop_table("change_windows")

"""Keyed audit trail: key id per record and on the head; PostgreSQL refuses UPDATE/DELETE/TRUNCATE.

Existing records keep key_id '' (legacy, unkeyed SHA-256); the first write afterwards seals them
with a keyed `trail.keyed` record. On PostgreSQL a trigger raises on any UPDATE, DELETE or
TRUNCATE of audit_log, whoever runs it (the application role additionally lacks the privileges:
`dcops alerts trail grant-app ROLE`). Disabling the trigger needs the table's owner.

Revision ID: 0003_trail
Revises: 0002_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_trail"
down_revision = "0002_auth"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION dcops_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused (dcops audit trail)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION dcops_audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION dcops_audit_log_append_only()",
)


def upgrade() -> None:
    """Add key_id columns; on PostgreSQL install the append-only triggers."""
    op.add_column("audit_log", sa.Column("key_id", sa.String(40), nullable=False,
                                         server_default=""))
    op.add_column("audit_head", sa.Column("key_id", sa.String(40), nullable=False,
                                          server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)
        for statement in TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    """Drop the triggers and the key_id columns (keyed records then no longer verify)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS dcops_audit_log_append_only()")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("key_id")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("key_id")

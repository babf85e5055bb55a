"""PostgreSQL privileges of the application role: it may append to the trail, never change it.

Two roles: the owner (runs the migrations, owns every table, can disable the trigger: keep its
password with the DBAs) and the application role that `dcops serve` and the collectors use. The
application role gets what the store needs on every table except that ``audit_log`` is SELECT and
INSERT only; the trigger of migration 0003 refuses UPDATE, DELETE and TRUNCATE even to the owner.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from dcops.alerts import schema
from dcops.errors import AlertStoreError

APPEND_ONLY = {"audit_log": "SELECT, INSERT", "audit_head": "SELECT, UPDATE"}


def app_grants(engine: Engine, role: str) -> list[str]:
    """The GRANT/REVOKE statements for `role` (run by the owner)."""
    if engine.dialect.name != "postgresql":
        raise AlertStoreError("role grants exist only on PostgreSQL (SQLite has no roles)")
    q = engine.dialect.identifier_preparer.quote
    r = q(role)
    out = [f"REVOKE ALL ON {q(t)} FROM PUBLIC" for t in APPEND_ONLY]
    for name in [*schema.metadata.tables, "alembic_version"]:
        if name in APPEND_ONLY:
            out.append(f"REVOKE ALL ON {q(name)} FROM {r}")
            out.append(f"GRANT {APPEND_ONLY[name]} ON {q(name)} TO {r}")
        elif name == "alembic_version":
            out.append(f"GRANT SELECT ON {q(name)} TO {r}")
        else:
            out.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q(name)} TO {r}")
    out.append(f"GRANT USAGE ON SCHEMA {q('public')} TO {r}")
    out.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q('public')} TO {r}")
    return out


def grant_app_role(engine: Engine, role: str) -> list[str]:
    """Apply `app_grants` in one transaction; return the statements run."""
    statements = app_grants(engine, role)
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s))
    except SQLAlchemyError as exc:
        raise AlertStoreError(f"cannot grant role {role!r} on {engine.url!r} (run this as the "
                              f"store's owner): {exc}") from exc
    return statements

"""Open the store (SQLite file or PostgreSQL URL) and bring its schema to the latest revision."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from dcops.errors import AlertStoreError

MIGRATIONS = "dcops.alerts:migrations"


def default_url(state_dir: Path) -> str:
    """The embedded default: ``<state>/alerts.db``."""
    return f"sqlite:///{state_dir / 'alerts.db'}"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


READ_ONLY = "dcops_read_only"


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only. On SQLite its transaction begins DEFERRED: with BEGIN
    IMMEDIATE (`_sqlite_immediate`) a long read (the console's trail walk, seconds at 100,000
    records; the SLA; a queue page) held the write lock throughout, and the webhook and every
    other view waited for it. In WAL mode a reader sees a snapshot and never blocks the writer."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        yield conn


def _sqlite_immediate(engine: Engine) -> None:
    """SQLite: take the write lock at BEGIN so concurrent writers wait instead of failing (a
    `reading` connection begins deferred: it never writes, so it never needs the lock)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _postgres_custom_plans(engine: Engine) -> None:
    """PostgreSQL: plan every prepared statement for its parameters and the tables as they are.

    psycopg prepares a statement from its fifth run; PostgreSQL then keeps a generic plan, made
    while the tables were small, until the next ANALYZE. A store filling fast (an outage on a new
    install: 10,000 alerts in a minute) kept sequential scans of the alerts, detections and
    incidents on every webhook body: each body slower than the one before it.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()


def open_engine(url: str) -> Engine:
    """Create the engine and apply pending Alembic migrations."""
    url = normalise_url(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        raise AlertStoreError(f"cannot open alert store {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_immediate(engine)
    elif engine.dialect.name == "postgresql":
        _postgres_custom_plans(engine)
    migrate(engine)
    return engine


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise AlertStoreError(f"cannot migrate alert store {engine.url!r}: {exc}") from exc


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in one go, inside the caller's transaction.

    PostgreSQL: COPY ... FROM STDIN on the same connection. psycopg's executemany sends one
    INSERT per row, and a multi-row INSERT ... VALUES of 50 alerts is a statement psycopg converts
    anew every time (too long for its cache): both cost more than the rest of a webhook body.
    COPY needs only the INSERT privilege and fires INSERT triggers as an INSERT does. SQLite's
    executemany is a C loop over one prepared statement and stays.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    cols = list(rows[0])
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(f'"{c}"' for c in cols)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[c] for c in cols])

"""Connecting to the store: SQLite by default, PostgreSQL (psycopg 3) in production.

``PRORATA_DATABASE_URL`` names the database; without it prorata uses the SQLite file
``./var/prorata.db``. Plain ``postgresql://`` URLs are routed to psycopg 3.

Invariants of every engine made here:
- SQLite runs in WAL mode with foreign keys on and a generous busy timeout, and every
  transaction starts with ``BEGIN IMMEDIATE``: writers queue for the write lock at the
  start instead of failing half-way, so one change per database applies at a time;
- PostgreSQL runs at READ COMMITTED; services lock the rows they change
  (``SELECT … FOR UPDATE``), so one change per subscription applies at a time;
- an SQLite engine made with ``autocheckpoint=False`` never checkpoints its write-ahead
  log itself: a :class:`~prorata.adapters.checkpoints.Checkpointer` beside it must (the
  bill run's workers, whose parent checkpoints for them);
- :func:`batch_connection` gives a connection whose SQLite page cache holds a bill-run
  batch's pages (:data:`BATCH_PAGE_CACHE_KIB`); other connections keep SQLite's default;
- :func:`migrate` brings the schema to Alembic's head and is idempotent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_URL = "sqlite:///var/prorata.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``PRORATA_DATABASE_URL``, else the SQLite default."""
    chosen = url or os.environ.get("PRORATA_DATABASE_URL") or DEFAULT_URL
    parsed = make_url(chosen)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str | None = None, *, pool: bool = True, autocheckpoint: bool = True
) -> Engine:
    """An engine for ``url`` (see :func:`database_url`) with the settings above;
    ``autocheckpoint=False``: SQLite connections that leave checkpoints to another."""
    full = database_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(full, parsed.database, autocheckpoint)
    kwargs = {} if pool else {"poolclass": NullPool}
    return create_engine(full, isolation_level="READ COMMITTED", **kwargs)


def _sqlite_engine(url: str, path: str | None, autocheckpoint: bool = True) -> Engine:
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Writers take the write lock at BEGIN, so they queue instead of failing midway;
        # readers (execution option sqlite_begin="DEFERRED") run beside them on a snapshot.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {'DEFERRED' if mode == 'DEFERRED' else 'IMMEDIATE'}")

    return engine


# A bill-run batch of 1,000 renewals on SQLite dirties about 5,400 pages (the rows, and
# the index leaves its inserts and head moves reach at random) and reads more; SQLite's
# default page cache (2 MiB, about 500 pages) spilled them to the write-ahead log before
# the commit and read them back. Counted over a million renewals with two workers
# (bench/bill_run.py): pread and pwrite calls 17.1 and 18.5 million in batches of 200 with
# the default cache, 12.2 and 15.8 million with 64 MiB, 8.7 and 13.3 million in batches of
# 1,000 with 64 MiB; 128 MiB gave the same counts as 64.
BATCH_PAGE_CACHE_KIB = 64 * 1024
_BATCH_CACHE = "prorata_batch_page_cache"  # set in a DBAPI connection's info once done


def batch_connection(engine: Engine) -> Connection:
    """``engine.connect()``, on SQLite with a page cache of :data:`BATCH_PAGE_CACHE_KIB`
    for as long as the pooled driver connection lives (set once, outside any transaction;
    SQLite empties a connection's cache whenever another connection wrote, so the cache
    only has to hold one transaction's pages)."""
    connection = engine.connect()
    if engine.dialect.name == "sqlite" and not connection.info.get(_BATCH_CACHE):
        # on the driver's connection: through SQLAlchemy the statement would begin a
        # transaction, and ours take the write lock when they begin
        connection.connection.driver_connection.execute(
            f"PRAGMA cache_size=-{BATCH_PAGE_CACHE_KIB}"
        )
        connection.info[_BATCH_CACHE] = True
    return connection


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def alembic_config(url: str | None = None) -> Config:
    # Alembic is imported only to migrate: every worker process imports this module.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest schema."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

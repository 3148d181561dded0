"""The bill run's connections: on SQLite a page cache that holds a batch
(``batch_connection``), set outside any transaction; and batches of the default size
renew as the simulator does."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from sqlalchemy import text

from prorata.adapters.database import BATCH_PAGE_CACHE_KIB, batch_connection
from prorata.services.bill_run import DEFAULT_BATCH, new_run_id, run_until_done
from tests.billrun import world
from tests.billrun.checks import assert_same_as_book, read_store

UNTIL = datetime(2024, 3, 1, 12, tzinfo=world.ZONE)


def _cache_size(connection) -> int:
    return connection.connection.driver_connection.execute("PRAGMA cache_size").fetchone()[0]


def test_the_page_cache_is_set_without_a_transaction(engine):
    if engine.dialect.name != "sqlite":
        with batch_connection(engine) as connection:  # a plain connection there
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
        return
    with engine.connect() as plain:
        assert _cache_size(plain) != -BATCH_PAGE_CACHE_KIB  # SQLite's default
    with batch_connection(engine) as connection:
        assert _cache_size(connection) == -BATCH_PAGE_CACHE_KIB
        assert not connection.in_transaction()
        # no lock taken: another connection takes the write lock without waiting
        other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()


def test_default_batches_renew_as_the_simulator(engine):
    plan = world.plan(DEFAULT_BATCH // 40, 11, accounts=20)
    tenant = world.record(engine, plan)
    run_until_done(engine, UNTIL, run_id=new_run_id())
    assert_same_as_book(read_store(engine, tenant), world.expected(plan, UNTIL))

"""The schema, its migrations, the SQLite settings and the demo set-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite

from prorata.adapters import schema as t
from prorata.adapters.database import database_url, make_engine, migrate
from prorata.entrypoints.setup import load_demo


def test_migrations_build_exactly_the_schema_and_run_twice(engine):
    migrate(engine)  # the fixture migrated already: a second run is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, t.metadata)
    assert differences == []


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_the_default_database_is_a_file_under_var(monkeypatch):
    monkeypatch.delenv("PRORATA_DATABASE_URL", raising=False)
    assert database_url() == "sqlite:///var/prorata.db"
    monkeypatch.setenv("PRORATA_DATABASE_URL", "postgresql://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"


def test_instants_are_stored_in_utc_and_naive_ones_refused(engine):
    with engine.begin() as connection, pytest.raises(Exception, match="naive"):
        connection.execute(
            t.tenants.insert().values(
                slug="x",
                name="x",
                currency="EUR",
                timezone="UTC",
                created_at=datetime(2024, 1, 1),
            )
        )
    with engine.begin() as connection:
        connection.execute(
            t.tenants.insert().values(
                slug="y",
                name="y",
                currency="EUR",
                timezone="UTC",
                created_at=datetime(2024, 1, 1, 12, tzinfo=UTC),
            )
        )
        stored = connection.execute(select(t.tenants.c.created_at)).scalar_one()
    assert stored == datetime(2024, 1, 1, 12, tzinfo=UTC) and stored.tzinfo is not None


@settings(max_examples=300)
@given(st.datetimes(timezones=st.timezones()))
def test_an_instant_is_bound_on_sqlite_as_sqlalchemy_writes_its_utc_time(value):
    """Instant's own SQLite processor writes what ``process_bind_param`` and SQLite's
    ``DATETIME`` processor write together."""
    dialect = sqlite.dialect()
    naive = t.Instant().process_bind_param(value, dialect)
    assert t.Instant()._cached_bind_processor(dialect)(value) == (
        sqlite.DATETIME().bind_processor(dialect)(naive)
    )


def test_the_sqlite_text_of_no_instant_is_none_and_of_a_naive_one_an_error():
    assert t.sqlite_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        t.sqlite_text(datetime(2024, 1, 1))


def test_demo_loads_once_with_history_up_to_now(engine):
    now = datetime(2026, 11, 22, tzinfo=UTC)
    loaded = load_demo(engine, now=now)
    assert list(loaded) == [
        "aircall-contract",
        "chetspms-plans",
        "gotoassist-seats",
        "groupdocs-licence",
        "kajoom-hosting",
    ]
    assert all(token.startswith("prt_") for token in loaded.values())
    assert load_demo(engine, now=now) == {}
    with engine.connect() as connection:
        documents = connection.execute(select(func.count()).select_from(t.documents)).scalar()
        users = connection.execute(select(func.count()).select_from(t.users)).scalar()
        overdue = connection.execute(
            select(func.count()).where(t.subscriptions.c.due_at <= now)
        ).scalar()
    assert documents > 3 and users == 6 * 3 + 5 * 2  # 6 accounts × 3 users, 2 staff per tenant
    assert overdue == 0  # renewed up to now


def test_every_update_of_an_account_row_adds_an_account_change_on_sqlite(engine):
    """SQLite: the trigger of 0011 writes one ``account_changes`` row per account row
    updated, by any statement, in the order of the updates; inserts add none. PostgreSQL
    (whose bill run locks accounts instead) has no trigger: the table stays empty."""
    with engine.begin() as connection:
        tenant = connection.execute(
            t.tenants.insert()
            .values(
                slug="x",
                name="x",
                currency="EUR",
                timezone="UTC",
                created_at=datetime(2024, 1, 1, tzinfo=UTC),
            )
            .returning(t.tenants.c.id)
        ).scalar_one()
        ids = [
            connection.execute(
                t.accounts.insert()
                .values(
                    tenant_id=tenant,
                    key=key,
                    locale="fr",
                    auto_pay=False,
                    tax_rate="0",
                    created_at=datetime(2024, 1, 1, tzinfo=UTC),
                )
                .returning(t.accounts.c.id)
            ).scalar_one()
            for key in ("a", "b")
        ]
    changes = select(t.account_changes.c.account_id).order_by(t.account_changes.c.id)
    with engine.connect() as connection:
        assert connection.execute(changes).scalars().all() == []
    with engine.begin() as connection:
        connection.execute(t.accounts.update().where(t.accounts.c.id == ids[1]).values(name="B"))
        connection.execute(t.accounts.update().values(auto_pay=True))
    with engine.connect() as connection:
        written = connection.execute(changes).scalars().all()
    if engine.dialect.name == "sqlite":
        assert written[0] == ids[1] and sorted(written[1:]) == sorted(ids)
    else:
        assert written == []

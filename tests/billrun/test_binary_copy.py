"""PostgreSQL writes a batch's rows with a binary COPY (``batch_writing``): each value goes
in its column's own type, read back as it was given; a value the binary dumpers would
refuse, or wrap (an integer beyond its column's range), is raised as SQLAlchemy raises a
bad parameter, so that the batch is rolled back and renewed one subscription at a time;
nothing of it is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from prorata.adapters import schema as t
from prorata.adapters.batch_writing import prepare_rows, write_prepared

AT = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
TERMS = insert(t.subscription_terms)


@pytest.fixture
def subscription(engine):
    """A subscription row to hang terms on; its row id."""
    if engine.dialect.name != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's")
    with engine.begin() as connection:
        tenant = connection.execute(
            insert(t.tenants)
            .values(slug="copy", name="Copy", currency="EUR", timezone="UTC", created_at=AT)
            .returning(t.tenants.c.id)
        ).scalar_one()
        account = connection.execute(
            insert(t.accounts)
            .values(
                tenant_id=tenant, key="a", locale="fr", auto_pay=True, tax_rate="0", created_at=AT
            )
            .returning(t.accounts.c.id)
        ).scalar_one()
        return connection.execute(
            insert(t.subscriptions)
            .values(
                tenant_id=tenant,
                key="s",
                account_id=account,
                version=1,
                status="active",
                plan="p",
                quantity=1,
                created_at=AT,
            )
            .returning(t.subscriptions.c.id)
        ).scalar_one()


def _terms(subscription: int, version: int, **changed) -> dict:
    row = {
        "subscription_id": subscription,
        "version": version,
        "valid_from": AT,
        "reason": "renewal",
        "plan": "pro",
        "quantity": 3,
        "status": "active",
        "period_start": AT,
        "period_end": None,
        "state": "{}",
        "created_at": AT,
    }
    return {**row, **changed}


def _write(connection, rows: list[dict]) -> int:
    instants: dict = {}
    parts = prepare_rows(connection.dialect, TERMS, rows, instants)
    return sum(write_prepared(connection, part, lambda text: text, instants) for part in parts)


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(t.subscription_terms)).scalar()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_values_copied_in_binary_read_back_as_given(db_url, engine, subscription):
    rows = [_terms(subscription, 1), _terms(subscription, 2, quantity=2**31 - 1, reason="é⟧")]
    with engine.begin() as connection:
        assert _write(connection, rows) == 2
    columns = [t.subscription_terms.c[key] for key in rows[0]]
    with engine.connect() as connection:
        read = connection.execute(select(*columns).order_by(t.subscription_terms.c.version))
        assert [dict(row._mapping) for row in read] == rows


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "changed",
    [{"quantity": 2**31}, {"quantity": -(2**31) - 1}, {"quantity": "3"}, {"plan": 7}],
    ids=["int4 above", "int4 below", "text in an integer", "integer in a text"],
)
def test_a_value_the_binary_copy_cannot_take_is_refused_and_nothing_written(
    db_url, engine, subscription, changed
):
    with engine.connect() as connection:
        transaction = connection.begin()
        with pytest.raises(SQLAlchemyError):
            _write(connection, [_terms(subscription, 1), _terms(subscription, 2, **changed)])
        transaction.rollback()
    assert _count(engine) == 0

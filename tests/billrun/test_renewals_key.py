"""Revision 0010: the renewals' exactly-once key indexed instant first, on a store that
already holds renewals; the key still refuses a renewal written twice."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from prorata.adapters import schema as t
from prorata.adapters.database import alembic_config
from prorata.services.bill_run import new_run_id, run_until_done
from tests.billrun import world

UNTIL = datetime(2024, 3, 1, 12, tzinfo=world.ZONE)


def _renewals(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(t.renewals).order_by("id"))]


def _key_columns(engine) -> list[list[str]]:
    with engine.connect() as connection:
        found = inspect(connection).get_unique_constraints("renewals")
        return [unique["column_names"] for unique in found]


def test_the_key_is_reordered_with_the_renewals_kept_and_still_unique(engine):
    world.record(engine, world.plan(40, 41, accounts=30))
    run_until_done(engine, UNTIL, run_id=new_run_id(), batch=16)
    written = _renewals(engine)
    assert len(written) > 40  # some subscriptions renewed more than once
    assert _key_columns(engine) == [["due_at", "subscription_id"]]

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    assert _key_columns(engine) == [["subscription_id", "due_at"]]
    assert _renewals(engine) == written
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    assert _key_columns(engine) == [["due_at", "subscription_id"]]
    assert _renewals(engine) == written

    first = dict(zip([c.name for c in t.renewals.columns], written[0], strict=True))
    again = {name: value for name, value in first.items() if name != "id"}
    with pytest.raises(IntegrityError, match="due_at"), engine.begin() as connection:
        connection.execute(insert(t.renewals).values({**again, "bill_run": "another"}))
    with engine.begin() as connection:  # the same subscription at another instant is new
        later = again["due_at"].replace(year=again["due_at"].year + 5)
        connection.execute(insert(t.renewals).values({**again, "due_at": later}))

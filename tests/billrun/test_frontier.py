"""A worker claims from its frontier, and still renews what was given back behind it.

On PostgreSQL a worker's claims start at the first row of its previous claim
(:class:`~prorata.services.bill_run.Frontier`), not at the start of the due index, which
keeps an entry for every renewed subscription's old instant until a vacuum. Here another
transaction holds the first due subscriptions (``FOR UPDATE``, as another worker's batch
would) while the worker claims past them; it then gives them back (rolls back, as a worker
that died would). The worker's later claims start at its frontier, after them, and
nothing renews them until no claim from the frontier finds anything: it then claims from
the start once more and renews them. The result is the documents, states, ledger moves and
renewal keys of one bill run with nothing held (numbers apart: the held ones are numbered
last), and each subscription waited for its account's earlier renewal.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.services.bill_run import Frontier, due_count, new_run_id, run_batch, run_until_done
from tests.billrun import checks, world
from tests.billrun.test_concurrent import assert_same_documents
from tests.conftest import migrated_database

UNTIL = datetime(2024, 3, 1, 12, tzinfo=world.ZONE)
SUBSCRIPTIONS = 80
HELD = 4
BATCH = 10


def first_due(connection, tenant: int, count: int) -> list[tuple[datetime, int]]:
    subs = t.subscriptions.c
    query = (
        select(subs.due_at, subs.id)
        .where(subs.tenant_id == tenant, subs.due_at <= UNTIL)
        .order_by(subs.due_at, subs.id)
        .limit(count)
    )
    return [tuple(row) for row in connection.execute(query)]


def renew(engine, skip: set[int], frontier: Frontier):
    return run_batch(engine, UNTIL, run_id=new_run_id(), batch=BATCH, skip=skip, frontier=frontier)


@pytest.fixture
def postgres_engine(request, tmp_path):
    """PostgreSQL only: another transaction holds rows (``FOR UPDATE``) there."""
    for url in migrated_database("postgresql", request, tmp_path):
        engine = make_engine(url)
        yield engine
        engine.dispose()


def test_held_subscriptions_behind_the_frontier_are_renewed_at_the_end(postgres_engine):
    engine = postgres_engine
    plan = world.plan(SUBSCRIPTIONS, 515151)
    single = world.record(engine, plan)
    one = run_until_done(engine, UNTIL, run_id=new_run_id(), batch=BATCH)
    reference = checks.read_store(engine, single)

    tenant = world.record(engine, plan)
    assert due_count(engine, UNTIL) == one.subscriptions
    frontier, skip = Frontier(), set()
    subs = t.subscriptions.c
    with engine.connect() as holder:
        holder.begin()
        held = first_due(holder, tenant, HELD)
        holder.execute(
            select(subs.id).where(subs.id.in_([row_id for _, row_id in held])).with_for_update()
        )
        assert renew(engine, skip, frontier).renewals  # claimed past the held ones
        assert frontier.after["others"] > max(held)
        holder.rollback()  # given back, behind the frontier
    # the next claims start at the frontier: the held ones stay due while others are
    after = renew(engine, skip, frontier)
    assert after.renewals and frontier.after["others"] > max(held)
    with engine.connect() as connection:
        assert set(first_due(connection, tenant, HELD)) == set(held)

    while (done := renew(engine, skip, frontier)).subscriptions:  # then from the start
        assert not done.failures
    assert frontier.after == {}  # restarted, found nothing more
    assert due_count(engine, UNTIL) == 0
    checks.check_invariants(engine, tenant)
    assert_same_documents(reference, checks.read_store(engine, tenant))


def test_a_frontier_claim_that_renews_nothing_claims_again_from_the_start(db_url, engine):
    """Whatever is behind the frontier is renewed once nothing after it is (here the
    frontier is past everything due): in due order, as one bill run from the start."""
    plan = world.plan(SUBSCRIPTIONS, 616161, accounts=SUBSCRIPTIONS // 4)
    tenant = world.record(engine, plan)
    due = due_count(engine, UNTIL)
    with engine.connect() as connection:
        last_due, last_id = first_due(connection, tenant, due)[-1]
    frontier, skip = Frontier(), set()
    frontier.after["others"] = (last_due, last_id + 1)
    total = 0
    while (done := renew(engine, skip, frontier)).subscriptions:
        total += done.subscriptions
    assert total == due
    assert due_count(engine, UNTIL) == 0
    checks.assert_same_as_book(checks.read_store(engine, tenant), world.expected(plan, UNTIL))

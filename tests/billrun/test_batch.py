"""The batch path writes exactly what renewing one subscription at a time writes.

The same population (``world.plan``: 90 subscriptions on 10 accounts, so that accounts
hold several subscriptions and the credit one renewal adds or consumes is seen by the next
renewal of the same account in the same batch; accounts paying by hand, on issue, or
through a gateway token, whose renewal invoices open a collection) is recorded in two empty
databases of the same kind. One is renewed with the batch path (``run_until_done``, batches
of 25), the other one subscription at a time (``together=False``: the per-subscription path
with its savepoints). Every row the bill run writes must then be the same in both, row ids, invoice
numbers, stored states and outbox payloads included (only the clock's ``created_at`` of
new terms differs).

Then the batch's ways out, against the same reference:

- subscriptions the batch cannot renew (here: every third one claimed, made to raise
  :class:`~prorata.adapters.renewal_batch.SlowPath`) are renewed alone in their turn, with
  what was kept before them written first: still the same rows, numbers in the same order;
- a batch whose writing fails (a renewal key that already exists) is rolled back and
  renewed one subscription at a time: that subscription fails alone, the rest commits, and
  once the key is gone the next bill run renews it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import make_url

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.adapters.renewal_batch import Batch, BatchBook, SlowPath, StaleBatch
from prorata.adapters.store import StoreBook, load_config
from prorata.core.documents import Line, issue_credit_note
from prorata.core.money import Money
from prorata.services import bill_run
from prorata.services.bill_run import due_count, new_run_id, run_batch, run_until_done
from tests.billrun import checks, world
from tests.conftest import migrated_database

UNTIL = datetime(2024, 3, 1, 12, tzinfo=world.ZONE)
BATCH = 25
# what a bill run writes (and what the recording wrote), the clock's columns apart
TABLES = (
    t.subscriptions,
    t.subscription_terms,
    t.documents,
    t.document_lines,
    t.ledger_entries,
    t.payments,
    t.renewals,
    t.outbox,
    t.number_series,
    t.collections,
)
CLOCK = {("subscription_terms", "created_at"), ("subscriptions", "created_at")}


@pytest.fixture
def reference(db_url, request, tmp_path):
    """A second empty database of the same kind: the one renewed one at a time."""
    folder = tmp_path / "reference"
    folder.mkdir()
    yield from migrated_database(make_url(db_url).get_backend_name(), request, folder)


@pytest.fixture
def reference_engine(reference):
    engine = make_engine(reference)
    yield engine
    engine.dispose()


def written(engine) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        tables = {
            table.name: [
                tuple(v for k, v in row._mapping.items() if (table.name, k) not in CLOCK)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in TABLES
        }
        connection.rollback()
    return tables


def assert_written_alike(engine, reference_engine) -> None:
    got, want = written(engine), written(reference_engine)
    for table in want:
        assert len(got[table]) == len(want[table]), table
        for row, expected in zip(got[table], want[table], strict=True):
            assert row == expected, table


def populate(*engines) -> tuple[world.Plan, int]:
    plan = world.plan(90, 5161, accounts=10, tokens=True)
    tenants = {world.record(engine, plan) for engine in engines}
    assert len(tenants) == 1  # same ids in both databases
    return plan, tenants.pop()


def test_a_batch_writes_what_one_at_a_time_writes(engine, reference_engine, monkeypatch):
    plan, tenant = populate(engine, reference_engine)
    due = due_count(engine, UNTIL)
    alone_in_the_batch = []
    renew_one = bill_run._renew_one
    monkeypatch.setattr(
        bill_run,
        "_renew_one",
        lambda c, books, row, *a: (
            alone_in_the_batch.append(row.key) or renew_one(c, books, row, *a)
        ),
    )
    together = run_until_done(engine, UNTIL, run_id="run", batch=BATCH)
    monkeypatch.undo()
    # every renewal was written together, auto-pay through a gateway token included
    assert alone_in_the_batch == []
    with engine.connect() as connection:
        assert connection.execute(select(t.collections.c.id)).all()
    alone = run_until_done(reference_engine, UNTIL, run_id="run", batch=BATCH, together=False)
    assert together == alone
    assert (together.subscriptions, together.failures) == (due, {})
    assert_written_alike(engine, reference_engine)
    checks.assert_same_as_book(checks.read_store(engine, tenant), world.expected(plan, UNTIL))
    checks.check_invariants(engine, tenant)


def test_what_the_batch_cannot_renew_is_renewed_alone_in_its_turn(
    engine, reference_engine, monkeypatch
):
    plan, tenant = populate(engine, reference_engine)
    order = list(world.claim_order(world.replay(plan), UNTIL))
    alone = set(order[1::3])
    subscription = BatchBook.subscription

    def refusing(self, sub_id):
        if sub_id in alone:
            raise SlowPath("made to refuse")
        return subscription(self, sub_id)

    monkeypatch.setattr(BatchBook, "subscription", refusing)
    together = run_until_done(engine, UNTIL, run_id="run", batch=BATCH)
    monkeypatch.undo()
    reference = run_until_done(reference_engine, UNTIL, run_id="run", batch=BATCH, together=False)
    assert together == reference
    assert not together.failures
    assert_written_alike(engine, reference_engine)
    checks.check_invariants(engine, tenant)


def test_a_batch_that_cannot_be_written_is_renewed_one_at_a_time(engine):
    plan = world.plan(60, 5151, accounts=20)
    tenant = world.record(engine, plan)
    order = list(world.claim_order(world.replay(plan), UNTIL))
    victim = order[len(order) // 2]
    sub = t.subscriptions.c
    with engine.begin() as connection:
        row = connection.execute(
            select(sub.id, sub.due_at).where(sub.tenant_id == tenant, sub.key == victim)
        ).one()
        taken = {
            "tenant_id": tenant,
            "subscription_id": row.id,
            "due_at": row.due_at,
            "bill_run": "elsewhere",
            "created_at": row.due_at,
        }
        connection.execute(insert(t.renewals).values(**taken))

    summary = run_until_done(engine, UNTIL, run_id=new_run_id(), batch=1000)
    assert list(summary.failures) == [victim]
    assert "IntegrityError" in summary.failures[victim]
    assert summary.subscriptions == len(order) - 1
    assert due_count(engine, UNTIL) == 1

    with engine.begin() as connection:
        connection.execute(delete(t.renewals).where(t.renewals.c.bill_run == "elsewhere"))
    last = run_until_done(engine, UNTIL, run_id=new_run_id())
    assert (last.subscriptions, last.failures) == (1, {})
    book = world.expected(plan, UNTIL)
    stored = checks.read_store(engine, tenant)
    assert checks.document_multiset(stored.documents) == checks.document_multiset(book.documents)
    assert set(stored.renewals) == set(book.renewals)
    checks.check_invariants(engine, tenant)


def _credit_by_hand(engine, tenant: int, sub_key: str, amount: str) -> None:
    """A credit note on ``sub_key``'s account, as the back office issues one, committed."""
    with engine.begin() as connection:
        book = StoreBook(connection, load_config(connection, tenant))
        sub = book.subscription(sub_key)
        money = Money.of(amount, sub.currency)
        line = Line(
            kind="adjustment",
            description="goodwill",
            subscription=sub.id,
            plan=sub.plan,
            quantity=1,
            amount=money,
            unit_price=money.amount,
        )
        book.credit(sub.account, sub.currency)
        note, entries = issue_credit_note(
            number=book.next_number("CN"),
            issued_at=UNTIL - timedelta(days=40),
            account=book.accounts[sub.account],
            currency=sub.currency,
            lines=[line],
            refers_to=None,
            credited_to="account",
            rounding="half_up",
        )
        book.record(note, entries)


def _batches(engine, *, together: bool, before=None) -> list:
    """Batch after batch until nothing is due; ``before`` runs before the first."""
    if before is not None:
        before()
    summaries = []
    while (done := run_batch(engine, UNTIL, run_id="run", batch=BATCH, together=together)).renewals:
        summaries.append(done)
    return summaries


def _changed_meanwhile(db_url, engine, reference_engine, monkeypatch, change) -> tuple:
    """Both databases renewed, ``change(engine, tenant, subscription key)`` committed by
    another writer on the batch path's database between the first batch's reading and its
    writing, and on the reference before it renews one at a time. Returns the batch
    path's summaries, the reference's, the batch checks' stale reasons and the tenant."""
    plan, tenant = populate(engine, reference_engine)
    first = next(world.claim_order(world.replay(plan), UNTIL))
    stale: list[str] = []
    check, read = Batch.check_unchanged, bill_run.read_batch

    def reading(connection, ids):  # the batch is claimed: its snapshot is taken
        if not stale:
            change(second, tenant, first)
        return read(connection, ids)

    def checking(self, connection):
        try:
            check(self, connection)
        except StaleBatch as exc:
            stale.append(str(exc))
            raise

    second = make_engine(db_url)  # another writer, committing while the batch computes
    monkeypatch.setattr(bill_run, "read_batch", reading)
    monkeypatch.setattr(Batch, "check_unchanged", checking)
    together = _batches(engine, together=True)
    second.dispose()
    monkeypatch.undo()
    alone = _batches(
        reference_engine,
        together=False,
        before=lambda: change(reference_engine, tenant, first),
    )
    return together, alone, stale, tenant


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_batch_computed_outside_the_write_lock_is_computed_again_when_credit_moved(
    db_url, engine, reference_engine, monkeypatch
):
    """SQLite computes a batch before taking the write lock: credit added meanwhile to one
    of its accounts (a credit note by hand, committed between the batch's reading and its
    writing) is seen. The batch is computed again under the lock, and everything written is
    what renewing one at a time writes with the credit note issued first."""

    def credit(on, tenant, key):
        _credit_by_hand(on, tenant, key, "500.00")

    together, alone, stale, tenant = _changed_meanwhile(
        db_url, engine, reference_engine, monkeypatch, credit
    )
    assert stale == ["the credit of an account of the batch moved meanwhile"]
    assert together == alone
    assert not any(summary.failures for summary in together)
    assert_written_alike(engine, reference_engine)
    checks.check_invariants(engine, tenant)


def _tax_changed_by_hand(engine, tenant: int, sub_key: str) -> None:
    """The account of ``sub_key`` taxed at 10 % from now on, as the back office edits it."""
    with engine.begin() as connection:
        account = StoreBook(connection, load_config(connection, tenant)).subscription(sub_key)
        connection.execute(
            t.accounts.update()
            .where((t.accounts.c.tenant_id == tenant) & (t.accounts.c.key == account.account))
            .values(tax_rate="10")
        )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_batch_computed_outside_the_write_lock_is_computed_again_when_an_account_changed(
    db_url, engine, reference_engine, monkeypatch
):
    """As above, with an account of the batch edited (its tax rate) between the batch's
    reading and its writing: the update is seen through ``account_changes`` (written by a
    trigger, not by the code that updated the row), the batch is computed again under the
    lock, and the invoices carry the new tax as renewing one at a time after the edit."""
    together, alone, stale, tenant = _changed_meanwhile(
        db_url, engine, reference_engine, monkeypatch, _tax_changed_by_hand
    )
    assert stale == ["an account of the batch changed meanwhile"]
    assert together == alone
    assert_written_alike(engine, reference_engine)
    with engine.connect() as connection:
        taxed = connection.execute(
            select(t.documents.c.tax_minor).where(t.documents.c.tax_minor > 0)
        ).all()
    assert taxed, "the edit reached the invoices"
    checks.check_invariants(engine, tenant)

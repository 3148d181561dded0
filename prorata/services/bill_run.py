"""The bill run: every subscription that fell due is renewed, exactly once, by any number
of workers.

A worker repeats :func:`run_batch` until nothing is due. A batch is one transaction:

- it claims up to ``batch`` due subscriptions (``due_at <= until``, oldest first). On
  PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``: workers on any number of
  machines take disjoint batches, and a worker that dies loses its locks with its
  connection, so its batch is claimed again by the next worker (the lease is the
  transaction). On SQLite the batch holds the database's write lock: workers take turns;
- it renews each claimed subscription through :class:`~prorata.services.billing.Billing`
  (the simulator's code: scheduled changes and cancellations, term ends, renewal invoices
  with pending proration lines, account credit consumed) for every instant it fell due up
  to ``until``, and writes the events of each renewal to the outbox;
- each renewal inserts its key (subscription, due instant) into ``renewals``, unique: a
  renewal that somehow ran twice could not commit. Together with the subscription's version
  check this makes renewals exactly-once under crashes and concurrent bill runs;
- a subscription that fails is rolled back to a savepoint, reported and left for the next
  bill run; the rest of the batch commits.

``dry_run`` runs the same code and rolls back: it shows what a bill run would issue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

from prorata.adapters import schema as t
from prorata.adapters.store import StoreBook, load_config, lock_series
from prorata.core.changes import Context
from prorata.core.documents import Invoice
from prorata.services.billing import Billing
from prorata.services.recording import publish_outcome
from prorata.services.transaction import retryable
from prorata.services.views import document_view


@dataclass
class Summary:
    """What bill runs did: subscriptions and renewals, invoices, invoiced totals per
    currency (minor units), failures (subscription key → error), documents (dry runs)."""

    subscriptions: int = 0
    renewals: int = 0
    invoices: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    documents: list[dict] = field(default_factory=list)

    def add(self, other: Summary) -> None:
        self.subscriptions += other.subscriptions
        self.renewals += other.renewals
        self.invoices += other.invoices
        for currency, minor in other.totals.items():
            self.totals[currency] = self.totals.get(currency, 0) + minor
        self.failures.update(other.failures)
        self.documents.extend(other.documents)


_ATTEMPTS = 5


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:16]}"


def due_count(engine: Engine, until: datetime) -> int:
    """How many subscriptions are due at or before ``until``."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        return connection.execute(
            select(func.count()).where(t.subscriptions.c.due_at <= until)
        ).scalar_one()


def _claim(connection: Connection, until: datetime, batch: int, skip: set[int]):
    query = (
        select(t.subscriptions.c.id, t.subscriptions.c.tenant_id, t.subscriptions.c.key)
        .where(t.subscriptions.c.due_at <= until)
        .order_by(t.subscriptions.c.due_at, t.subscriptions.c.id)
        .limit(batch)
    )
    if skip:
        query = query.where(t.subscriptions.c.id.not_in(skip))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=t.subscriptions)
    return connection.execute(query).all()


def _renew(connection: Connection, rows, until: datetime, run_id: str, summary: Summary, *, keep):
    books: dict[int, tuple[StoreBook, Billing] | str] = {}
    for row in rows:
        if row.tenant_id not in books:
            try:
                config = load_config(connection, row.tenant_id)
            except Exception as exc:  # a tenant that cannot be read fails alone
                books[row.tenant_id] = f"tenant configuration: {type(exc).__name__}: {exc}"
            else:
                lock_series(connection, row.tenant_id, "INV")  # first: no deadlock with accounts
                book = StoreBook(connection, config)
                book.bill_run = run_id
                ctx = Context(config.catalog, config.policy, book.accounts)
                books[row.tenant_id] = (book, Billing(ctx, book, config.policy.rounding))
        loaded = books[row.tenant_id]
        if isinstance(loaded, str):
            summary.failures[row.key] = loaded
            continue
        book, billing = loaded
        savepoint = connection.begin_nested()
        try:
            outcomes = billing.catch_up(row.key, until.astimezone(book.zone))
            for outcome in outcomes:
                publish_outcome(
                    connection, row.tenant_id, "subscription.renewed", outcome, outcome.at
                )
            savepoint.commit()
        except DBAPIError as exc:
            savepoint.rollback()
            book.forget(row.key)
            if retryable(exc):
                raise  # a deadlock: the whole batch is run again (run_batch)
            summary.failures[row.key] = f"{type(exc).__name__}: {exc}"
            continue
        except Exception as exc:  # one subscription's failure does not stop the run
            savepoint.rollback()
            book.forget(row.key)
            summary.failures[row.key] = f"{type(exc).__name__}: {exc}"
            continue
        summary.subscriptions += 1
        summary.renewals += len(outcomes)
        for outcome in outcomes:
            for doc in outcome.documents:
                if isinstance(doc, Invoice):
                    summary.invoices += 1
                    summary.totals[doc.currency] = (
                        summary.totals.get(doc.currency, 0) + doc.total.minor
                    )
                if keep:
                    summary.documents.append(document_view(doc))


def run_batch(
    engine: Engine,
    until: datetime,
    *,
    run_id: str,
    batch: int = 200,
    skip: set[int] | None = None,
) -> Summary:
    """Claim and renew one batch in one transaction; an empty summary when nothing is due.
    Subscriptions that failed are added to ``skip`` so this worker does not retry them."""
    skip = set() if skip is None else skip
    for attempt in range(_ATTEMPTS):
        summary = Summary()
        try:
            with engine.connect() as connection, connection.begin():
                rows = _claim(connection, until, batch, skip)
                if not rows:
                    return summary
                _renew(connection, rows, until, run_id, summary, keep=False)
        except DBAPIError as exc:
            # two batches locking accounts in opposite orders: PostgreSQL kills one; redo it
            if attempt + 1 < _ATTEMPTS and retryable(exc):
                continue
            raise
        skip.update(row.id for row in rows if row.key in summary.failures)
        return summary
    raise AssertionError("unreachable")  # pragma: no cover


def run_until_done(
    engine: Engine,
    until: datetime,
    *,
    run_id: str,
    batch: int = 200,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Batches until nothing is due (failures apart); what they did in total."""
    total, skip = Summary(), set()
    while True:
        done = run_batch(engine, until, run_id=run_id, batch=batch, skip=skip)
        if not done.subscriptions and not done.failures:
            return total
        total.add(done)
        if progress is not None:
            progress(done)


def dry_run(engine: Engine, until: datetime, *, batch: int = 200) -> Summary:
    """What a bill run until ``until`` would do, with its documents; nothing is kept."""
    summary, skip = Summary(), set()
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            # the transaction sees its own renewals: what it renewed is no longer due
            while rows := _claim(connection, until, batch, skip):
                _renew(connection, rows, until, "dry-run", summary, keep=True)
                skip.update(row.id for row in rows if row.key in summary.failures)
        finally:
            transaction.rollback()
    return summary

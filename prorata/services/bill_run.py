"""The bill run: every subscription that fell due is renewed, exactly once, by any number
of workers.

A worker repeats :func:`run_batch` until nothing is due. A batch is one transaction:

- it claims up to ``batch`` due subscriptions (``due_at <= until``, oldest first). On
  PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``: workers on any number of
  machines take disjoint batches, and a worker that dies loses its locks with its
  connection, so its batch is claimed again by the next worker (the lease is the
  transaction). On SQLite a batch is claimed, read and computed in a read transaction
  and only its writing holds the database's write lock (:func:`_outside_the_lock`): the
  workers compute side by side and take turns to write, each first checking that what it
  read has not moved (else the batch is renewed again under the lock). On both, each
  worker of ``prorata bill-run --workers N`` claims first the subscriptions of its share
  of the accounts (account id modulo N), so that workers seldom wait for, or move, the
  same account's credit, then, from the others' shares, only the first due subscription
  of each account;
- it renews the claimed subscriptions one due instant at a time, in the order they fall
  due (instant, then row id: the simulator's order; a subscription due again within the
  claim comes back in its turn), through :class:`~prorata.services.billing.Billing` (the
  simulator's code: scheduled changes and cancellations, term ends, renewal invoices with
  pending proration lines, account credit consumed), and writes the events of each
  renewal to the outbox. A subscription whose account has an earlier renewal due outside
  the claim waits for a later claim: an account's renewals take its credit in due order,
  whichever workers claim them. One worker numbers documents in due order across its
  batches; several number each batch when it is written;
- it does so together (:mod:`prorata.adapters.renewal_batch`): the batch's subscriptions,
  accounts (locked on PostgreSQL) and credit balances are read in a few queries, each
  renewal's writes are kept, and the batch's rows are then written with one statement per
  table (COPY on PostgreSQL), its invoice numbers taken with one update per series, in
  renewal order, as one renewal after the other would have taken them. The series row is
  thus locked only while the batch is written: workers compute side by side;
- each renewal inserts its key (subscription, due instant) into ``renewals``, unique: a
  renewal that somehow ran twice could not commit. Together with the subscription's version
  check (on every head moved) this makes renewals exactly-once under crashes and concurrent
  bill runs;
- a subscription that fails, or that needs more than the batch path provides, is renewed
  alone in its turn, under a savepoint (what the batch kept before it is written first):
  a failure is reported and left for the next bill run, the rest of the batch commits.
  A batch whose writing fails (a database error, a head that moved) is rolled back to its
  savepoint and renewed one subscription at a time, so the one at fault fails alone.

``dry_run`` runs the same code and rolls back: it shows what a bill run would issue.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, tuple_
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from prorata.adapters import schema as t
from prorata.adapters.batch_reading import StaleBatch, read_batch, records
from prorata.adapters.database import batch_connection
from prorata.adapters.numbering import lock_series
from prorata.adapters.renewal_batch import BatchBook, Recorder, numbered_document
from prorata.adapters.store import StoreBook, TenantConfig, load_config
from prorata.core import lifecycle
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


# Subscriptions a batch claims when the caller does not say. A batch has costs of its own,
# whatever its size: about 20 statements (the claim, the batch's reads, the numbers, one
# COPY per table, the heads' move, the commit), each with its round trip and, for COPY, the
# server's setting up of the foreign-key checks; on SQLite, the index pages above the
# leaves, read again by every transaction (SQLite empties a connection's page cache when
# another connection wrote) and written once per commit. A million renewals with two
# workers: on PostgreSQL 188-196 s in batches of 200, 181 s of 500, 173 and 174 s of 1,000,
# 181 s of 2,000; on SQLite, one copied million, with the page cache of batch_connection
# 123.9 to 162.1 s in batches of 1,000 (six runs) against 167.7 to 188.8 s of 200 with
# SQLite's default cache (three runs; the VM's speed moved by a third within the hour); with
# the default cache, 500 was not faster than 200.
DEFAULT_BATCH = 1000


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:16]}"


def due_count(engine: Engine, until: datetime) -> int:
    """How many subscriptions are due at or before ``until``."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        return connection.execute(
            select(func.count()).where(t.subscriptions.c.due_at <= until)
        ).scalar_one()


def _claim(
    connection: Connection,
    until: datetime,
    batch: int,
    skip: set[int],
    share: tuple[int, int] | None = None,
    newest_first: bool = False,
    first_of_account: bool = False,
    after: tuple[datetime, int] | None = None,
):
    """Up to ``batch`` due subscriptions (row id, tenant, key, account row id, due instant),
    oldest first (``newest_first``: from the far end); with a ``share`` (index, count), only
    the accounts whose row id is ``index`` modulo ``count``; ``first_of_account``: only
    those whose account has no other subscription due earlier (due instant, then row id),
    which the account's own worker renews first; ``after``: only from that (due instant,
    row id) on (see :class:`Frontier`)."""
    subs = t.subscriptions.c
    due, row_id = subs.due_at, subs.id
    order = (due.desc(), row_id.desc()) if newest_first else (due, row_id)
    query = (
        select(row_id, subs.tenant_id, subs.key, subs.account_id, due)
        .where(due <= until)
        .order_by(*order)
        .limit(batch)
    )
    if after is not None:
        query = query.where(tuple_(due, row_id) >= tuple_(*after))
    if skip:
        query = query.where(row_id.not_in(skip))
    if share is not None:  # worker ``index`` of ``count``: the accounts it renews first
        index, count = share  # (by account: workers then never move the same credit)
        query = query.where(subs.account_id % count == index)
    if first_of_account:
        other = t.subscriptions.alias("other")
        earlier = (
            select(other.c.id)
            .where(
                other.c.account_id == subs.account_id,
                other.c.due_at <= until,
                (other.c.due_at < due) | ((other.c.due_at == due) & (other.c.id < row_id)),
            )
            .exists()
        )
        if skip:
            earlier = earlier.where(other.c.id.not_in(skip))
        query = query.where(~earlier)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=t.subscriptions)
    return records(connection.execute(query))


class Frontier:
    """Where one worker's next claims start, for each kind of claim (its share of the
    accounts, the others'): the first (due instant, row id) of its previous claim of that
    kind.

    A claim is oldest first, so what was due before that claim's first row was then
    renewed, held by another worker, or not yet due; what the claim left due (a
    subscription waiting for its account's earlier renewal, one due again later) is at or
    after its first row. Claiming from there finds what a claim from the start would,
    without walking what was renewed: PostgreSQL keeps the due index's entry of every
    renewed subscription's old instant until a vacuum, and a claim from the start walked
    all of them (8 ms a claim at a third of a million renewals, 40 ms near a million,
    measured). Only a subscription given back behind the frontier (the batch of another
    worker that died or was rolled back) or made due earlier meanwhile is not seen: when a
    claim from the frontier renews nothing, the worker claims from the start again
    (:meth:`restart`), so nothing due is left behind."""

    def __init__(self) -> None:
        self.after: dict[str, tuple[datetime, int]] = {}
        self.from_start = True  # whether the last claim started at the start, every kind

    def claim(self, connection: Connection, until, batch, skip, share):
        """The next claim, from the frontier: the ``share`` of the accounts first, then the
        first due of each account of the others (:func:`_claim`'s ``first_of_account``);
        the frontier moves to the first row claimed."""
        kinds = [("share", {"share": share}), ("others", {"first_of_account": True})]
        if share is None:
            kinds = [("others", {})]
        self.from_start = True
        for kind, where in kinds:
            after = self.after.get(kind)
            self.from_start = self.from_start and after is None
            rows = _claim(connection, until, batch, skip, after=after, **where)
            if rows:
                self.after[kind] = (rows[0].due_at, rows[0].id)
                return rows
        return []

    def restart(self) -> bool:
        """Claim from the start again; whether the last claim had started later (a claim
        from the start that renewed nothing is not made again)."""
        self.after.clear()
        return not self.from_start


def _earlier_elsewhere(
    connection: Connection, rows, until: datetime, skip: set[int]
) -> dict[int, tuple[datetime, int]]:
    """For each account of the claimed ``rows``: the first (due instant, row id) of its
    subscriptions due by ``until`` that were not claimed with them (nor given up by this
    worker, ``skip``). A claimed subscription falling due after it waits: an account's
    renewals take its credit in the order they fall due, whichever worker claims them.

    Read on PostgreSQL only, where ``SKIP LOCKED`` lets a claim pass over an earlier
    subscription that another worker holds. A SQLite claim is read from one snapshot:
    oldest first (in a share of whole accounts or not), whatever it did not claim falls due
    after all it claimed; a claim from other shares takes only the first due of each
    account (:func:`_claim`) and renews each once (:class:`_InDueOrder`)."""
    if connection.dialect.name != "postgresql":
        return {}
    subs = t.subscriptions.c
    claimed = [row.id for row in rows]
    query = select(subs.account_id, subs.due_at, subs.id).where(
        subs.account_id.in_(sorted({row.account_id for row in rows})),
        subs.due_at <= until,
        subs.id.not_in([*claimed, *skip]),
    )
    first: dict[int, tuple[datetime, int]] = {}
    for account_id, due, row_id in connection.execute(query):
        if account_id not in first or (due, row_id) < first[account_id]:
            first[account_id] = (due, row_id)
    return first


class _InDueOrder:
    """The renewals of claimed subscriptions, one due instant at a time, in the order they
    fall due (instant, then row id: the simulator's order).

    Invariants: a subscription renewed at an instant comes back for its next due instant
    when that is still by ``until`` and, for a full claim, not past the claim's last
    (instant, row id): every due renewal up to there was claimed, so one worker numbers
    its documents in that order across batches; a later one waits for a later claim (as
    does every next instant with ``again=False``). A subscription whose account has a
    renewal due earlier outside the claim (:func:`_earlier_elsewhere`) is left for a later
    claim."""

    def __init__(
        self, rows, until: datetime, full: bool, elsewhere: dict, again: bool = True
    ) -> None:
        self.until, self.elsewhere, self.again = until, elsewhere, again
        self.heap = [(row.due_at, row.id, row) for row in rows]
        heapq.heapify(self.heap)
        self.last = max((row.due_at, row.id) for row in rows) if full and rows else None

    def __iter__(self):
        while self.heap:
            due, row_id, row = heapq.heappop(self.heap)
            first = self.elsewhere.get(row.account_id)
            if first is None or (due, row_id) < first:
                yield due, row

    def renewed(self, row, outcomes) -> bool:
        """``row`` was renewed at its instant: its next due instant comes back if within the
        claim. Whether nothing more is due by ``until`` (the subscription is then counted
        as renewed)."""
        if not outcomes:
            return True
        following = lifecycle.due_at(outcomes[-1].subscription)
        if following is None or following > self.until:
            return True
        if self.again and (self.last is None or (following, row.id) <= self.last):
            heapq.heappush(self.heap, (following, row.id, row))
        return False


def _count(summary: Summary, outcomes, keep: bool, numbered=None, finished: bool = True) -> None:
    """Add one renewal's outcomes (``finished``: its subscription has nothing more due, it
    counts as one renewed); ``numbered`` gives a batch's documents their numbers."""
    summary.subscriptions += finished
    summary.renewals += len(outcomes)
    for outcome in outcomes:
        for doc in outcome.documents:
            if isinstance(doc, Invoice):
                summary.invoices += 1
                summary.totals[doc.currency] = summary.totals.get(doc.currency, 0) + doc.total.minor
            if keep:
                if numbered is not None:
                    doc = numbered_document(doc, numbered)
                summary.documents.append(document_view(doc))


class _OneByOne:
    """Each tenant's :class:`StoreBook` and :class:`Billing` for renewing subscriptions one
    at a time, made when first needed (the tenant's invoice series locked first)."""

    def __init__(self, connection: Connection, configs: dict[int, TenantConfig], run_id: str):
        self.connection, self.configs, self.run_id = connection, configs, run_id
        self.books: dict[int, tuple[StoreBook, Billing]] = {}

    def __getitem__(self, tenant: int) -> tuple[StoreBook, Billing]:
        if tenant not in self.books:
            lock_series(self.connection, tenant, "INV")  # first: no deadlock with accounts
            book = StoreBook(self.connection, self.configs[tenant])
            book.bill_run = self.run_id
            self.books[tenant] = (book, _billing(book))
        return self.books[tenant]


def _billing(book: StoreBook) -> Billing:
    config = book.config
    return Billing(
        Context(config.catalog, config.policy, book.accounts), book, config.policy.rounding
    )


def _renew_one(connection: Connection, books: _OneByOne, row, instant, summary) -> list | None:
    """Renew one subscription at its due ``instant`` under a savepoint; its outcomes (not
    counted), or None when it failed (reported in ``summary``, not raised)."""
    book, billing = books[row.tenant_id]
    savepoint = connection.begin_nested()
    try:
        outcomes = billing.catch_up(row.key, instant.astimezone(book.zone))
        for outcome in outcomes:
            publish_outcome(connection, row.tenant_id, "subscription.renewed", outcome, outcome.at)
        savepoint.commit()
    except DBAPIError as exc:
        savepoint.rollback()
        book.forget(row.key)
        if retryable(exc):
            raise  # a deadlock: the whole batch is run again (run_batch)
        summary.failures[row.key] = f"{type(exc).__name__}: {exc}"
        return None
    except Exception as exc:  # one subscription's failure does not stop the run
        savepoint.rollback()
        book.forget(row.key)
        summary.failures[row.key] = f"{type(exc).__name__}: {exc}"
        return None
    return outcomes


class _Together:
    """Each tenant's :class:`BatchBook` and :class:`Billing` over one :class:`Recorder`."""

    def __init__(self, connection: Connection, recorder: Recorder, configs, run_id: str):
        self.connection, self.recorder = connection, recorder
        self.configs, self.run_id = configs, run_id
        self.books: dict[int, tuple[BatchBook, Billing]] = {}

    def __getitem__(self, tenant: int) -> tuple[BatchBook, Billing]:
        if tenant not in self.books:
            book = BatchBook(self.connection, self.recorder, self.configs[tenant])
            book.bill_run = self.run_id
            self.books[tenant] = (book, _billing(book))
        return self.books[tenant]

    def renew(self, row, instant: datetime) -> list:
        """Renew one subscription at its due ``instant``, its writes (and its events) kept by
        the recorder."""
        book, billing = self[row.tenant_id]
        outcomes = billing.catch_up(row.key, instant.astimezone(book.zone))
        for outcome in outcomes:
            publish_outcome(
                self.recorder, row.tenant_id, "subscription.renewed", outcome, outcome.at
            )
        return outcomes


def _renew_together(
    connection: Connection, rows, configs, until, run_id, summary, keep, full, skip
) -> None:
    """The batch path (:mod:`prorata.adapters.renewal_batch`): read the batch at once,
    renew its subscriptions in due order (:class:`_InDueOrder`) with their writes kept,
    write them all at the end. A subscription the batch cannot renew (it failed, or needs
    what the batch does not provide) is renewed alone, in its turn, after what was kept
    before it is written."""
    batch = read_batch(connection, [row.id for row in rows])  # PostgreSQL: accounts locked
    order = _InDueOrder(rows, until, full, _earlier_elsewhere(connection, rows, until, skip))
    recorder = Recorder(connection, batch)
    together = _Together(connection, recorder, configs, run_id)
    one_by_one = _OneByOne(connection, configs, run_id)
    kept: list = []  # (outcomes, subscription finished) since the last write
    for instant, row in order:
        mark = recorder.mark()
        try:
            outcomes = together.renew(row, instant)
        except Exception as exc:
            if isinstance(exc, DBAPIError) and retryable(exc):
                raise
            recorder.discard(mark)
            together[row.tenant_id][0].forget(row.key)
            numbered = recorder.write(connection)
            for done, finished in kept:
                _count(summary, done, keep, numbered, finished)
            kept = []
            outcomes = _renew_one(connection, one_by_one, row, instant, summary)
            if row.id in batch.states:
                batch.forget(batch.states[row.id].account_id)
            if outcomes is not None:
                _count(summary, outcomes, keep, finished=order.renewed(row, outcomes))
            continue
        kept.append((outcomes, order.renewed(row, outcomes)))
    numbered = recorder.write(connection)
    for done, finished in kept:
        _count(summary, done, keep, numbered, finished)


def _renew(
    connection: Connection,
    rows,
    until: datetime,
    run_id: str,
    summary: Summary,
    *,
    keep: bool,
    full: bool,
    skip: set[int],
    together: bool = True,
) -> None:
    """Renew the claimed ``rows`` into ``summary`` in due order (:class:`_InDueOrder`;
    ``full``: the claim took as many as it could): together (the batch path), or one at a
    time (``together=False``, and for a batch that cannot be written together)."""
    configs: dict[int, TenantConfig] = {}
    broken: dict[int, str] = {}
    for row in rows:
        if row.tenant_id not in configs and row.tenant_id not in broken:
            try:
                configs[row.tenant_id] = load_config(connection, row.tenant_id)
            except Exception as exc:  # a tenant that cannot be read fails alone
                broken[row.tenant_id] = f"tenant configuration: {type(exc).__name__}: {exc}"
        if row.tenant_id in broken:
            summary.failures[row.key] = broken[row.tenant_id]
    rows = [row for row in rows if row.tenant_id in configs]
    if not rows:
        return
    done = Summary()
    if together:
        savepoint = connection.begin_nested()
        try:
            _renew_together(connection, rows, configs, until, run_id, done, keep, full, skip)
            savepoint.commit()
        except (SQLAlchemyError, StaleBatch) as exc:
            savepoint.rollback()
            if isinstance(exc, DBAPIError) and retryable(exc):
                raise  # a deadlock: the whole batch is run again (run_batch)
            done, together = Summary(), False  # each subscription on its own, failing alone
    if not together:
        one_by_one = _OneByOne(connection, configs, run_id)
        order = _InDueOrder(rows, until, full, _earlier_elsewhere(connection, rows, until, skip))
        for instant, row in order:
            outcomes = _renew_one(connection, one_by_one, row, instant, done)
            if outcomes is not None:
                _count(done, outcomes, keep, finished=order.renewed(row, outcomes))
    summary.add(done)


def _outside_the_lock(
    engine: Engine,
    until: datetime,
    *,
    run_id: str,
    batch: int,
    skip: set[int],
    share: tuple[int, int] | None,
    steal: bool = False,
) -> tuple[Summary, int, bool] | None:
    """SQLite: the batch path with the write lock held only to write. A batch is claimed,
    read and computed in a read transaction (a snapshot; workers compute side by side),
    then written in a write transaction that first checks that the batch's accounts and
    their credit are still what was read; the heads' compare-and-set moves check the
    subscriptions and the renewal keys are unique, as always.

    ``steal``: the newest due of other workers' shares, each the first due of its account
    (its own worker renews the rest of the account in due order).

    Returns what was written, how many subscriptions were claimed and whether all their
    renewals were computed. A subscription that fails or needs the one-at-a-time path ends
    the computing: what came before it is written and the caller renews the rest the
    usual way, so documents are still numbered in due order. None, with nothing written,
    when the batch must be renewed the usual way, under the lock: something changed
    meanwhile (another worker renewed one of these subscriptions, a change or a payment
    came in), or its first subscription failed or needs the one-at-a-time path."""
    with batch_connection(engine) as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        with connection.begin():
            rows = _claim(connection, until, batch, skip, share, steal, first_of_account=steal)
            if not rows:
                return Summary(), 0, True
            try:
                configs = {
                    tenant: load_config(connection, tenant)
                    for tenant in {r.tenant_id for r in rows}
                }
                read = read_batch(connection, [row.id for row in rows])
                read.mark(connection)
                elsewhere = _earlier_elsewhere(connection, rows, until, skip)
                recorder = Recorder(connection, read)
                together = _Together(connection, recorder, configs, run_id)
            except Exception:  # reported by the usual way
                return None
            order = _InDueOrder(rows, until, len(rows) == batch, elsewhere, again=not steal)
            kept: list = []
            complete = True
            for instant, row in order:
                mark = recorder.mark()
                try:
                    outcomes = together.renew(row, instant)
                except Exception:  # reported by the usual way, which renews it alone
                    recorder.discard(mark)
                    complete = False
                    break
                kept.append((outcomes, order.renewed(row, outcomes)))
            if not kept:
                return None
        recorder.prepare()  # the rows converted before the write lock is taken
        connection.execution_options(sqlite_begin="IMMEDIATE")
        transaction = connection.begin()
        try:
            read.check_unchanged(connection)
            numbered = recorder.write(connection)
        except (StaleBatch, SQLAlchemyError):
            transaction.rollback()
            return None
        transaction.commit()
    summary = Summary()
    for outcomes, finished in kept:
        _count(summary, outcomes, False, numbered, finished)
    return summary, len(rows), complete


def run_batch(
    engine: Engine,
    until: datetime,
    *,
    run_id: str,
    batch: int | None = None,
    skip: set[int] | None = None,
    together: bool = True,
    share: tuple[int, int] | None = None,
    frontier: Frontier | None = None,
) -> Summary:
    """Claim and renew one batch in one transaction; an empty summary when nothing is due.
    Subscriptions that failed are added to ``skip`` so this worker does not retry them;
    the ``frontier`` of a worker's claims (PostgreSQL) is moved on.
    ``together=False`` renews the batch one subscription at a time (the reference the
    batch path is tested against). On SQLite the batch is first computed outside the write
    lock (:func:`_outside_the_lock`): with a ``share`` (index, count), the oldest due of
    this worker's share of the accounts, then, once its share is done, the newest due of
    the others' (a worker that finishes early meets the others only at their last batch),
    each the first due of its account; on PostgreSQL its share first, then the first due
    of each account, oldest first."""
    skip = set() if skip is None else skip
    batch = DEFAULT_BATCH if batch is None else batch
    if together and engine.dialect.name == "sqlite":
        # its own share oldest first; once that is done, the others' from the far end, so
        # that a worker that finished early meets the others only at their last batch
        claims = [(share, False), (None, True)] if share is not None else [(None, False)]
        for claim_share, steal in claims:
            done = _outside_the_lock(
                engine,
                until,
                run_id=run_id,
                batch=batch,
                skip=skip,
                share=claim_share,
                steal=steal,
            )
            if done is None:
                break  # something moved or failed: the usual way
            summary, claimed, complete = done
            if claimed and complete:
                return summary
            if claimed:  # stopped at one the usual way renews: go on that way
                rest = batch - summary.subscriptions
                summary.add(_under_the_lock(engine, until, run_id, rest, skip, together))
                return summary
    share = share if engine.dialect.name == "postgresql" else None
    return _under_the_lock(engine, until, run_id, batch, skip, together, share, frontier)


def _under_the_lock(
    engine: Engine,
    until,
    run_id: str,
    batch: int,
    skip: set[int],
    together: bool,
    share: tuple[int, int] | None = None,
    frontier: Frontier | None = None,
) -> Summary:
    """Claim and renew one batch in one write transaction (the usual way); with a
    ``share``, the worker's own accounts first (PostgreSQL: workers then seldom wait for
    each other's account locks), then anything due; from the worker's ``frontier`` (a
    new one: from the start)."""
    frontier = Frontier() if frontier is None else frontier
    summary = _attempts(engine, until, run_id, batch, skip, together, share, frontier)
    if not (summary.subscriptions or summary.renewals or summary.failures) and frontier.restart():
        # nothing from the frontier: once more from the start
        summary = _attempts(engine, until, run_id, batch, skip, together, share, frontier)
    return summary


def _attempts(engine, until, run_id, batch, skip, together, share, frontier) -> Summary:
    """One batch from the ``frontier``, run again after a deadlock."""
    for attempt in range(_ATTEMPTS):
        summary = Summary()
        try:
            with batch_connection(engine) as connection, connection.begin():
                rows = frontier.claim(connection, until, batch, skip, share)
                if not rows:
                    return summary
                full = len(rows) == batch
                _renew(
                    connection,
                    rows,
                    until,
                    run_id,
                    summary,
                    keep=False,
                    full=full,
                    skip=skip,
                    together=together,
                )
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
    batch: int | None = None,
    progress: Callable[[Summary], None] | None = None,
    together: bool = True,
    share: tuple[int, int] | None = None,
) -> Summary:
    """Batches until nothing is due (failures apart); what they did in total. ``share``:
    this worker's (index, count) among the bill run's workers (see :func:`run_batch`)."""
    total, skip, frontier = Summary(), set(), Frontier()
    while True:
        done = run_batch(
            engine,
            until,
            run_id=run_id,
            batch=batch,
            skip=skip,
            together=together,
            share=share,
            frontier=frontier,
        )
        if not (done.subscriptions or done.renewals or done.failures):  # nothing was due
            return total
        total.add(done)
        if progress is not None:
            progress(done)


def dry_run(engine: Engine, until: datetime, *, batch: int | None = None) -> Summary:
    """What a bill run until ``until`` would do, with its documents; nothing is kept."""
    summary, skip = Summary(), set()
    batch = DEFAULT_BATCH if batch is None else batch
    with batch_connection(engine) as connection:
        transaction = connection.begin()
        try:
            # the transaction sees its own renewals: what it renewed is no longer due
            frontier = Frontier()
            while True:
                rows = frontier.claim(connection, until, batch, skip, None)
                done = Summary()
                if rows:
                    full = len(rows) == batch
                    _renew(
                        connection, rows, until, "dry-run", done, keep=True, full=full, skip=skip
                    )
                    skip.update(row.id for row in rows if row.key in done.failures)
                    summary.add(done)
                renewed = done.subscriptions or done.renewals or done.failures
                if not renewed and not frontier.restart():
                    break  # nothing from the frontier, nor then from the start
        finally:
            transaction.rollback()
    return summary

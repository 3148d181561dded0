"""Where a renewal's CPU goes, against what the bill-run targets allow.

The targets (issue 7) are a million renewals in 2 minutes on SQLite and 3 on PostgreSQL on
this 2-core machine: 8,333 and 5,556 a second, so at most 240 µs (SQLite) and 360 µs
(PostgreSQL, the server's own work included) of CPU per renewal, over both cores.

Generates ``--subscriptions`` N subscriptions of :mod:`bill_run`'s mix in a temporary SQLite
database, then measures, each on its own and the best of ``--tries``:

- the bill run, one worker in this process (``run_until_done`` on a copy of the database,
  with the garbage collector set as a bill-run worker sets it): CPU per renewal, everything
  included;
- the core and the billing service alone: the same renewals through
  :class:`~prorata.services.billing.Billing` over the in-memory book (the simulator's), from
  the decoded states, with no database and no codec;
- the codec alone: decoding each subscription's stored state and encoding it again (a
  renewal reads one state and writes one), its caches emptied before each try;
- the insert floor for the rows a renewal writes: the rows the bill run inserted per
  renewal (counted) at the raw ``executemany`` rate of :func:`bill_run.insert_floor`
  (document-shaped rows into a table with only a primary key, commit included), plus the
  head's update counted as one row.

These three parts are work every renewal on the store pays, whatever the adapter around
them. The bench fails unless the in-memory renewals issue the same invoices, for the same
totals, as the bill run. The last line reads ``bill_run_us=<n> core_us=<n> codec_us=<n> rows_us=<n>
parts_us=<n> budget_sqlite_us=240 budget_postgresql_us=360``.

    .venv/bin/python bench/renewal_budget.py [--subscriptions 20000] [--tries 3]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bill_run import SEED, UNTIL, generate, insert_floor
from sqlalchemy import func, select

from prorata.adapters import codec
from prorata.adapters import schema as t
from prorata.adapters.batch_reading import read_batch
from prorata.adapters.database import make_engine, migrate
from prorata.adapters.store import load_config
from prorata.adapters.store_accounts import account_from_row
from prorata.core.changes import Context
from prorata.core.documents import LedgerEntry
from prorata.core.money import Money
from prorata.entrypoints.cli import worker_gc
from prorata.services.bill_run import Summary, new_run_id, run_until_done
from prorata.services.bill_run import _count as count_renewals
from prorata.services.billing import Billing
from prorata.services.book import Book

CORES = 2
TARGETS = {"sqlite": 1_000_000 / 120, "postgresql": 1_000_000 / 180}  # renewals a second
WRITTEN = (  # the tables a renewal inserts into
    t.subscription_terms,
    t.documents,
    t.document_lines,
    t.ledger_entries,
    t.payments,
    t.collections,
    t.renewals,
    t.outbox,
)


class IndexedBook(Book):
    """The in-memory book with each account's credit kept as a running sum (the simulator's
    book sums its whole ledger on every call, fine for a scenario, not for 20,000 renewals;
    the store reads one balance)."""

    def __init__(self) -> None:
        super().__init__()
        self._sums: dict[tuple[str, str], Money] = {}
        self._summed = 0

    def credit(self, account: str, currency: str) -> Money:
        for entry in self.ledger[self._summed :]:
            key = (entry.account, entry.amount.currency)
            self._sums[key] = self._sums.get(key, Money.zero(entry.amount.currency)) + entry.amount
        self._summed = len(self.ledger)
        return self._sums.get((account, currency), Money.zero(currency))


def counted(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in WRITTEN
        }


def bill_run_cpu(source: Path, folder: Path, tries: int) -> tuple[float, float, Summary]:
    """The least CPU seconds per renewal of the in-process bill run (each try on a fresh copy
    of ``source``), rows inserted per renewal, and what a run did."""
    best, rows, summary = float("inf"), 0.0, Summary()
    for _ in range(tries):
        copy = folder / "run.db"
        shutil.copy(source, copy)
        engine = make_engine(f"sqlite:///{copy}")
        before = counted(engine)
        began = time.process_time()
        summary = run_until_done(engine, UNTIL, run_id=new_run_id())
        spent = time.process_time() - began
        after = counted(engine)
        engine.dispose()
        copy.unlink()
        if summary.failures or not summary.renewals:
            raise SystemExit(f"the bill run failed: {summary.failures}")
        rows = sum(after[name] - before[name] for name in after) / summary.renewals
        best = min(best, spent / summary.renewals)
    return best, rows, summary


def states_and_billing(engine) -> tuple[list[str], Callable[[Book], Billing], object]:
    """Each subscription's stored state, read as a bill-run batch reads it
    (:func:`~prorata.adapters.batch_reading.read_batch`), and how to make a Billing of the
    tenant over a book that starts with the accounts' credit as read."""
    with engine.connect() as connection:
        tenant = connection.execute(select(t.tenants.c.id)).scalar_one()
        config = load_config(connection, tenant)
        batch = read_batch(connection, connection.execute(select(t.subscriptions.c.id)).scalars())
    texts = [row.state for row in batch.states.values()]
    accounts = {row.key: account_from_row(row) for row in batch.accounts.values()}
    keys = {row.id: row.key for row in batch.accounts.values()}

    def billing(book: Book) -> Billing:
        book.record_entries(
            LedgerEntry(
                UNTIL, keys[account], Money.from_minor(units, currency), "opening", "credit_added"
            )
            for (account, currency), units in batch.balances.items()
            if units
        )
        return Billing(
            Context(config.catalog, config.policy, accounts), book, config.policy.rounding
        )

    return texts, billing, config.zone


def core_cpu(texts: list[str], billing_over, zone, tries: int) -> tuple[float, Summary]:
    """The least CPU seconds per renewal of Billing over the in-memory book (the states are
    decoded before the clock starts, and frozen out of the garbage collector's sight: a bill
    run holds one batch of them, not all), and what it did: the same renewals and invoices
    as the bill run, or this part would not measure the same work."""
    best, done = float("inf"), Summary()
    for _ in range(tries):
        subs = [codec.decode(text) for text in texts]
        book = IndexedBook()
        for sub in subs:
            book.add(sub, sub.started_at)
        billing = billing_over(book)
        until = UNTIL.astimezone(zone)
        gc.collect()
        gc.freeze()  # the decoded states are not this part's garbage to traverse (kept)
        began = time.process_time()
        outcomes = [billing.catch_up(sub.id, until) for sub in subs]
        spent = time.process_time() - began
        done = Summary()
        for renewed in outcomes:  # counted as the bill run counts its renewals
            count_renewals(done, renewed, keep=False)
        best = min(best, spent / done.renewals)
    return best, done


def codec_cpu(texts: list[str], tries: int) -> float:
    """The least CPU seconds to decode one stored state and encode it again, each try with
    the codec's caches of amounts and instants emptied first (a bill run meets each state
    once)."""
    best = float("inf")
    for _ in range(tries):
        for cache in (codec._MONEY_SEEN, codec._INSTANTS_SEEN, codec._INSTANT_TEXTS):
            cache.clear()
        began = time.process_time()
        for text in texts:
            codec.encode(codec.decode(text))
        best = min(best, (time.process_time() - began) / len(texts))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=20_000)
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    if args.subscriptions < 1 or args.tries < 1:
        parser.error("--subscriptions and --tries must be at least 1")
    with tempfile.TemporaryDirectory(prefix="prorata-budget-") as name:
        folder = Path(name)
        engine = make_engine(f"sqlite:///{folder / 'source.db'}")
        migrate(engine)
        began = time.perf_counter()
        generate(engine, args.subscriptions, args.seed)
        print(
            f"generated {args.subscriptions} subscriptions in {time.perf_counter() - began:.1f} s"
        )
        texts, billing_over, zone = states_and_billing(engine)
        floor_per_row = insert_floor(engine, args.subscriptions) / args.subscriptions
        engine.dispose()
        worker_gc()  # measured as a bill-run worker runs: its garbage collector's settings
        whole, rows, run = bill_run_cpu(folder / "source.db", folder, args.tries)
        core, alone = core_cpu(texts, billing_over, zone, args.tries)
        coding = codec_cpu(texts, args.tries)
    same = (run.renewals, run.invoices, run.totals) == (
        alone.renewals,
        alone.invoices,
        alone.totals,
    )
    if not same:
        print(
            f"FAILED: the bill run renewed {run.renewals} and issued {run.invoices} invoices "
            f"({run.totals}); over the in-memory book {alone.renewals} and {alone.invoices} "
            f"({alone.totals})",
            file=sys.stderr,
        )
        sys.exit(1)
    written = (rows + 1) * floor_per_row  # the inserts and the head's update
    parts = core + coding + written
    us = 1e6
    print(
        f"renewals per run: {run.renewals}, the same {run.invoices} invoices and totals over "
        f"the store and the in-memory book; rows inserted per renewal: {rows:.2f} (+1 head update)"
    )
    print(f"bill run, one worker in process:           {whole * us:6.0f} µs of CPU per renewal")
    print(f"  core and billing over the in-memory book: {core * us:6.0f} µs")
    print(f"  codec (decode a state, encode it):        {coding * us:6.0f} µs")
    print(f"  insert floor for its {rows + 1:.2f} rows:          {written * us:6.0f} µs")
    print(f"  these parts together:                     {parts * us:6.0f} µs")
    for name, rate in TARGETS.items():
        budget = CORES / rate
        whole_share = (
            f", the bill run above {100 * whole / budget:.0f} %" if name == "sqlite" else ""
        )
        print(
            f"target on {name}: {rate:,.0f}/s on {CORES} cores = {budget * us:.0f} µs per renewal; "
            f"the parts alone take {100 * parts / budget:.0f} % of it{whole_share}"
        )
    print(
        f"bill_run_us={whole * us:.0f} core_us={core * us:.0f} codec_us={coding * us:.0f} "
        f"rows_us={written * us:.0f} parts_us={parts * us:.0f} "
        f"budget_sqlite_us={CORES / TARGETS['sqlite'] * us:.0f} "
        f"budget_postgresql_us={CORES / TARGETS['postgresql'] * us:.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()

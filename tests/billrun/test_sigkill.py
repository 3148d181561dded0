"""Crash safety of the bill run: 10,000 subscriptions on SQLite (5,000 on PostgreSQL, to
keep the folder within its time budget) renewed by a bill run killed with SIGKILL at random
points 24 times per database, restarted each time until it finishes.

The subscriptions (``world.plan``: Stripe-like policy, two monthly and two annual plans, one
to eight seats, billing days over the whole month, accounts of one or two subscriptions,
VAT or none; a fifth of them with a plan, seat or period change scheduled at the end of the
term, a tenth cancelled at period end, a seventh with an immediate seat change whose
proration lines wait for the renewal invoice) are recorded through the billing service and
fall due between January and March 2024; the bill run renews them up to 1 March 2024.

``kill_worker`` is a fork server: each run forks a worker that runs ``run_until_done`` with a
batch size drawn from (10, 25, 50, 100); the test kills it a random 20-300 ms (SQLite) or
40-600 ms (PostgreSQL) after it is ready, reaps it (it must have died of SIGKILL), waits on
PostgreSQL until its server processes are gone, and checks that every subscription is
renewed for its first due instants and no other (version and renewal rows: none, some or
all of them), that the documents committed are exactly those of the renewals made, and
that the INV counter equals the invoices. After the kills a last worker runs to the end.

The expectation is computed independently of the store: the same plan replayed through
:class:`~prorata.services.billing.Billing` over the in-memory
:class:`~prorata.services.book.Book`, renewed in a bill run's order (one due instant at a
time, by instant then creation order: batches are whole transactions, so kills do not
change that order). The store must then hold exactly those
documents (numbers, lines, totals, credit, status), subscription states, ledger entries and
renewal keys (one per subscription and due instant), with the invariants of ``checks``, and
a last bill run (and a dry run) must find nothing to do.

Set ``PRORATA_BILLRUN_SUBSCRIPTIONS`` to use that many on both databases (10000: the full
run on PostgreSQL too, about 45-75 s there).
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.services.bill_run import dry_run, due_count, new_run_id, run_until_done
from tests import fork_server
from tests.billrun import checks, world

# PostgreSQL renews about half as fast as SQLite here (and records the population half as
# fast): 5,000 keeps the folder within its time budget; the environment variable sets both.
SUBSCRIPTIONS = {"sqlite": 10_000, "postgresql": 5_000}
if os.environ.get("PRORATA_BILLRUN_SUBSCRIPTIONS"):
    SUBSCRIPTIONS = dict.fromkeys(SUBSCRIPTIONS, int(os.environ["PRORATA_BILLRUN_SUBSCRIPTIONS"]))
KILLS = 24  # per database
DELAYS = {"sqlite": (0.02, 0.3), "postgresql": (0.03, 0.4)}  # seconds from ready to kill
BATCHES = (10, 25, 50, 100)
SEED = 20240301
UNTIL = datetime(2024, 3, 1, 12, tzinfo=world.ZONE)


@functools.cache
def population(count: int):
    """The plan and the book a bill run must produce."""
    plan = world.plan(count, SEED)
    return plan, world.expected(plan, UNTIL)


class ForkServer(fork_server.ForkServer):
    """``kill_worker`` as a subprocess: forks bill-run workers on demand and reaps them."""

    def __init__(self, url: str, journal: Path, stderr: Path) -> None:
        args = [url, str(journal), UNTIL.isoformat()]
        super().__init__("tests.billrun.kill_worker", args, stderr)

    def start(self, run: int, batch: int) -> None:
        """Fork a worker and wait until it is ready."""
        answers = self.fork(f"go {run} {batch}")
        assert ["ready"] in answers, (answers, self.errors())

    def stop(self, kill: bool) -> int:
        """SIGKILL the worker (``kill``) or let it end; its raw wait status."""
        if kill:
            os.kill(self.pid, signal.SIGKILL)
        answer = self.ask("reap")
        assert answer[0] == "status", answer
        self.pid = None
        return int(answer[1])


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.backends: dict[int, list[int]] = {}
        self.batches: Counter = Counter()  # run -> batches committed (as far as it knew)
        self.torn = 0

    def read(self) -> Journal:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        for raw in data.split(b"\n"):
            if not raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                self.torn += 1
                continue
            if entry["e"] == "backend":
                self.backends.setdefault(entry["run"], []).append(entry["pid"])
            elif entry["e"] == "batch":
                self.batches[entry["run"]] += 1
            else:
                assert entry["e"] == "done" and not entry["failures"], entry
        return self


class Progress:
    """Per subscription: its version before the bill run and what renewing it does."""

    def __init__(self, engine, tenant: int, book) -> None:
        self.tenant = tenant
        with engine.connect() as connection:
            self.before = dict(
                connection.execute(
                    select(t.subscriptions.c.key, t.subscriptions.c.version).where(
                        t.subscriptions.c.tenant_id == tenant
                    )
                ).all()
            )
            self.documents = connection.execute(
                select(func.count()).where(t.documents.c.tenant_id == tenant)
            ).scalar_one()
            connection.rollback()
        self.due: dict[str, list] = {}  # each subscription's due instants, in order
        for key, at in sorted(book.renewals, key=lambda pair: pair[1]):
            self.due.setdefault(key, []).append(at)
        self.invoiced = {pair for pair, number in book.renewals.items() if number is not None}
        self.made = 0  # renewals made, as of the last check

    def check(self, engine) -> int:
        """Every subscription renewed for its first due instants only (none, some or all),
        the documents exactly those of the renewals made; how many subscriptions are
        completely renewed."""
        sub, renewal = t.subscriptions.c, t.renewals.c
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with engine.connect() as connection:
            connection.execution_options(sqlite_begin="DEFERRED")
            made: dict[str, list] = {}
            for key, at in connection.execute(
                select(sub.key, renewal.due_at)
                .join(t.renewals, renewal.subscription_id == sub.id)
                .where(sub.tenant_id == self.tenant)
                .order_by(renewal.due_at)
            ):
                made.setdefault(key, []).append(at)
            versions = dict(
                connection.execute(
                    select(sub.key, sub.version).where(sub.tenant_id == self.tenant)
                ).all()
            )
            documents = connection.execute(
                select(func.count()).where(t.documents.c.tenant_id == self.tenant)
            ).scalar_one()
            invoices = connection.execute(
                select(t.number_series.c.last).where(
                    t.number_series.c.tenant_id == self.tenant, t.number_series.c.series == "INV"
                )
            ).scalar_one()
            invoice_rows = connection.execute(
                select(func.count()).where(
                    t.documents.c.tenant_id == self.tenant, t.documents.c.type == "invoice"
                )
            ).scalar_one()
            connection.rollback()
        self.made = sum(len(instants) for instants in made.values())
        renewed = 0
        for key, version in versions.items():
            done = made.get(key, [])
            due = self.due.get(key, [])
            assert done == due[: len(done)], (key, done, due)
            assert version - self.before[key] == len(done), (key, version, len(done))
            renewed += bool(due) and len(done) == len(due)
        expected = self.documents + sum(
            (key, at) in self.invoiced for key, instants in made.items() for at in instants
        )
        assert documents == expected, (documents, expected)
        assert invoices == invoice_rows, (invoices, invoice_rows)
        return renewed


def kill_window(delays, due: int, made: list[int], alive: float, run: int):
    """When to kill the next worker: ``delays`` (seconds after it is ready), shortened once
    the workers killed so far show that the kills left would outlast the renewals left (a
    fast machine), so that every kill still lands in the middle of a bill run. ``due`` and
    ``made``: renewals (not subscriptions, which the bill run completes only once all
    their instants are renewed, in due order: mostly at the end)."""
    low, high = delays
    done = made[-1] if made else 0
    if done and alive:
        seconds_left = (due - done) / (done / alive)
        high = max(low / 2, min(high, seconds_left / (KILLS - run + 1)))  # some left after the last
        low = min(low, high / 2)
    return low, high


def test_bill_run_survives_sigkill(db_url, engine, tmp_path):
    began = time.monotonic()
    count = SUBSCRIPTIONS[engine.dialect.name]
    plan, book = population(count)
    tenant = world.record(engine, plan)
    recorded = time.monotonic()
    progress = Progress(engine, tenant, book)
    due = due_count(engine, UNTIL)
    assert due == len(progress.due)
    engine.dispose()

    rng = random.Random(SEED)
    journal_path = tmp_path / "journal.jsonl"
    journal = Journal(journal_path)
    server = ForkServer(db_url, journal_path, tmp_path / "worker.err")
    delays = DELAYS[engine.dialect.name]
    renewed_after_kill, made_after_kill = [], []  # subscriptions, renewals
    renewals = len(book.renewals)
    alive = 0.0  # how long the killed workers ran
    try:
        for run in range(KILLS):
            server.start(run, rng.choice(BATCHES))
            delay = rng.uniform(*kill_window(delays, renewals, made_after_kill, alive, run))
            time.sleep(delay)
            alive += delay
            status = server.stop(kill=True)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"run {run} ended by itself (status {status}): too few subscriptions for "
                f"{KILLS} kills, or it failed:\n{server.errors()}"
            )
            journal.read()
            fork_server.wait_for_backends(db_url, journal.backends.get(run, []))
            renewed_after_kill.append(progress.check(engine))
            made_after_kill.append(progress.made)
        server.start(KILLS, rng.choice(BATCHES))
        status = server.stop(kill=False)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, server.errors()
        journal.read()
    finally:
        server.close()
    killed = time.monotonic()
    # the kills interrupted a bill run with work left, and it moved on between kills
    assert renewed_after_kill[-1] < due
    assert len(set(renewed_after_kill)) > KILLS // 3, renewed_after_kill

    assert progress.check(engine) == due
    series = checks.check_invariants(engine, tenant)
    stored = checks.read_store(engine, tenant)
    checks.assert_same_as_book(stored, book)
    assert sum(stored.bill_runs.values()) == len(book.renewals)
    assert None not in stored.bill_runs  # every renewal was the bill run's
    # nothing left to do
    assert due_count(engine, UNTIL) == 0
    assert dry_run(engine, UNTIL).documents == []
    again = run_until_done(engine, UNTIL, run_id=new_run_id())
    assert (again.subscriptions, again.renewals, again.failures) == (0, 0, {})

    print(
        f"\n{engine.dialect.name}: {count} subscriptions, {due} due, "
        f"{len(book.renewals)} renewals, {len(progress.invoiced)} renewal invoices, "
        f"{series}; {KILLS} kills; renewed after each kill: {renewed_after_kill}; "
        f"{sum(journal.batches.values())} batches committed as seen by the workers, "
        f"{journal.torn} torn journal lines; record {recorded - began:.1f}s, "
        f"bill run with kills {killed - recorded:.1f}s, checks {time.monotonic() - killed:.1f}s"
    )

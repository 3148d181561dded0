"""Bill run throughput: renewals per second, against the database's raw insert floor.

Generates ``--subscriptions`` N subscriptions in one tenant (not measured; reported apart)
through :class:`~prorata.services.billing.Billing`, in large transactions, with the outbox
events the services publish for each action (no audit or idempotency rows: the bill run
reads neither). Above ``--base`` (20,000) subscriptions, that many are generated and the
rest are copies of them under other keys and document numbers (:mod:`replicate`; N must
then be a multiple of the base): generating through ``Billing`` runs at about 600 a
second here, copying at several thousand. The mix, drawn from a fixed seed:

- plans basic, pro and team, monthly (about 70 %) or annual, 1 to 50 seats, billing days
  1 to 28 (a fifth start after their billing day: a prorated first period);
- about 10 % schedule a change for the end of the term (another plan, other seats, or the
  other billing period), about 5 % cancel at period end;
- about 10 % drop seats mid-period, which credits their account (the policy is Stripe's
  with ``quantity_decrease`` invoiced at once, so the negative invoice becomes account
  credit), and about 5 % add seats mid-period, whose prorations wait for the renewal
  invoice (Stripe's ``next_invoice``);
- each subscription joins the previous one's account one time in five, else a new account
  (2,000 subscriptions: 1,563 accounts); 80 % of accounts auto-pay, half of those through a
  gateway token (their renewal invoices stay open and open a collection, which the bill
  run records and the collector charges later), the others paid on issue.

Monthly subscriptions start in January 2025 and annual ones in February 2024, so at
``UNTIL`` (2025-03-01 00:00 Europe/Paris) every subscription has exactly one renewal due.
The bill run is then what ``prorata bill-run`` runs: ``--workers`` spawned processes
calling :func:`~prorata.services.bill_run.run_until_done` (the CLI's own worker function)
with ``--batch``; the clock starts once every worker has started and imported, and stops
when the last one is done. The result is checked: N renewals, no failures, nothing left
due, one ``renewals`` row per subscription. After the generation, as after any bulk load
left to itself, the tables are ANALYZEd and a checkpoint is made on PostgreSQL
(autovacuum and the checkpointer would have) and the write-ahead log is checkpointed and
emptied on SQLite (later checkpoints would have).

In the same run the raw insert floor is measured: N rows shaped like ``documents`` in one
transaction into a scratch table of the same database (SQLite: ``executemany``; PostgreSQL:
binary ``COPY`` through psycopg 3, as the bill run writes), the best of three tries. The
last line reads ``renewals_per_s=<n> floor_rows_per_s=<n> ratio=<n>`` (ratio: how many
times slower than the floor a renewal is).

``--profile`` runs the bill run in this process under cProfile (one worker) and prints the
top functions by cumulative and by internal time, the time per area (SQLAlchemy, the
driver, the codec, the core, the batch path's own code) and the cumulative time of a few
entry points (:mod:`profile_report`). ``--worker-checkpoints`` leaves SQLite's
checkpoints to each worker after its commits (SQLite's default, as before the
checkpointer), for comparison. ``--one-at-a-time`` renews each batch one subscription at a
time (the path the batch path falls back to; ``run_until_done(..., together=False)``), for
comparison.
SQLite (the default) runs in a temporary directory; ``--database postgresql://…`` runs in
a new schema of that database, dropped at the end.

    .venv/bin/python bench/bill_run.py --subscriptions 2000 [--workers 2] [--batch N]
        [--database URL] [--profile] [--one-at-a-time] [--worker-checkpoints] [--base 20000]
        [--source /tmp/bench-1m.db | --source bench_1m]

``--source`` keeps the generated database and copies it for the next runs with it, so
that versions of the code are compared on the same database without generating it each
time: on SQLite a file at that path, on PostgreSQL a database of that name on the server
of ``--database`` (each run on a copy made with ``CREATE DATABASE … TEMPLATE``, dropped at
the end). The line ``cpu seconds during the bill run`` gives the workers'
user and system time and this process's own (the checkpointer).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import multiprocessing
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from queue import Empty
from zoneinfo import ZoneInfo

from profile_report import print_report
from replicate import replicate
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from prorata.adapters import schema as t
from prorata.adapters.checkpoints import Checkpointer, checkpoint
from prorata.adapters.database import database_url, make_engine, migrate
from prorata.adapters.store import StoreBook, load_config
from prorata.adapters.tenants import add_account, create_tenant
from prorata.core.changes import Refusal
from prorata.core.model import Account, Cancel, Change, Subscribe
from prorata.scenario.loader import parse_scenario
from prorata.scenario.on_store import billing_on
from prorata.services.bill_run import (
    DEFAULT_BATCH,
    Summary,
    due_count,
    new_run_id,
    run_until_done,
)
from prorata.services.recording import publish_outcome

CATALOG = """
currency: EUR
timezone: Europe/Paris
policy: {preset: stripe, quantity_decrease: {invoice: now}}
catalog:
  products:
    - id: app
      plans:
        - {id: basic-m, tier: 1, period: monthly, price: "29.00", per_unit: true}
        - {id: pro-m, tier: 2, period: monthly, price: "59.00", per_unit: true}
        - {id: team-m, tier: 3, period: monthly, price: "99.00", per_unit: true}
        - {id: basic-y, tier: 1, period: annual, price: "290.00", per_unit: true}
        - {id: pro-y, tier: 2, period: annual, price: "590.00", per_unit: true}
        - {id: team-y, tier: 3, period: annual, price: "990.00", per_unit: true}
accounts: []
events: []
"""
ZONE = ZoneInfo("Europe/Paris")
UNTIL = datetime(2025, 3, 1, tzinfo=ZONE)  # every subscription: exactly one renewal due
TIERS = ("basic", "pro", "team")
OTHER_PERIOD = {"m": "y", "y": "m"}
CHUNK = 2000  # generation: actions per transaction
SEED = 20250301


# -- generation (not measured) --------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    at: datetime
    order: int  # ties: the subscription's own order (subscribe first)
    sub: int
    what: object  # Subscribe | Change | Cancel


def plan_mix(n: int, rng: random.Random) -> tuple[list[Account], list[Action], list[tuple]]:
    """The accounts, every subscription's subscribe, and the later actions as recipes
    ``(sub, kind, fraction of the first period, argument)`` placed once periods are known."""
    accounts: list[Account] = []
    subscribes: list[Action] = []
    later: list[tuple] = []
    for i in range(n):
        if not accounts or rng.random() >= 0.2 or i == 0:
            accounts.append(
                Account(
                    f"a{len(accounts)}",
                    locale=rng.choice(("fr", "fr", "en", "de")),
                    auto_pay=rng.random() < 0.8,
                    payment_method="card",
                    tax_rate=Decimal("0.20") if rng.random() < 0.5 else Decimal(0),
                )
            )
        account = accounts[-1].id
        unit = "m" if rng.random() < 0.7 else "y"
        tier = rng.choice(TIERS)
        seats = rng.randint(1, 50)
        start_day = rng.randint(1, 28)
        billing_day = start_day if rng.random() < 0.8 else rng.randint(1, start_day)
        year, month = (2025, 1) if unit == "m" else (2024, 2)
        at = datetime(year, month, start_day, 8, tzinfo=ZONE) + timedelta(
            seconds=rng.randrange(10 * 3600)
        )
        spec = Subscribe(f"s{i}", account, f"{tier}-{unit}", seats, billing_day)
        subscribes.append(Action(at, 0, i, spec))
        current = seats
        extra = rng.random()
        if extra < 0.10 and seats > 1:  # fewer seats now: a negative invoice, account credit
            current = rng.randint(1, seats - 1)
            later.append((i, "credit", rng.uniform(0.05, 0.25), current))
        elif extra < 0.15 and seats < 50:  # more seats now: prorations wait for the renewal
            current = rng.randint(seats + 1, 50)
            later.append((i, "prorate", rng.uniform(0.05, 0.25), current))
        roll = rng.random()
        if roll < 0.10:  # a change at the end of the term
            choice = rng.random()
            if choice < 0.4:
                other = rng.choice([x for x in TIERS if x != tier])
                change = {"plan": f"{other}-{unit}"}
            elif choice < 0.8:
                change = {"quantity": rng.choice([q for q in range(1, 51) if q != current])}
            else:
                change = {"plan": f"{tier}-{OTHER_PERIOD[unit]}"}
            later.append((i, "scheduled", rng.uniform(0.3, 0.8), change))
        elif roll < 0.15:  # a cancellation at period end
            later.append((i, "cancel", rng.uniform(0.3, 0.8), None))
    return accounts, subscribes, later


def with_tokens(accounts: list[Account], rng: random.Random) -> list[Account]:
    """Half the auto-pay accounts pay through a gateway token: their invoices are left open
    and a collection is opened for the collector (drawn apart from the rest of the mix)."""
    return [
        replace(account, payment_token=f"tok_{account.id}")
        if account.auto_pay and rng.random() < 0.5
        else account
        for account in accounts
    ]


def _run(billing, action: Action):
    what = action.what
    if isinstance(what, Subscribe):
        return "subscription.created", billing.subscribe(what, action.at, "EUR")
    if isinstance(what, Cancel):
        outcome = billing.cancel(what, action.at)
        topic = "subscription.cancel"
    else:
        outcome = billing.change(what, action.at)
        topic = "subscription.change"
    if isinstance(outcome, Refusal):
        raise RuntimeError(f"s{action.sub} at {action.at}: refused: {outcome.message}")
    return f"{topic}.{outcome.status}", outcome


def _apply(engine, tenant: int, actions: list[Action], periods: dict[int, tuple] | None):
    for first in range(0, len(actions), CHUNK):
        with engine.begin() as connection:
            book = StoreBook(connection, load_config(connection, tenant))
            billing = billing_on(book)
            for action in actions[first : first + CHUNK]:
                topic, outcome = _run(billing, action)
                publish_outcome(connection, tenant, topic, outcome, action.at)
                if periods is not None:
                    sub = outcome.subscription
                    periods[action.sub] = (sub.period_start, sub.period_end)


def populate(engine, n: int, base: int, seed: int) -> dict[str, int]:
    """N subscriptions: all generated when N is at most ``base``, else ``base`` generated
    and copied (:mod:`replicate`) N / base - 1 times; what was made, by kind."""
    if n <= base:
        return generate(engine, n, seed)
    copies, rest = divmod(n, base)
    if rest:
        raise ValueError(f"{n} subscriptions is not a multiple of the generated base ({base})")
    counts = generate(engine, base, seed)
    with engine.connect() as connection:
        tenant = connection.execute(select(t.tenants.c.id)).scalar_one()
    began = time.perf_counter()
    replicate(engine, tenant, copies - 1)
    print(
        f"copied the {base} generated subscriptions {copies - 1} times in "
        f"{time.perf_counter() - began:.1f} s",
        flush=True,
    )
    return {kind: count * copies for kind, count in counts.items()}


def generate(engine, n: int, seed: int) -> dict[str, int]:
    """N subscriptions as described above; what was made, by kind."""
    rng = random.Random(seed)
    accounts, subscribes, later = plan_mix(n, rng)
    accounts = with_tokens(accounts, random.Random(seed + 1))
    scenario = parse_scenario(CATALOG)
    with engine.begin() as connection:
        tenant = create_tenant(
            connection,
            slug=f"bench-{uuid.uuid4().hex[:8]}",
            name="bench",
            currency="EUR",
            timezone="Europe/Paris",
            catalog=scenario.catalog,
            policy=scenario.policy,
            policy_spec={"preset": "stripe", "quantity_decrease": {"invoice": "now"}},
        )
        for account in accounts:
            add_account(connection, tenant, account)
    subscribes.sort(key=lambda a: (a.at, a.order, a.sub))
    periods: dict[int, tuple] = {}
    _apply(engine, tenant, subscribes, periods)
    actions = []
    for i, kind, share, argument in later:
        start, end = periods[i]
        at = start + (end - start) * share
        if kind == "cancel":
            what = Cancel(f"s{i}", timing="end_of_term")
        elif kind == "scheduled":
            what = Change(f"s{i}", timing="end_of_term", **argument)
        else:
            what = Change(f"s{i}", quantity=argument, timing="immediate")
        actions.append(Action(at.replace(microsecond=0), 1, i, what))
    actions.sort(key=lambda a: (a.at, a.order, a.sub))
    _apply(engine, tenant, actions, None)
    counts = {"accounts": len(accounts), "subscriptions": n}
    for _, kind, _, _ in later:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def settle(engine) -> None:
    """The database as it would be long after a bulk load: on PostgreSQL fresh planner
    statistics (as autovacuum would have made) and a checkpoint, on SQLite the write-ahead
    log copied into the database and emptied (as later checkpoints would have), so that
    the bill run does not pay for checkpointing the set-up's gigabytes."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        with engine.connect() as connection:  # CHECKPOINT runs outside a transaction
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("CHECKPOINT")
    else:
        checkpoint(engine, "TRUNCATE")


# -- the bill run (measured) ---------------------------------------------------------------


def _worker(
    url: str, until, run_id: str, batch: int, queue, go, together: bool, share, autocheckpoint
) -> None:
    """The CLI's bill-run worker, started once this process has imported it (one subscription
    at a time: the same worker, its ``run_until_done`` called with ``together=False``)."""
    from prorata.entrypoints.cli import _bill_worker
    from prorata.services import bill_run as service

    if not together:
        service.run_until_done = functools.partial(service.run_until_done, together=False)
    queue.put(("ready", None))
    go.wait()
    _bill_worker(url, until, run_id, batch, queue, share, autocheckpoint)


def _next(queue, procs, expected_gone: int):
    """The next message, or None once a worker has died without a word."""
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            if sum(proc.exitcode is not None for proc in procs) > expected_gone and queue.empty():
                return None


def bill_run(
    url: str, workers: int, batch: int, together: bool = True, checkpointer: bool = True
) -> tuple[Summary, float, float, list[str], str]:
    """Run the bill run in ``workers`` spawned processes, with SQLite's checkpoints taken
    by a :class:`Checkpointer` as ``prorata bill-run`` takes them (``checkpointer=False``:
    by the workers themselves, each after its commits); (summary, seconds, startup
    seconds, worker errors, CPU seconds spent meanwhile). The seconds include the last
    checkpoint. The CPU: the workers' user and system time (``getrusage`` of this process's
    children, all joined), and this process's own (the checkpointer's thread and the queue),
    from the start signal to the end; on PostgreSQL the server's is not included."""
    context = multiprocessing.get_context("spawn")
    queue, go = context.Queue(), context.Event()
    run_id = new_run_id()
    procs = [
        context.Process(
            target=_worker,
            args=(url, UNTIL, run_id, batch, queue, go, together, (n, workers), not checkpointer),
        )
        for n in range(workers)
    ]
    launched = time.perf_counter()
    for proc in procs:
        proc.start()
    ready, errors = 0, []
    while ready < workers:
        item = _next(queue, procs, 0)
        if item is None:
            go.set()
            for proc in procs:
                proc.join()
            return Summary(), 0.0, 0.0, ["a worker died while starting"], ""
        ready += item == ("ready", None)
    checkpoints = Checkpointer(make_engine(url)) if checkpointer else contextlib.nullcontext()
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    began = time.perf_counter()
    go.set()
    summary, finished = Summary(), 0
    with checkpoints:
        while finished < workers:
            item = _next(queue, procs, finished)
            if item is None:  # killed outright: it sends nothing
                errors.append("a worker was stopped")
                finished += 1
            elif isinstance(item, tuple) and item[0] == "done":
                finished += 1
                summary.failures.update(item[1])
                if len(item) > 2 and item[2]:
                    errors.append(item[2])
            else:
                summary.add(item)
    spent = time.perf_counter() - began
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    for proc in procs:
        proc.join()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (
        f"workers_user={children_after.ru_utime - children.ru_utime:.1f} "
        f"workers_sys={children_after.ru_stime - children.ru_stime:.1f} "
        f"main_user={own_after.ru_utime - own.ru_utime:.1f} "
        f"main_sys={own_after.ru_stime - own.ru_stime:.1f}"
    )
    errors += [f"worker exit code {proc.exitcode}" for proc in procs if proc.exitcode]
    return summary, spent, began - launched, errors, cpu


def check(engine, n: int, summary: Summary, errors: list[str]) -> list[str]:
    """What is wrong with the bill run's result (nothing, one hopes). Expected: no failures,
    N renewals, nothing left due, one ``renewals`` row per subscription."""
    problems = [f"worker: {error}" for error in errors]
    failed = len(summary.failures)
    if failed:
        sample = "; ".join(f"{k}: {v}" for k, v in sorted(summary.failures.items())[:3])
        problems.append(f"{failed} failures ({sample})")
    if summary.renewals != n - failed:
        problems.append(f"renewals={summary.renewals}, expected N - failures = {n - failed}")
    left = due_count(engine, UNTIL)
    if left:
        problems.append(f"{left} subscriptions still due at {UNTIL.isoformat()}")
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        rows, distinct = connection.execute(
            select(func.count(), func.count(t.renewals.c.subscription_id.distinct()))
        ).one()
    if rows != n or distinct != n:
        problems.append(f"renewals table: {rows} rows for {distinct} subscriptions, expected {n}")
    elif failed:
        problems.append(
            "every subscription has its renewals row: the failed ones were renewed by a later "
            "batch (of another worker), yet reported as failures"
        )
    return problems


# -- the raw insert floor ------------------------------------------------------------------


def floor_rows(n: int) -> list[tuple]:
    at = datetime(2025, 2, 1, 8, tzinfo=UTC)
    return [
        (1, f"F-{k:07d}", "invoice", 1 + k % 1000, "EUR", at + timedelta(seconds=k), k, "paid")
        for k in range(n)
    ]


COLUMNS = "tenant_id, number, type, account_id, currency, issued_at, total_minor, status"
FLOOR_TYPES = ("int8", "varchar", "varchar", "int8", "varchar", "timestamptz", "int8", "varchar")


def insert_floor(engine, n: int, attempts: int = 3) -> float:
    """Seconds to insert ``n`` document-shaped rows into a fresh table in one transaction,
    commit included: the best of ``attempts`` (a floor; one try is a few ms, so noisy)."""
    rows = floor_rows(n)
    postgres = engine.dialect.name == "postgresql"
    if not postgres:
        rows = [(*row[:5], row[5].isoformat(), *row[6:]) for row in rows]
    ident = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY"
    instant = "TIMESTAMPTZ" if postgres else "TEXT"
    ddl = (
        f"CREATE TABLE bench_floor (id {ident}, tenant_id BIGINT NOT NULL, "
        "number VARCHAR(32) NOT NULL, type VARCHAR(16) NOT NULL, account_id BIGINT NOT NULL, "
        f"currency VARCHAR(3) NOT NULL, issued_at {instant} NOT NULL, "
        "total_minor BIGINT NOT NULL, status VARCHAR(16))"
    )
    best = float("inf")
    raw = engine.raw_connection()  # the engine's settings (SQLite: WAL, synchronous=NORMAL)
    try:
        dbapi = raw.driver_connection
        for _ in range(attempts):
            if postgres:
                dbapi.execute(ddl)
                dbapi.commit()
                began = time.perf_counter()
                # binary, as the bill run copies its rows
                statement = f"COPY bench_floor ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
                with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
                    copy.set_types(FLOOR_TYPES)
                    for row in rows:
                        copy.write_row(row)
                dbapi.commit()
                best = min(best, time.perf_counter() - began)
                dbapi.execute("DROP TABLE bench_floor")
                dbapi.commit()
            else:  # the driver is in autocommit mode (database.py): transactions are explicit
                dbapi.execute(ddl)
                began = time.perf_counter()
                dbapi.execute("BEGIN IMMEDIATE")
                dbapi.executemany(
                    f"INSERT INTO bench_floor ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                dbapi.execute("COMMIT")
                best = min(best, time.perf_counter() - began)
                dbapi.execute("DROP TABLE bench_floor")
    finally:
        raw.close()
    return best


# -- profile ---------------------------------------------------------------------------------


def profile(url: str, n: int, batch: int, together: bool = True) -> tuple[Summary, float]:
    from prorata.entrypoints.cli import worker_gc

    worker_gc()  # as a bill-run worker process runs
    engine = make_engine(url)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    summary = run_until_done(engine, UNTIL, run_id=new_run_id(), batch=batch, together=together)
    profiler.disable()
    spent = time.perf_counter() - began
    engine.dispose()
    print_report(profiler)
    return summary, spent


# -- driver ----------------------------------------------------------------------------------


def generate_into(url: str, name: str, args) -> None:
    """Migrate the database at ``url`` and generate the bench's subscriptions in it."""
    n = args.subscriptions
    began = time.perf_counter()
    engine = make_engine(url)
    migrate(engine)
    counts = populate(engine, n, args.base, args.seed)
    settle(engine)
    engine.dispose()
    generated = time.perf_counter() - began
    print(
        f"database={name} generated {n} subscriptions in {generated:.1f} s "
        f"({n / generated:.0f}/s): "
        + ", ".join(f"{kind}={count}" for kind, count in counts.items()),
        flush=True,
    )


def bench(url: str, name: str, args, source: Path | None = None, copied: str = "") -> int:
    """Generate (or, with a SQLite ``source`` made before, copy), run, check, measure.
    ``copied``: the database at ``url`` is already a copy of that generated one."""
    n = args.subscriptions
    if copied:
        print(f"database={name} copied from {copied} ({n} subscriptions, as generated there)")
    elif source is not None and source.exists():
        shutil.copy(source, make_url(url).database)
        print(f"database={name} copied from {source} ({n} subscriptions, as generated there)")
    else:
        generate_into(url, name, args)
        if source is not None:
            shutil.copy(make_url(url).database, source)
    engine = make_engine(url)
    if copied or source is not None:
        migrate(engine)  # a copy made at an older revision: brought to the code's
    expected = due_count(engine, UNTIL)
    if expected != n:
        print(f"FAILED: {expected} subscriptions due at {UNTIL.isoformat()}, expected {n}")
        return 1
    together = not args.one_at_a_time
    batch = DEFAULT_BATCH if args.batch is None else args.batch
    if args.profile:
        summary, spent = profile(url, n, batch, together)
        errors, startup, workers, cpu = [], 0.0, 1, ""
    else:
        summary, spent, startup, errors, cpu = bill_run(
            url, args.workers, batch, together, not args.worker_checkpoints
        )
        workers = args.workers
    problems = check(engine, n, summary, errors)
    floor = insert_floor(engine, n)
    engine.dispose()
    total = ", ".join(f"{minor / 100:.2f} {cur}" for cur, minor in sorted(summary.totals.items()))
    renewals_per_s = summary.renewals / spent
    floor_per_s = n / floor
    print(
        f"bill run: workers={workers} batch={batch}"
        f"{'' if together else ' one at a time'}"
        f"{' (profiled, in process)' if args.profile else ''} seconds={spent:.2f} "
        f"(worker startup {startup:.2f} s, not counted) renewals={summary.renewals} "
        f"invoices={summary.invoices} ({total}) failures={len(summary.failures)}"
    )
    if cpu:
        print(f"cpu seconds during the bill run: {cpu}")
    print(f"floor: {n} document-shaped rows in one transaction in {floor:.4f} s (best of 3)")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print(
        f"renewals_per_s={renewals_per_s:.1f} floor_rows_per_s={floor_per_s:.0f} "
        f"ratio={floor_per_s / renewals_per_s:.1f}",
        flush=True,
    )
    return 1 if problems else 0


def on_postgres(args) -> int:
    if args.source is not None:
        return on_postgres_copy(args, str(args.source))
    schema = f"bench_bill_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url(args.database), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(database_url(args.database))
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        return bench(url.render_as_string(hide_password=False), "postgresql", args)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def on_postgres_copy(args, source: str) -> int:
    """PostgreSQL with ``--source``: the subscriptions generated once into the database
    ``source`` of that server (made by the first run with it), and each run on a copy of it
    (``CREATE DATABASE … TEMPLATE``, file by file), dropped at the end."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", source):
        raise SystemExit(f"--source {source!r}: a PostgreSQL database name, [a-z_][a-z0-9_]*")
    server = make_url(database_url(args.database))
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    copy = f"bench_bill_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": source}
            ).first()
            if found is None:
                connection.execute(text(f'CREATE DATABASE "{source}"'))
        if found is None:
            try:
                generate_into(server.set(database=source).render_as_string(False), source, args)
            except BaseException:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE "{source}"'))
                raise
        with admin.connect() as connection:
            connection.execute(
                text(f'CREATE DATABASE "{copy}" TEMPLATE "{source}" STRATEGY FILE_COPY')
            )
        url = server.set(database=copy).render_as_string(hide_password=False)
        return bench(url, "postgresql", args, copied=source)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{copy}"'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument(
        "--database", help="a PostgreSQL URL (default: SQLite in a temporary directory)"
    )
    parser.add_argument("--workers", type=int, default=2, help="bill-run worker processes")
    parser.add_argument(
        "--batch",
        type=int,
        help="subscriptions per transaction (default: the bill run's, 1000)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="one worker, in process, under cProfile"
    )
    parser.add_argument(
        "--worker-checkpoints",
        action="store_true",
        help="SQLite: each worker checkpoints after its commits (before the checkpointer)",
    )
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="renew each batch one subscription at a time (the path before batches)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--source",
        help="the generated database kept, made by the first run with it and copied by the "
        "next ones (drop it when the code or the mix changes): SQLite, a file's path; "
        "PostgreSQL, a database's name on the server of --database",
    )
    parser.add_argument(
        "--base",
        type=int,
        default=20_000,
        help="subscriptions generated; more are copies of them (N must be a multiple)",
    )
    args = parser.parse_args()
    batch_too_small = args.batch is not None and args.batch < 1  # None: the bill run's
    if min(args.subscriptions, args.workers, args.base) < 1 or batch_too_small:
        parser.error("--subscriptions, --workers, --batch and --base must be at least 1")
    if args.subscriptions > args.base and args.subscriptions % args.base:
        parser.error(f"--subscriptions above --base ({args.base}) must be a multiple of it")
    if args.database and make_url(args.database).get_backend_name() != "postgresql":
        parser.error("--database takes a PostgreSQL URL; SQLite runs in a temporary directory")
    if args.database:
        status = on_postgres(args)
    else:
        with tempfile.TemporaryDirectory(prefix="prorata-bench-bill-") as folder:
            source = Path(args.source) if args.source else None
            status = bench(f"sqlite:///{Path(folder) / 'bench.db'}", "sqlite", args, source)
    sys.exit(status)


if __name__ == "__main__":
    main()

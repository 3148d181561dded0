"""A checkout process to be killed: the worker of ``test_crash.py``.

Run as ``python -m tests.store.crash_worker URL JOURNAL TENANT:USER[,TENANT:USER…]`` from the
repository root. Importing prorata takes half a second, far longer than the checkouts
between two kills, so this process is a fork server: it imports once, then obeys lines on
its standard input and answers on its standard output:

- ``go RUN SEED``: fork a worker; answer ``pid PID``. The worker opens its own connections,
  reads the subscriptions' state from the database, writes ``ready`` to the same output
  (before or after ``pid``; ``failed`` if it fails) and checks out carts until killed;
- ``reap``: wait for that worker; answer ``status WAITSTATUS`` (the raw ``os.waitpid``
  status: the test expects SIGKILL, anything else means the worker failed, see stderr);
- end of input: exit (a worker left running notices and exits too).

Before its first fork the server warms an engine up (see :func:`warm`) and closes its
connections; the workers inherit it. A worker appends JSON lines to JOURNAL, each with one
``os.write`` on an ``O_APPEND`` descriptor: ``backend`` (the server process of each new
PostgreSQL connection), ``start`` (key, principal, cart, instant) before
calling checkout with a new idempotency key, ``begin`` when a transaction begins for it,
``write`` before its first INSERT/UPDATE/DELETE, and ``ack`` (key and response) once
checkout has returned, that is once its transaction committed. A line cut short by the
kill is not an acknowledgement.

Carts hold one or two subscriptions of one tenant (taken at random among the tenants),
each changing its quantity (up or down, between 1 and 6) or, where ``plan_changes`` says,
its plan too; every item names the version it expects. Instants advance one minute per
checkout from the newest order's, inside one billing period (no renewal in between).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.services import subscriptions
from prorata.services.access import load_principal
from prorata.services.errors import Refused
from prorata.services.subscriptions import ChangeInput
from tests import fork_server

ZONE = ZoneInfo("America/New_York")
FIRST = datetime(2024, 2, 16, 10, 0, tzinfo=ZONE)  # the first checkout's instant
LAST = datetime(2024, 3, 14, 10, 0, tzinfo=ZONE)  # the period ends on 15 March
STEP = timedelta(minutes=1)
PLANS = ("standard-monthly", "premium-monthly")
MAX_QUANTITY = 6
EXHAUSTED = 4  # exit status: the instants reached LAST (the test asks for too much)
FAILED = 3  # exit status: a checkout raised


class Journal:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.key: str | None = None  # the checkout in flight
        self.wrote = False
        # A line cut short by a kill ends here, not in the middle of the next line.
        os.write(self.fd, b"\n")

    def log(self, **entry) -> None:
        entry["t"] = round(time.time(), 4)
        os.write(self.fd, (json.dumps(entry, sort_keys=True) + "\n").encode())


def watch(engine, journal: Journal, run: int) -> None:
    """Journal the server process of each PostgreSQL connection (the test waits for it to
    end after a kill), and the transactions of the checkout in flight: begun, first write."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        if engine.dialect.name == "postgresql":
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            journal.log(e="backend", run=run, pid=cursor.fetchone()[0])
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(_connection):
        journal.wrote = False
        if journal.key is not None:
            journal.log(e="begin", key=journal.key)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn, _cursor, statement, _parameters, _context, _executemany):
        if journal.key is not None and not journal.wrote:
            verb = statement.lstrip().split(None, 1)[0].upper()
            if verb in ("INSERT", "UPDATE", "DELETE"):
                journal.wrote = True
                journal.log(e="write", key=journal.key)


def load_state(engine, tenants: list[tuple[int, int]]):
    """Per tenant: its principal and {subscription: [version, quantity, plan]}; and the
    instant of the next checkout (a minute after the newest order)."""
    state = []
    with engine.connect() as connection:
        for tenant, user in tenants:
            principal = load_principal(connection, tenant, user)
            rows = connection.execute(
                select(
                    t.subscriptions.c.key,
                    t.subscriptions.c.version,
                    t.subscriptions.c.quantity,
                    t.subscriptions.c.plan,
                )
                .where(t.subscriptions.c.tenant_id == tenant)
                .order_by(t.subscriptions.c.key)
            ).all()
            subs = {row.key: [row.version, row.quantity, row.plan] for row in rows}
            state.append((principal, subs))
        newest = connection.execute(
            select(func.max(t.orders.c.created_at)).where(
                t.orders.c.tenant_id.in_([tenant for tenant, _ in tenants])
            )
        ).scalar_one()
        connection.rollback()
    at = FIRST if newest is None else newest.astimezone(ZONE) + STEP
    return state, at


def cart(rng: random.Random, subs: dict, plan_changes: bool) -> list[ChangeInput]:
    items = []
    for key in rng.sample(sorted(subs), rng.choice((1, 1, 2))):
        version, quantity, plan = subs[key]
        if plan_changes and rng.random() < 0.25:
            plan = PLANS[1 - PLANS.index(plan)]
        elif quantity <= 1 or (quantity < MAX_QUANTITY and rng.random() < 0.5):
            quantity += 1
        else:
            quantity -= 1
        items.append(ChangeInput(key, plan=plan, quantity=quantity, expected_version=version))
    return items


def warm(engine, tenants: list[tuple[int, int]]) -> None:
    """Import the driver, initialise the dialect and fill the statement cache, then close
    every connection, so that workers start at full speed on connections of their own.

    The cache is filled by a cart that is refused at its last item, after its first has
    gone through everything a checkout writes: it rolls back and leaves nothing, not even
    its idempotency key (which the test would report as never used).
    """
    state, at = load_state(engine, tenants)
    for principal, subs in state:
        first, second = sorted(subs)[:2]
        version, quantity, _ = subs[first]
        items = [
            ChangeInput(first, quantity=quantity % MAX_QUANTITY + 1, expected_version=version),
            ChangeInput(second, quantity=subs[second][1]),  # no change: refused
        ]
        try:
            subscriptions.checkout(engine, principal, items, at=at, key=f"warm-{os.getpid()}")
        except Refused as refusal:
            assert refusal.code == "no_change", refusal
        else:
            raise AssertionError("the warming cart was not refused")
    engine.dispose()


def work(engine, journal_path: str, tenants: list[tuple[int, int]], run: int, seed: int):
    """Check out carts until killed."""
    rng = random.Random(seed)
    server = os.getppid()
    engine.dispose(close=False)  # the fork server's pool is empty; keep it off-limits anyway
    journal = Journal(journal_path)
    watch(engine, journal, run)
    state, at = load_state(engine, tenants)
    journal.log(e="ready", run=run, at=at.isoformat())
    os.write(1, b"ready\n")  # to the test, through the fork server's standard output
    n = 0
    while True:
        if os.getppid() != server:  # the fork server is gone: so is the test
            os._exit(FAILED)
        if at > LAST:
            journal.log(e="exhausted", run=run)
            os._exit(EXHAUSTED)
        index = rng.randrange(len(state))
        principal, subs = state[index]
        items = cart(rng, subs, plan_changes=index % 2 == 1)
        key = f"r{run}-{n}"
        journal.log(
            e="start",
            run=run,
            key=key,
            tenant=principal.tenant_id,
            user=principal.user_id,
            at=at.isoformat(),
            items=[item.body() for item in items],
        )
        journal.key = key
        result = subscriptions.checkout(engine, principal, items, at=at, key=key)
        journal.key = None
        journal.log(e="ack", run=run, key=key, response=result)
        for item, outcome in zip(items, result["items"], strict=True):
            subs[item.subscription] = [outcome["version"], item.quantity, item.plan]
        at += STEP
        n += 1


def child(engine, journal_path: str, tenants, run: int, seed: int) -> None:
    try:
        work(engine, journal_path, tenants, run, seed)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os.write(1, b"failed\n")
        os._exit(FAILED)
    os._exit(FAILED)  # pragma: no cover - work never returns


def serve(url: str, journal_path: str, tenants: list[tuple[int, int]]) -> None:
    engine = make_engine(url)
    warm(engine, tenants)
    fork_server.serve_forks(
        lambda args: child(engine, journal_path, tenants, int(args[0]), int(args[1]))
    )


def main(argv: list[str]) -> None:
    url, journal_path, spec = argv
    tenants = [tuple(int(part) for part in pair.split(":")) for pair in spec.split(",")]
    serve(url, journal_path, tenants)


if __name__ == "__main__":
    main(sys.argv[1:])

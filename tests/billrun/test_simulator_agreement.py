"""The bill run agrees with the simulator to the cent and to the document number.

A seeded history of six months (``history``): 40 subscriptions of six accounts (VAT or
none, French or English, one paying by hand) on the Stripe-like policy of ``world``, with
billing days from the 1st to the 31st, and some 150 changes in between: immediate seat
changes, upgrades and downgrades whose proration lines wait for the renewal invoice,
monthly/annual switches that credit the unused time to the account (credit that later
renewals consume), changes scheduled at the end of the term, cancellations at period end
and undos. Events the simulator refuses are dropped first, so every event applies.

The simulator runs it in memory up to D (1 July 2024): before each event it renews
everything due at or before the event's instant, in due order (ties: the subscription
created first), then applies the event. On the store the same events go through the
services (``subscribe``, ``checkout``, ``cancel``, ``undo``) with an API token, and the
renewals are left to bill runs: before each event, and at the end up to D, a bill run is
run at each due instant in turn (the earliest ``due_at`` not after the event, until none
is left).

Why one bill run per due instant: a bill run claims subscriptions in the order of their
first due instant and catches each one up completely before the next. A bill run straight
to D would renew a monthly subscription's May and June before another subscription's due
in late May: the invoice numbers would follow subscriptions instead of time, and credit
shared by an account's subscriptions would go to whichever subscription is caught up first.
Run at each due instant, a bill run only ever has one instant to renew, so it renews in the
simulator's global order (due instant, then creation order = row id), and every service
call then finds its subscription already renewed (no catch-up inside the service).

The store must then hold exactly the simulator's documents (numbers, lines, totals, credit,
status), final subscription states, ledger entries and renewal keys; every renewal row
must carry a bill-run id, and the store's invariants (``checks``) hold.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.core.model import Account, Actor, Cancel, Change, Event, Subscribe, Undo
from prorata.scenario.simulator import Simulation
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.bill_run import run_until_done
from prorata.services.subscriptions import ChangeInput
from tests.billrun import checks, world

SEED = 7031
D = datetime(2024, 7, 1, tzinfo=world.ZONE)
BY = Actor(None, "support")  # who the services say acts for an API token
PLANS = ("basic-m", "pro-m", "basic-y", "pro-y")


def history(seed: int) -> tuple[list[Account], list[tuple[datetime, object]]]:
    rng = random.Random(seed)
    accounts = [
        Account(
            f"acc{n}",
            locale=("fr", "en")[n % 2],
            auto_pay=n != 5,
            tax_rate=Decimal(20) if n % 3 == 0 else Decimal(0),
        )
        for n in range(6)
    ]
    events: list[tuple[datetime, object]] = []
    starts = {}
    for n in range(40):
        at = datetime(2024, 1, 3, 8, tzinfo=world.ZONE) + timedelta(
            days=rng.randrange(85), minutes=rng.randrange(600)
        )
        day = rng.choice((None, None, 1, 15, 28, 29, 30, 31))
        plan = rng.choice(PLANS[:2] * 2 + PLANS[2:])  # two thirds monthly
        events.append((at, Subscribe(f"s{n}", f"acc{n % 6}", plan, rng.randint(1, 6), day)))
        starts[f"s{n}"] = at
    for _ in range(150):
        at = datetime(2024, 1, 5, 8, tzinfo=world.ZONE) + timedelta(
            days=rng.randrange(170), minutes=rng.randrange(720)
        )
        candidates = sorted(key for key, start in starts.items() if start < at)
        if not candidates:
            continue
        key = rng.choice(candidates)
        roll = rng.random()
        if roll < 0.3:
            action = Change(key, quantity=rng.randint(1, 8), by=BY)
        elif roll < 0.5:
            action = Change(key, plan=rng.choice(PLANS), by=BY)  # up, down or other period
        elif roll < 0.7:
            if rng.random() < 0.5:
                action = Change(key, plan=rng.choice(PLANS), timing="end_of_term", by=BY)
            else:
                action = Change(key, quantity=rng.randint(1, 8), timing="end_of_term", by=BY)
        elif roll < 0.8:
            action = Cancel(key, timing="end_of_term", by=BY)
        else:
            action = Undo(key, by=BY)
        events.append((at, action))
    events.sort(key=lambda pair: pair[0])
    return accounts, events


def scenario_of(accounts, events, base=None, until: datetime = D):
    """``base`` (default: ``world``'s scenario) with these accounts and events, run to
    ``until``."""
    return replace(
        world.scenario() if base is None else base,
        accounts={account.id: account for account in accounts},
        events=tuple(Event(n + 1, at, action) for n, (at, action) in enumerate(events)),
        run_until=until,
    )


def accepted(accounts, events, base=None, until: datetime = D):
    """The events without those the simulator refuses (repeated: dropping one may make a
    later one refused) and the simulator's book (``base``: see ``scenario_of``)."""
    while True:
        book = Simulation(scenario_of(accounts, events, base, until)).run()
        if not book.rejected:
            return events, book
        refused = {rejection.event for rejection in book.rejected}
        events = [pair for n, pair in enumerate(events) if n + 1 not in refused]


def bill_runs_up_to(engine, tenant: int, until: datetime) -> int:
    """One bill run at each due instant not after ``until``, in turn; how many ran."""
    runs = 0
    due = t.subscriptions.c.due_at
    while True:
        with engine.connect() as connection:
            connection.execution_options(sqlite_begin="DEFERRED")
            instant = connection.execute(
                select(due)
                .where(t.subscriptions.c.tenant_id == tenant, due <= until)
                .order_by(due)
                .limit(1)
            ).scalar_one_or_none()
            connection.rollback()
        if instant is None:
            return runs
        summary = run_until_done(engine, instant, run_id=f"run-{runs}")
        assert summary.failures == {}, summary.failures
        assert summary.subscriptions >= 1, instant
        runs += 1


def apply(engine, principal: Principal, at: datetime, action) -> dict:
    if isinstance(action, Subscribe):
        return subscriptions.subscribe(
            engine,
            principal,
            subscription=action.id,
            account=action.account,
            plan=action.plan,
            quantity=action.quantity,
            billing_day=action.billing_day,
            at=at,
        )
    if isinstance(action, Change):
        item = ChangeInput(action.subscription, action.plan, action.quantity, timing=action.timing)
        return subscriptions.checkout(engine, principal, [item], at=at)
    if isinstance(action, Cancel):
        return subscriptions.cancel(
            engine, principal, action.subscription, at=at, timing="end_of_term"
        )
    return subscriptions.undo(engine, principal, action.subscription, at=at)


def test_bill_runs_at_each_due_instant_agree_with_the_simulator(engine):
    accounts, events = history(SEED)
    events, book = accepted(accounts, events)
    kinds = {type(action).__name__ for _, action in events}
    assert kinds == {"Subscribe", "Change", "Cancel", "Undo"}, kinds
    # the history exercises what it should: renewal invoices with proration lines that
    # waited for them, renewal invoices consuming account credit, ends at period end
    renewal_invoices = {number for number in book.renewals.values() if number}
    renewals = [doc for doc in book.documents if doc.number in renewal_invoices]
    assert any(line.kind != "recurring" for doc in renewals for line in doc.lines)
    assert any(doc.credit_applied.is_positive for doc in renewals)
    assert any(sub.status == "cancelled" for sub in book.subscriptions.values())
    assert len({doc.account for doc in renewals}) == 6

    began = time.monotonic()
    plan = world.Plan(accounts, [], [])
    tenant = world.new_tenant(engine, plan)
    principal = Principal(tenant, kind="token")
    runs = 0
    for at, action in events:
        runs += bill_runs_up_to(engine, tenant, at)
        apply(engine, principal, at, action)
    runs += bill_runs_up_to(engine, tenant, D)

    stored = checks.read_store(engine, tenant)
    checks.assert_same_as_book(stored, book)
    assert None not in stored.bill_runs, "a service caught a renewal up"
    assert sum(stored.bill_runs.values()) == len(book.renewals)
    checks.check_invariants(engine, tenant)
    print(
        f"\n{engine.dialect.name}: {len(events)} events, {len(book.documents)} documents, "
        f"{len(book.renewals)} renewals by {runs} bill runs in {time.monotonic() - began:.1f}s"
    )

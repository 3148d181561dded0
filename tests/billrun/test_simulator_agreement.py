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
renewals are left to bill runs: before each event, and at the end up to D, one bill run
renews everything due by then, in batches of five (so that a subscription due several
times, and the accounts' shared credit, cross batches). A bill run renews one due instant
at a time in the simulator's order (due instant, then creation order = row id) across
its batches, so every service call finds its subscription already renewed (no catch-up
inside the service).

With one worker, the store must then hold exactly the simulator's documents (numbers,
lines, totals, credit, status), final subscription states, ledger entries and renewal
keys; every renewal row must carry a bill-run id, and the store's invariants (``checks``)
hold. With two workers (each claiming its share of the accounts first, then taking the
first due subscription of the other's accounts), the same up to document numbers, which
interleave between workers: an account's renewals still take its credit in due order.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from prorata.adapters.database import make_engine
from prorata.core.model import Account, Actor, Cancel, Change, Event, Subscribe, Undo
from prorata.scenario.simulator import Simulation
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.bill_run import Summary, run_until_done
from prorata.services.subscriptions import ChangeInput
from tests.billrun import checks, world

SEED = 7031
D = datetime(2024, 7, 1, tzinfo=world.ZONE)
CUT = datetime(2024, 4, 1, tzinfo=world.ZONE)  # the catching-up variant's events stop here
CATCH_UP_SEED = 3  # its history: renewals after CUT take account credit
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


BATCH = 5


def bill_runs_up_to(engines, until: datetime, run: int) -> None:
    """One bill run renewing everything due by ``until``, with one worker per engine (two:
    in threads, each worker with its share of the accounts, as ``--workers 2``)."""
    if len(engines) == 1:
        summary = run_until_done(engines[0], until, run_id=f"run-{run}", batch=BATCH)
        assert summary.failures == {}, summary.failures
        return
    results: list = [None] * len(engines)

    def work(n: int) -> None:
        try:
            results[n] = run_until_done(
                engines[n], until, run_id=f"run-{run}", batch=BATCH, share=(n, len(engines))
            )
        except BaseException as exc:  # reported below
            results[n] = exc

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if not isinstance(result, Summary):
            raise AssertionError(f"a worker: {result!r}")
        assert result.failures == {}, result.failures


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


@pytest.mark.parametrize(
    ("seed", "last_event"),
    [(SEED, D), (CATCH_UP_SEED, CUT)],
    ids=["events_to_july", "catch_up_from_april"],
)
@pytest.mark.parametrize("workers", [1, 2], ids=["one_worker", "two_workers"])
def test_bill_runs_before_each_event_agree_with_the_simulator(
    db_url, engine, workers, seed, last_event
):
    """``catch_up_from_april``: the history's events stop on 1 April, so the last bill run
    renews three months at once: subscriptions fall due three times or more, and renewals
    of several subscriptions take their account's credit (in due order, across
    subscriptions and batches)."""
    accounts, events = history(seed)
    events, book = accepted(accounts, [(at, action) for at, action in events if at < last_event])
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
    caught_up = [doc for doc in renewals if doc.issued_at >= last_event]
    if last_event < D:
        assert sum(doc.credit_applied.is_positive for doc in caught_up) >= 5

    began = time.monotonic()
    plan = world.Plan(accounts, [], [])
    tenant = world.new_tenant(engine, plan)
    principal = Principal(tenant, kind="token")
    engines = [engine] + [make_engine(db_url) for _ in range(workers - 1)]
    try:
        for run, (at, action) in enumerate(events):
            bill_runs_up_to(engines, at, run)
            apply(engine, principal, at, action)
        bill_runs_up_to(engines, D, len(events))
    finally:
        for other in engines[1:]:
            other.dispose()

    stored = checks.read_store(engine, tenant)
    if workers == 1:
        checks.assert_same_as_book(stored, book)
    else:  # the same but for document numbers, which interleave between the workers
        assert checks.document_multiset(stored.documents) == checks.document_multiset(
            book.documents
        )
        assert {k: checks.unnumbered_state(s) for k, s in stored.subscriptions.items()} == {
            k: checks.unnumbered_state(s) for k, s in book.subscriptions.items()
        }
        assert set(stored.renewals) == set(book.renewals)
        moves = [(e.account, e.amount, e.reason, e.at) for e in stored.ledger]
        assert Counter(moves) == Counter((e.account, e.amount, e.reason, e.at) for e in book.ledger)
    assert None not in stored.bill_runs, "a service caught a renewal up"
    assert sum(stored.bill_runs.values()) == len(book.renewals)
    checks.check_invariants(engine, tenant)
    print(
        f"\n{engine.dialect.name}, {workers} worker(s): {len(events)} events, "
        f"{len(book.documents)} documents, {len(book.renewals)} renewals in "
        f"{time.monotonic() - began:.1f}s"
    )

"""Plans paid in arrears renew through the bill run exactly as the simulator renews them.

A seeded history on Lago's policy (calendar billing by default, upgrades at once with the
old plan's use billed on the change day, downgrades and cancellations at the period's end)
over a catalog of plans paid in arrears, monthly and annual, beside one paid in advance:
subscriptions start mid-period (a prorated first period billed when it ends), some on an
anniversary billing day, and get upgrades, downgrades, seat changes, moves between arrears
and advance, cancellations at period end and undos. The simulator runs it in memory; on
the store the same events go through the services and the renewals are left to a bill run
before each event (as ``test_simulator_agreement``, one worker). Documents, states, ledger and
renewal keys must be the same, and the store's invariants hold.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from prorata.core.model import Account, Cancel, Change, Subscribe, Undo
from prorata.scenario.loader import parse_scenario
from prorata.services.access import Principal
from tests.billrun import checks, world
from tests.billrun.test_simulator_agreement import BY, accepted, apply, bill_runs_up_to

SEED = 4417
D = datetime(2024, 7, 1, tzinfo=world.ZONE)
CATALOG = """\
currency: EUR
timezone: Europe/Paris
policy: lago
catalog:
  products:
    - id: app
      plans:
        - {id: lite-m, period: monthly, price: "29.00", per_unit: true, pay_in_advance: false}
        - {id: team-m, period: monthly, price: "59.00", per_unit: true, pay_in_advance: false}
        - {id: team-y, period: annual, price: "590.00", per_unit: true, pay_in_advance: false}
        - {id: prepaid-m, period: monthly, price: "79.00", per_unit: true}
accounts: []
events: []
"""
PLANS = ("lite-m", "team-m", "team-y", "prepaid-m")


def history(seed: int):
    rng = random.Random(seed)
    accounts = [Account(f"acc{n}", locale=("fr", "en")[n % 2], auto_pay=n != 3) for n in range(4)]
    events, starts = [], {}
    for n in range(16):
        at = datetime(2024, 1, 3, 8, tzinfo=world.ZONE) + timedelta(
            days=rng.randrange(60), minutes=rng.randrange(600)
        )
        day = rng.choice((None, None, None, 15, 31))
        plan = rng.choice(PLANS[:2] * 3 + PLANS[2:])
        events.append((at, Subscribe(f"s{n}", f"acc{n % 4}", plan, rng.randint(1, 5), day)))
        starts[f"s{n}"] = at
    for _ in range(50):
        at = datetime(2024, 1, 5, 8, tzinfo=world.ZONE) + timedelta(
            days=rng.randrange(170), minutes=rng.randrange(720)
        )
        candidates = sorted(key for key, start in starts.items() if start < at)
        if not candidates:
            continue
        key = rng.choice(candidates)
        roll = rng.random()
        if roll < 0.25:
            action = Change(key, quantity=rng.randint(1, 6), by=BY)
        elif roll < 0.6:
            action = Change(key, plan=rng.choice(PLANS), by=BY)  # up (now) or down (period end)
        elif roll < 0.8:
            action = Cancel(key, timing="end_of_term", by=BY)
        else:
            action = Undo(key, by=BY)
        events.append((at, action))
    events.sort(key=lambda pair: pair[0])
    return accounts, events


def test_bill_runs_renew_plans_paid_in_arrears_as_the_simulator_does(engine):
    accounts, events = history(SEED)
    events, book = accepted(accounts, events, parse_scenario(CATALOG), D)
    kinds = {type(action).__name__ for _, action in events}
    assert {"Subscribe", "Change", "Cancel"} <= kinds, kinds
    # the history exercises what it should: renewals billing a first partial period in
    # arrears, renewals billing whole periods, change-day invoices of the old plan's use
    lines = [line for doc in book.documents for line in doc.lines]
    assert any(line.kind == "used_time" for line in lines)
    assert any(line.kind == "recurring" and line.plan != "prepaid-m" for line in lines)
    renewal_invoices = {number for number in book.renewals.values() if number}
    assert any(doc.number not in renewal_invoices for doc in book.documents)

    plan = world.Plan(accounts, [], [])
    slug = f"arrears-{uuid.uuid4().hex[:10]}"
    tenant = world.new_tenant(engine, plan, slug, sc=parse_scenario(CATALOG))
    principal = Principal(tenant, kind="token")
    for run, (at, action) in enumerate(events):
        bill_runs_up_to([engine], at, run)
        apply(engine, principal, at, action)
    bill_runs_up_to([engine], D, len(events))

    stored = checks.read_store(engine, tenant)
    checks.assert_same_as_book(stored, book)
    assert None not in stored.bill_runs, "a service caught a renewal up"
    assert sum(stored.bill_runs.values()) == len(book.renewals)
    checks.check_invariants(engine, tenant)

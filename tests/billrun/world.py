"""A deterministic population of subscriptions for the bill-run tests.

:func:`plan` draws, from a seed, what happens to ``n`` subscriptions of one tenant on a
Stripe-like policy (proration to the second, proration lines pending until the next
invoice, unused time to account credit): a couple of plans, monthly and annual, one to
eight seats, billing days spread over the month (1..31, or the start's day), accounts with
and without VAT, some holding two subscriptions. After its start each subscription may get
one action, an hour later (always inside its first period):

- ``schedule``: a plan, seat or period change at the end of the term (applied at renewal);
- ``cancel``: a cancellation at period end;
- ``seats``: an immediate seat change whose proration lines wait for the next invoice
  (a decrease leaves a negative renewal or account credit that later renewals consume);
- nothing.

:func:`record` writes the plan to a store (one tenant, few transactions, through
:class:`~prorata.services.billing.Billing` on a :class:`StoreBook`: the services' code without
their per-call transactions), :func:`replay` runs it through the same billing in memory on a
:class:`~prorata.services.book.Book`, and :func:`expected` renews that book the way a single
bill run does: subscription after subscription in claim order (due instant, then creation
order), each caught up to ``until``.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from prorata.adapters.store import StoreBook, load_config
from prorata.adapters.tenants import add_account, create_tenant
from prorata.core.calendar import PeriodUnit
from prorata.core.changes import Context, Refusal
from prorata.core.lifecycle import due_at
from prorata.core.model import Account, Cancel, Change, Subscribe, TermSpec
from prorata.scenario.loader import parse_scenario
from prorata.services.billing import Billing
from prorata.services.book import Book

CATALOG = """\
currency: EUR
timezone: Europe/Paris
policy: stripe
catalog:
  products:
    - id: app
      plans:
        - {id: basic-m, tier: 1, period: monthly, price: "29.00", per_unit: true}
        - {id: pro-m, tier: 2, period: monthly, price: "59.00", per_unit: true}
        - {id: basic-y, tier: 1, period: annual, price: "290.00", per_unit: true}
        - {id: pro-y, tier: 2, period: annual, price: "590.00", per_unit: true}
accounts: []
events: []
"""
ZONE = ZoneInfo("Europe/Paris")
MONTHLY = ("basic-m", "pro-m")
ANNUAL = ("basic-y", "pro-y")


@dataclass(frozen=True)
class Plan:
    """What to record: accounts, then per subscription its start and at most one action."""

    accounts: list[Account]
    subscribes: list[tuple[Subscribe, datetime]]
    actions: list[tuple[Change | Cancel, datetime]]
    currency: str = "EUR"  # the tenant's: the catalog's prices are read in it


def plan(
    n: int, seed: int, accounts: int | None = None, currency: str = "EUR", tokens: bool = False
) -> Plan:
    """``tokens``: a third of the accounts pay through a gateway token (their invoices are
    left open and collected), a third on issue, a third by hand (drawn apart: the rest of
    the plan is the same either way)."""
    rng = random.Random(seed)
    accounts = [
        Account(f"a{i}", rng.choice(("fr", "en")), tax_rate=rng.choice((Decimal(0), Decimal(20))))
        for i in range(accounts or max(1, n * 4 // 5))
    ]
    if tokens:
        ways = random.Random(seed + 1)
        accounts = [
            replace(account, auto_pay=way != "by hand", payment_token=f"tok_{account.id}")
            if (way := ways.choice(("token", "on issue", "by hand"))) == "token"
            else replace(account, auto_pay=way != "by hand", payment_method="card")
            for account in accounts
        ]
    subscribes, actions = [], []
    for i in range(n):
        # the first accounts get a second subscription
        account = accounts[i % len(accounts)].id
        annual = rng.random() < 0.25
        plan_id = rng.choice(ANNUAL if annual else MONTHLY)
        day = rng.randint(1, 28)
        # annual ones started in 2023, so that they renew during the bill run too
        start = datetime(2023 if annual else 2024, 1 if day > 5 else 2, day, 9, tzinfo=ZONE)
        start += timedelta(minutes=rng.randrange(600))
        billing_day = rng.choice((None, None, rng.randint(1, 31)))
        term = (
            TermSpec(PeriodUnit(rng.choice(("monthly", "annual")))) if rng.random() < 0.1 else None
        )
        spec = Subscribe(f"s{i}", account, plan_id, rng.randint(1, 8), billing_day, term)
        subscribes.append((spec, start))
        roll = rng.random()
        at = start + timedelta(hours=1)
        if roll < 0.2:
            kind = rng.choice(("plan", "seats", "period"))
            if kind == "plan":
                other = (MONTHLY if plan_id in MONTHLY else ANNUAL)[plan_id.startswith("basic")]
                change = Change(spec.id, plan=other, timing="end_of_term")
            elif kind == "seats":
                seats = rng.choice([q for q in range(1, 9) if q != spec.quantity])
                change = Change(spec.id, quantity=seats, timing="end_of_term")
            else:
                other = (ANNUAL if plan_id in MONTHLY else MONTHLY)[plan_id.startswith("pro")]
                change = Change(spec.id, plan=other, timing="end_of_term")
            actions.append((change, at))
        elif roll < 0.3:
            actions.append((Cancel(spec.id, timing="end_of_term"), at))
        elif roll < 0.45:
            seats = rng.choice([q for q in range(1, 9) if q != spec.quantity])
            actions.append((Change(spec.id, quantity=seats), at))
    return Plan(accounts, subscribes, actions, currency)


@functools.cache
def scenario(currency: str = "EUR"):
    """The catalog and policy with prices in ``currency``."""
    return parse_scenario(CATALOG.replace("currency: EUR", f"currency: {currency}"))


def billing_over(book, accounts, currency: str) -> Billing:
    sc = scenario(currency)
    return Billing(Context(sc.catalog, sc.policy, accounts), book, sc.policy.rounding)


def _apply(billing: Billing, plan_: Plan) -> list[str]:
    """Subscribe, then act; the keys of refused actions (there should be none)."""
    for spec, at in plan_.subscribes:
        billing.subscribe(spec, at, plan_.currency)
    refused = []
    for action, at in plan_.actions:
        result = billing.change(action, at) if isinstance(action, Change) else None
        if isinstance(action, Cancel):
            result = billing.cancel(action, at)
        if isinstance(result, Refusal):
            refused.append(f"{action.subscription}: {result.code}")
    return refused


def new_tenant(engine: Engine, plan_: Plan, slug: str | None = None, sc=None) -> int:
    """A new tenant with ``plan_``'s accounts, over ``sc``'s catalog and policy (default:
    this module's scenario in ``plan_``'s currency); its id."""
    sc = scenario(plan_.currency) if sc is None else sc
    with engine.begin() as connection:
        tenant = create_tenant(
            connection,
            slug=slug or f"billrun-{uuid.uuid4().hex[:10]}",
            name="billrun",
            currency=plan_.currency,
            timezone=ZONE.key,
            catalog=sc.catalog,
            policy=sc.policy,
        )
        for account in plan_.accounts:
            add_account(connection, tenant, account)
    return tenant


def record(engine: Engine, plan_: Plan, slug: str | None = None) -> int:
    """A new tenant holding ``plan_``; its id."""
    tenant = new_tenant(engine, plan_, slug)
    with engine.begin() as connection:
        book = StoreBook(connection, load_config(connection, tenant))
        refused = _apply(billing_over(book, book.accounts, plan_.currency), plan_)
    assert not refused, refused
    return tenant


def replay(plan_: Plan) -> Book:
    book = Book()
    refused = _apply(billing_over(book, {a.id: a for a in plan_.accounts}, plan_.currency), plan_)
    assert not refused, refused
    return book


def claim_order(book: Book, until: datetime) -> Iterator[str]:
    """The subscriptions a bill run claims, in its order: due instant, then creation."""
    due = [
        (when, n, key)
        for n, (key, sub) in enumerate(book.subscriptions.items())
        if (when := due_at(sub)) is not None and when <= until
    ]
    return (key for _, _, key in sorted(due))


def expected(plan_: Plan, until: datetime) -> Book:
    """``plan_`` in memory, renewed as one bill run until ``until`` renews it: every
    renewal due in turn, by due instant then creation (the simulator's order)."""
    book = replay(plan_)
    billing = billing_over(book, {a.id: a for a in plan_.accounts}, plan_.currency)
    billing.renew_due(until.astimezone(ZONE))
    return book

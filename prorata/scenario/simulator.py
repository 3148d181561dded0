"""Run a scenario on a simulated clock, in memory or on the store.

For each event the simulator runs the renewals due at or before its instant, then hands
the event to :class:`~prorata.services.billing.Billing`, which asks the pure core what
happens and records it in a ledger: an in-memory :class:`~prorata.services.book.Book` by
default, or the database (``simulate_on_store``), one transaction per event. Refused events
are collected as :class:`Rejection` values, in event order.
"""

from __future__ import annotations

from datetime import datetime

from prorata.adapters.gateways import SandboxGateway
from prorata.core.changes import Context, Refusal
from prorata.core.model import (
    Approve,
    Cancel,
    Change,
    Event,
    Fail,
    Pay,
    Reject,
    SetPaymentMethod,
    Subscribe,
    Undo,
)
from prorata.core.money import Money
from prorata.scenario.loader import Scenario
from prorata.services.billing import Billing
from prorata.services.book import Book, Ledger, Rejection, Request
from prorata.services.collection import Collector

__all__ = ["Book", "Rejection", "Request", "Simulation", "credit_of", "run_event", "simulate"]


def run_event(billing: Billing, scenario: Scenario, event: Event) -> Refusal | None:
    """Renewals due by ``event.at``, then the event itself; the refusal, if refused.
    (Collections are run around it by :class:`Simulation`.)"""
    billing.renew_due(event.at, inclusive=True)
    action = event.action
    if isinstance(action, Subscribe):
        outcome = billing.subscribe(action, event.at, scenario.currency)
    elif isinstance(action, Change):
        outcome = billing.change(action, event.at)
    elif isinstance(action, Cancel):
        outcome = billing.cancel(action, event.at)
    elif isinstance(action, Undo):
        outcome = billing.undo(action.subscription, event.at)
    elif isinstance(action, Approve | Reject):
        outcome = billing.decide(action.request, isinstance(action, Approve), event.at)
    elif isinstance(action, Pay):
        outcome = billing.pay(action.invoice, event.at, method=action.method)
    elif isinstance(action, Fail):
        outcome = billing.fail(action.invoice, event.at, action.reason)
    elif isinstance(action, SetPaymentMethod):
        billing.set_payment_method(action.account, action.method, action.token)
        outcome = None
    else:  # pragma: no cover - the loader builds only the actions above
        raise TypeError(f"unknown action {action!r}")
    return outcome if isinstance(outcome, Refusal) else None


def step(billing: Billing, collector: Collector, scenario: Scenario, event: Event):
    """One event with what falls due around it: renewals and collections due by its
    instant, the event, then the collections and refunds it made due at once. Returns
    the refusal, if refused."""
    run_due(billing, collector, event.at)
    refusal = run_event(billing, scenario, event)
    run_due(billing, collector, event.at)
    return refusal


def billing_for(scenario: Scenario, ledger: Ledger) -> Billing:
    # a copy: a scenario's payment-method events change the accounts of this run only
    ctx = Context(scenario.catalog, scenario.policy, dict(scenario.accounts))
    return Billing(ctx, ledger, scenario.policy.rounding)


def run_due(billing: Billing, collector: Collector, until: datetime) -> None:
    """Renewals and collection attempts due by ``until``, in time order (renewals first at
    the same instant), then the refunds waiting to be sent."""
    ledger = billing.ledger
    while True:
        renewal = ledger.next_due(until, True)
        attempt = ledger.next_collection(until, True)
        if renewal is None and attempt is None:
            break
        if attempt is None or (renewal is not None and renewal[0] <= attempt[0]):
            billing.renew(renewal[1], renewal[0])
        else:
            collector.attempt(attempt[1], attempt[0])
    collector.run_due(until)


class Simulation:
    """A scenario run in memory: ``run()`` returns the :class:`Book` it recorded."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.book = Book()
        self.billing = billing_for(scenario, self.book)
        self.collector = Collector(self.billing, SandboxGateway())

    def run(self) -> Book:
        for event in self.scenario.events:
            self.handle(event)
        if self.scenario.run_until is not None:
            self.advance(self.scenario.run_until)
        return self.book

    def handle(self, event: Event) -> None:
        refusal = step(self.billing, self.collector, self.scenario, event)
        if refusal is not None:
            self.book.rejected.append(
                Rejection(event.index, refusal.code, refusal.message, event.at)
            )

    def advance(self, until: datetime) -> None:
        """Run every renewal and collection due at or before ``until``."""
        run_due(self.billing, self.collector, until)


def simulate(scenario: Scenario) -> Book:
    return Simulation(scenario).run()


def credit_of(book: Book, account: str, currency: str) -> Money:
    return book.credit(account, currency)

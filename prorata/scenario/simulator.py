"""Run a scenario on a simulated clock, in memory or on the store.

For each event the simulator runs the renewals due at or before its instant, then hands
the event to :class:`~prorata.services.billing.Billing`, which asks the pure core what
happens and records it in a ledger: an in-memory :class:`~prorata.services.book.Book` by
default, or the database (``simulate_on_store``), one transaction per event. Refused events
are collected as :class:`Rejection` values, in event order.
"""

from __future__ import annotations

from datetime import datetime

from prorata.core.changes import Context, Refusal
from prorata.core.model import Approve, Cancel, Change, Event, Pay, Reject, Subscribe, Undo
from prorata.core.money import Money
from prorata.scenario.loader import Scenario
from prorata.services.billing import Billing
from prorata.services.book import Book, Ledger, Rejection, Request

__all__ = ["Book", "Rejection", "Request", "Simulation", "credit_of", "run_event", "simulate"]


def run_event(billing: Billing, scenario: Scenario, event: Event) -> Refusal | None:
    """Renewals due by ``event.at``, then the event itself; the refusal, if refused."""
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
        outcome = billing.pay(action.invoice, event.at)
    else:  # pragma: no cover - the loader builds only the actions above
        raise TypeError(f"unknown action {action!r}")
    return outcome if isinstance(outcome, Refusal) else None


def billing_for(scenario: Scenario, ledger: Ledger) -> Billing:
    ctx = Context(scenario.catalog, scenario.policy, scenario.accounts)
    return Billing(ctx, ledger, scenario.policy.rounding)


class Simulation:
    """A scenario run in memory: ``run()`` returns the :class:`Book` it recorded."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.book = Book()
        self.billing = billing_for(scenario, self.book)

    def run(self) -> Book:
        for event in self.scenario.events:
            self.handle(event)
        if self.scenario.run_until is not None:
            self.advance(self.scenario.run_until)
        return self.book

    def handle(self, event: Event) -> None:
        refusal = run_event(self.billing, self.scenario, event)
        if refusal is not None:
            self.book.rejected.append(
                Rejection(event.index, refusal.code, refusal.message, event.at)
            )

    def advance(self, until: datetime) -> None:
        """Run every renewal due at or before ``until``."""
        self.billing.renew_due(until, inclusive=True)


def simulate(scenario: Scenario) -> Book:
    return Simulation(scenario).run()


def credit_of(book: Book, account: str, currency: str) -> Money:
    return book.credit(account, currency)

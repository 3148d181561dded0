"""Run a scenario on a simulated clock against an in-memory book.

The simulator is a thin service over the pure core: for each event it loads the
subscription from the book, asks the core (``changes.evaluate``, ``lifecycle.*``) what
happens, and records the result (documents with gapless numbers, ledger entries, requests).
Renewals due at or before an event's instant run before the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from prorata.core import lifecycle, wording
from prorata.core.changes import Context, Quote, Refusal, evaluate
from prorata.core.documents import (
    CreditNote,
    Invoice,
    LedgerEntry,
    Line,
    balance,
    issue_credit_note,
    issue_invoice,
)
from prorata.core.model import Approve, Cancel, Change, Event, Pay, Reject, Subscribe, Undo
from prorata.core.money import Money
from prorata.core.subscription import Subscription
from prorata.scenario.loader import Scenario


@dataclass
class Request:
    """A change or cancellation waiting for a person (approval or manual fulfilment)."""

    id: int
    subscription: str
    reason: str  # approval_required | manual_fulfillment
    action: Change | Cancel
    created_at: datetime
    state: str = "pending"  # pending | approved | rejected
    decided_at: datetime | None = None


@dataclass
class Rejection:
    event: int
    code: str
    message: str
    at: datetime


@dataclass
class Book:
    """Everything the run has recorded so far."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    documents: list[Invoice | CreditNote] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    explanations: list[tuple[str, Line]] = field(default_factory=list)

    def next_number(self, series: str) -> str:
        self.counters[series] = self.counters.get(series, 0) + 1
        return f"{series}-{self.counters[series]:04d}"


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.book = Book()
        self.ctx = Context(scenario.catalog, scenario.policy, scenario.accounts)

    # clock ------------------------------------------------------------------
    def run(self) -> Book:
        for event in self.scenario.events:
            self.advance(event.at, inclusive=True)
            self.handle(event)
        if self.scenario.run_until is not None:
            self.advance(self.scenario.run_until, inclusive=True)
        return self.book

    def advance(self, until: datetime, *, inclusive: bool) -> None:
        """Run every renewal due before ``until`` (or at it, when ``inclusive``)."""
        while True:
            due = [
                (when, n, sub_id)
                for n, (sub_id, sub) in enumerate(self.book.subscriptions.items())
                if (when := lifecycle.due_at(sub)) is not None
                and (when <= until if inclusive else when < until)
            ]
            if not due:
                return
            when, _, sub_id = min(due)
            sub = self.book.subscriptions[sub_id]
            step = lifecycle.advance(self.ctx, sub, when)
            self.book.subscriptions[sub_id] = step.subscription
            self._invoice(step.subscription, list(step.lines), when)

    # events -----------------------------------------------------------------
    def handle(self, event: Event) -> None:
        action = event.action
        if isinstance(action, Subscribe):
            self._subscribe(action, event.at)
        elif isinstance(action, Change):
            sub = self.book.subscriptions[action.subscription]
            ctx = replace(self.ctx, pending_request=self._pending(sub.id))
            self._record(event, sub, evaluate(ctx, sub, action, event.at), action)
        elif isinstance(action, Cancel):
            sub = self.book.subscriptions[action.subscription]
            ctx = replace(self.ctx, pending_request=self._pending(sub.id))
            self._record(event, sub, lifecycle.evaluate_cancel(ctx, sub, action, event.at), action)
        elif isinstance(action, Undo):
            sub = self.book.subscriptions[action.subscription]
            undone = lifecycle.undo(sub)
            if undone is None:
                self._reject(event, sub, "nothing_scheduled")
            else:
                self.book.subscriptions[sub.id] = undone
        elif isinstance(action, Approve | Reject):
            self._decide(event, action)
        elif isinstance(action, Pay):
            self._pay(event, action)

    def _subscribe(self, action: Subscribe, at: datetime) -> None:
        step = lifecycle.start(self.ctx, action, at, self.scenario.currency)
        self.book.subscriptions[action.id] = step.subscription
        self._invoice(step.subscription, list(step.lines), at)

    def _pending(self, sub_id: str) -> int | None:
        for request in self.book.requests:
            if request.subscription == sub_id and request.state == "pending":
                return request.id
        return None

    def _record(self, event: Event, sub: Subscription, outcome, action) -> None:
        if isinstance(outcome, Refusal):
            self.book.rejected.append(
                Rejection(event.index, outcome.code, outcome.message, event.at)
            )
            return
        if outcome.timing == "approval":
            self._open_request(sub.id, outcome.request_reason, action, event.at)
            return
        self.apply(outcome, event.at)
        if outcome.request_reason == "manual_fulfillment":
            self._open_request(sub.id, "manual_fulfillment", action, event.at)

    def _open_request(self, sub_id, reason, action, at) -> None:
        request = Request(len(self.book.requests) + 1, sub_id, reason, action, at)
        self.book.requests.append(request)

    def apply(self, quote: Quote, at: datetime) -> None:
        """Record a quote: the new state, then its credit note, then its invoice."""
        sub = quote.subscription
        routing = quote.routing
        if routing.pending:
            sub = sub.evolve(pending_lines=(*sub.pending_lines, *routing.pending))
        self.book.subscriptions[sub.id] = sub
        if routing.credit_note:
            account = self.scenario.accounts[sub.account]
            note, entries = issue_credit_note(
                number=self.book.next_number("CN"),
                issued_at=at,
                account=account,
                currency=sub.currency,
                lines=routing.credit_note,
                refers_to=quote.refers_to,
                credited_to=routing.credited_to,
                rounding=self.scenario.policy.rounding,
            )
            self.book.documents.append(note)
            self.book.ledger.extend(entries)
            self.book.explanations.extend((note.number, line) for line in note.lines)
        if routing.invoice:
            self._invoice(sub, list(routing.invoice), at)

    def _invoice(self, sub: Subscription, lines: list[Line], at: datetime) -> None:
        if not lines:
            return
        account = self.scenario.accounts[sub.account]
        currency = sub.currency
        invoice, entries = issue_invoice(
            number=self.book.next_number("INV"),
            issued_at=at,
            account=account,
            currency=currency,
            lines=lines,
            credit_balance=balance(self.book.ledger, account.id, currency),
            rounding=self.scenario.policy.rounding,
        )
        self.book.documents.append(invoice)
        self.book.ledger.extend(entries)
        self.book.explanations.extend((invoice.number, line) for line in invoice.lines)
        current = self.book.subscriptions[sub.id]
        segments = tuple(
            replace(s, document=invoice.number) if s.document is None else s
            for s in current.segments
        )
        self.book.subscriptions[sub.id] = replace(current, segments=segments)

    def _decide(self, event: Event, action: Approve | Reject) -> None:
        request = next((r for r in self.book.requests if r.id == action.request), None)
        if request is None or request.state != "pending":
            sub = self.book.subscriptions[request.subscription] if request else None
            locale = self.scenario.accounts[sub.account].locale if sub else "en"
            message = wording.refusal("unknown_request", locale, request=action.request)
            self.book.rejected.append(Rejection(event.index, "unknown_request", message, event.at))
            return
        request.decided_at = event.at
        if isinstance(action, Reject):
            request.state = "rejected"
            return
        request.state = "approved"
        if request.reason == "manual_fulfillment":
            return  # billed when ordered; the approval records that the service is ready
        sub = self.book.subscriptions[request.subscription]
        if isinstance(request.action, Cancel):
            outcome = lifecycle.evaluate_cancel(
                self.ctx, sub, request.action, event.at, approved=True
            )
        else:
            outcome = evaluate(self.ctx, sub, request.action, event.at, approved=True)
        if isinstance(outcome, Refusal):
            request.state = "rejected"
            self.book.rejected.append(
                Rejection(event.index, outcome.code, outcome.message, event.at)
            )
            return
        self.apply(outcome, event.at)

    def _pay(self, event: Event, action: Pay) -> None:
        for i, doc in enumerate(self.book.documents):
            if isinstance(doc, Invoice) and doc.number == action.invoice and doc.status == "open":
                self.book.documents[i] = doc.paid()
                return
        message = wording.refusal("unknown_invoice", "en", invoice=action.invoice)
        self.book.rejected.append(Rejection(event.index, "unknown_invoice", message, event.at))

    def _reject(self, event: Event, sub: Subscription, code: str) -> None:
        locale = self.scenario.accounts[sub.account].locale
        message = wording.refusal(code, locale)
        self.book.rejected.append(Rejection(event.index, code, message, event.at))


def simulate(scenario: Scenario) -> Book:
    return Simulation(scenario).run()


def credit_of(book: Book, account: str, currency: str) -> Money:
    return balance(book.ledger, account, currency)

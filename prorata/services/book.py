"""The book: where billing records what happens (the port), and its in-memory adapter.

The billing service (:mod:`prorata.services.billing`) reads and writes only through
:class:`Ledger`; :class:`Book` keeps everything in memory (the simulator's default) and
:class:`prorata.adapters.store.StoreBook` keeps it in the database. Both must give the same
answers for the same calls; the scenario tests check it.

Invariants of every implementation:
- subscriptions are returned in the order they were added; ``save`` records a new version
  and never loses the previous one (the store keeps each as a terms row);
- ``next_number`` is gapless per series: ``{series}-0001``, ``-0002``, … in call order;
- documents are returned in issue order, unchanged except an invoice's payment status;
- the ledger is append-only and ``credit`` is the sum of an account's entries;
- requests are numbered 1, 2, … in the order they were opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from prorata.core.documents import Document, Invoice, LedgerEntry, Line, balance
from prorata.core.lifecycle import due_at
from prorata.core.model import Cancel, Change
from prorata.core.money import Money
from prorata.core.subscription import Subscription


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
    """An event the engine refused, as the simulator reports it."""

    event: int
    code: str
    message: str
    at: datetime


class Ledger(Protocol):
    """What billing needs from a place that records subscriptions and documents."""

    def subscription(self, sub_id: str) -> Subscription | None: ...

    def add(self, sub: Subscription, at: datetime) -> None: ...

    def save(self, sub: Subscription, at: datetime, reason: str) -> None: ...

    def next_due(self, until: datetime, inclusive: bool) -> tuple[datetime, str] | None: ...

    def next_number(self, series: str) -> str: ...

    def record(self, doc: Document, entries: Iterable[LedgerEntry]) -> None: ...

    def credit(self, account: str, currency: str) -> Money: ...

    def open_request(
        self, sub_id: str, reason: str, action: Change | Cancel, at: datetime
    ) -> Request: ...

    def pending_request(self, sub_id: str) -> Request | None: ...

    def request(self, number: int) -> Request | None: ...

    def decide(self, request: Request, state: str, at: datetime) -> Request: ...

    def invoice(self, number: str) -> Invoice | None: ...

    def mark_paid(self, invoice: Invoice, at: datetime) -> Invoice: ...

    def renewed(self, sub_id: str, due_at: datetime, document: str | None) -> None:
        """``sub_id`` was renewed for ``due_at``: at most once (the bill run's key)."""
        ...


@dataclass
class Book:
    """Everything a run has recorded, kept in memory; also the snapshot the store reads out."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    renewals: dict[tuple[str, datetime], str | None] = field(default_factory=dict)

    @property
    def explanations(self) -> list[tuple[str, Line]]:
        """Every document line with the number of its document, in issue order."""
        return [(doc.number, line) for doc in self.documents for line in doc.lines]

    # Ledger ----------------------------------------------------------------------------
    def subscription(self, sub_id: str) -> Subscription | None:
        return self.subscriptions.get(sub_id)

    def add(self, sub: Subscription, at: datetime) -> None:
        self.subscriptions[sub.id] = sub

    def save(self, sub: Subscription, at: datetime, reason: str) -> None:
        self.subscriptions[sub.id] = sub

    def next_due(self, until: datetime, inclusive: bool) -> tuple[datetime, str] | None:
        due = [
            (when, n, sub_id)
            for n, (sub_id, sub) in enumerate(self.subscriptions.items())
            if (when := due_at(sub)) is not None and (when <= until if inclusive else when < until)
        ]
        if not due:
            return None
        when, _, sub_id = min(due)
        return when, sub_id

    def next_number(self, series: str) -> str:
        self.counters[series] = self.counters.get(series, 0) + 1
        return f"{series}-{self.counters[series]:04d}"

    def record(self, doc: Document, entries: Iterable[LedgerEntry]) -> None:
        self.documents.append(doc)
        self.ledger.extend(entries)

    def credit(self, account: str, currency: str) -> Money:
        return balance(self.ledger, account, currency)

    def open_request(
        self, sub_id: str, reason: str, action: Change | Cancel, at: datetime
    ) -> Request:
        request = Request(len(self.requests) + 1, sub_id, reason, action, at)
        self.requests.append(request)
        return request

    def pending_request(self, sub_id: str) -> Request | None:
        return next(
            (r for r in self.requests if r.subscription == sub_id and r.state == "pending"), None
        )

    def request(self, number: int) -> Request | None:
        return next((r for r in self.requests if r.id == number), None)

    def decide(self, request: Request, state: str, at: datetime) -> Request:
        request.state = state
        request.decided_at = at
        return request

    def invoice(self, number: str) -> Invoice | None:
        return next(
            (d for d in self.documents if isinstance(d, Invoice) and d.number == number), None
        )

    def mark_paid(self, invoice: Invoice, at: datetime) -> Invoice:
        paid = invoice.paid()
        self.documents = [paid if d is invoice else d for d in self.documents]
        return paid

    def renewed(self, sub_id: str, due_at: datetime, document: str | None) -> None:
        key = (sub_id, due_at)
        if key in self.renewals:
            raise ValueError(f"subscription {sub_id} was already renewed for {due_at}")
        self.renewals[key] = document

"""The book: where billing records what happens (the port), and its in-memory adapter.

The billing service (:mod:`prorata.services.billing`) reads and writes only through
:class:`Ledger`; :class:`Book` keeps everything in memory (the simulator's default) and
:class:`prorata.adapters.store.StoreBook` keeps it in the database. Both must give the same
answers for the same calls; the scenario tests check it.

Invariants of every implementation:
- subscriptions are returned in the order they were added; ``save`` records a new version
  and never loses the previous one (the store keeps each as a terms row);
- ``next_number`` is gapless per series: ``{series}-0001``, ``-0002``, … in call order;
- documents are returned in issue order, unchanged except an invoice's payment status
  (what an invoice still asks for is derived: its charges and the credit notes allocated
  to it, see ``documents.outstanding``);
- the ledger is append-only and ``credit`` is the sum of an account's entries;
- requests are numbered 1, 2, … in the order they were opened;
- payments are numbered 1, 2, … in the order they were recorded; a payment's status moves
  only from ``pending`` (a refund not yet sent) to its result;
- an invoice paid on issue (auto-pay without a gateway token) records its charge in
  ``record``; later payments are recorded by ``mark_paid`` or ``record_payment``;
  ``is_paid_on_issue`` answers from what ``record`` was given, never from the status now
  (its PDF states the invoice as issued);
- an account's pending lines (lines of ended subscriptions waiting for the account's next
  invoice) are kept in the order added; ``take_pending`` returns those of a currency once
  and keeps the others, so a line is never returned twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from prorata.core.documents import CreditNote, Document, Invoice, LedgerEntry, Line, balance
from prorata.core.lifecycle import due_at
from prorata.core.model import Cancel, Change
from prorata.core.money import Money
from prorata.core.payments import Collection, Payment
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

    def record(
        self, doc: Document, entries: Iterable[LedgerEntry], method: str | None = None
    ) -> None:
        """Keep ``doc`` and its ledger entries; an invoice paid on issue also records its
        charge, by ``method``."""
        ...

    def credit(self, account: str, currency: str) -> Money: ...

    def record_entries(self, entries: Iterable[LedgerEntry]) -> None:
        """Ledger entries that belong to no new document (a refund nothing could take)."""
        ...

    def open_request(
        self, sub_id: str, reason: str, action: Change | Cancel, at: datetime
    ) -> Request: ...

    def pending_request(self, sub_id: str) -> Request | None: ...

    def request(self, number: int) -> Request | None: ...

    def decide(self, request: Request, state: str, at: datetime) -> Request: ...

    def invoice(self, number: str) -> Invoice | None: ...

    def notes_for(self, invoice: str) -> list[CreditNote]:
        """The credit notes that refer to invoice number ``invoice``, in issue order."""
        ...

    def mark_paid(
        self,
        invoice: Invoice,
        at: datetime,
        method: str | None,
        reference: str | None,
        amount: Money | None = None,
    ) -> Invoice:
        """``invoice`` is paid at ``at``: its new status and the charge of ``amount`` (what
        it still asked for; its ``amount_due`` when not given) that paid it, if any."""
        ...

    def mark_void(self, invoice: Invoice) -> Invoice: ...

    def record_payment(self, payment: Payment) -> Payment:
        """Keep ``payment`` (its ``id`` is assigned here) and return it."""
        ...

    def settle_payment(self, payment_id: int, status: str, reference: str | None) -> None:
        """A pending payment (a refund sent to the gateway) ended in ``status``."""
        ...

    def payments(self, account: str | None = None) -> list[Payment]: ...

    def collection(self, invoice: str) -> Collection | None: ...

    def save_collection(self, collection: Collection) -> None: ...

    def collections_of(self, sub_id: str) -> list[Collection]: ...

    def next_collection(self, until: datetime, inclusive: bool) -> tuple[datetime, str] | None:
        """The earliest collection attempt due by ``until``: (instant, invoice number)."""
        ...

    def renewed(self, sub_id: str, due_at: datetime, document: str | None) -> None:
        """``sub_id`` was renewed for ``due_at``: at most once (the bill run's key)."""
        ...

    def pending_of(self, account: str) -> tuple[Line, ...]:
        """The lines waiting on ``account`` for its next invoice, in the order added."""
        ...

    def add_pending(self, account: str, lines: tuple[Line, ...]) -> None:
        """``lines`` wait on ``account`` for its next invoice, after those already there."""
        ...

    def take_pending(self, account: str, currency: str) -> tuple[Line, ...]:
        """The lines in ``currency`` waiting on ``account``, removed from it (they go on
        the invoice being issued); lines in other currencies stay."""
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
    payment_list: list[Payment] = field(default_factory=list)
    collections: dict[str, Collection] = field(default_factory=dict)
    pending: dict[str, tuple[Line, ...]] = field(default_factory=dict)  # by account
    # the invoices paid when issued, by number: their status may change, this does not
    paid_on_issue: set[str] = field(default_factory=set)

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

    def record(
        self, doc: Document, entries: Iterable[LedgerEntry], method: str | None = None
    ) -> None:
        self.documents.append(doc)
        self.ledger.extend(entries)
        if isinstance(doc, Invoice) and doc.status == "paid":
            self.paid_on_issue.add(doc.number)
            if doc.amount_due.is_positive:
                self._charge(doc, doc.issued_at, method, None)

    def _charge(
        self,
        doc: Invoice,
        at: datetime,
        method: str | None,
        ref: str | None,
        amount: Money | None = None,
    ) -> None:
        amount = doc.amount_due if amount is None else amount
        if not amount.is_positive:
            return  # settled by credit notes alone: no money moved
        self.record_payment(
            Payment(0, "charge", doc.account, amount, at, "succeeded", method, doc.number, ref)
        )

    def credit(self, account: str, currency: str) -> Money:
        return balance(self.ledger, account, currency)

    def record_entries(self, entries: Iterable[LedgerEntry]) -> None:
        self.ledger.extend(entries)

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

    def notes_for(self, invoice: str) -> list[CreditNote]:
        return [d for d in self.documents if isinstance(d, CreditNote) and d.refers_to == invoice]

    def is_paid_on_issue(self, number: str) -> bool:
        """Whether invoice ``number`` was paid when issued (whatever its status now)."""
        return number in self.paid_on_issue

    def mark_paid(
        self,
        invoice: Invoice,
        at: datetime,
        method: str | None,
        reference: str | None,
        amount: Money | None = None,
    ) -> Invoice:
        paid = self._replace(invoice, invoice.paid())
        self._charge(paid, at, method, reference, amount)
        return paid

    def mark_void(self, invoice: Invoice) -> Invoice:
        return self._replace(invoice, invoice.voided())

    def _replace(self, old: Invoice, new: Invoice) -> Invoice:
        self.documents = [
            new if isinstance(d, Invoice) and d.number == old.number else d for d in self.documents
        ]
        return new

    def record_payment(self, payment: Payment) -> Payment:
        kept = replace(payment, id=len(self.payment_list) + 1)
        self.payment_list.append(kept)
        return kept

    def settle_payment(self, payment_id: int, status: str, reference: str | None) -> None:
        old = self.payment_list[payment_id - 1]
        self.payment_list[payment_id - 1] = replace(old, status=status, reference=reference)

    def payments(self, account: str | None = None) -> list[Payment]:
        return [p for p in self.payment_list if account is None or p.account == account]

    def collection(self, invoice: str) -> Collection | None:
        return self.collections.get(invoice)

    def save_collection(self, collection: Collection) -> None:
        self.collections[collection.invoice] = collection

    def collections_of(self, sub_id: str) -> list[Collection]:
        return [c for c in self.collections.values() if sub_id in c.subscriptions]

    def next_collection(self, until: datetime, inclusive: bool) -> tuple[datetime, str] | None:
        due = [
            (c.next_attempt_at, n, c.invoice)
            for n, c in enumerate(self.collections.values())
            if (when := c.next_attempt_at) is not None
            and (when <= until if inclusive else when < until)
        ]
        if not due:
            return None
        when, _, number = min(due)
        return when, number

    def renewed(self, sub_id: str, due_at: datetime, document: str | None) -> None:
        key = (sub_id, due_at)
        if key in self.renewals:
            raise ValueError(f"subscription {sub_id} was already renewed for {due_at}")
        self.renewals[key] = document

    def pending_of(self, account: str) -> tuple[Line, ...]:
        return self.pending.get(account, ())

    def add_pending(self, account: str, lines: tuple[Line, ...]) -> None:
        if lines:
            self.pending[account] = (*self.pending_of(account), *lines)

    def take_pending(self, account: str, currency: str) -> tuple[Line, ...]:
        taken, kept = split_pending(self.pending_of(account), currency)
        if kept:
            self.pending[account] = kept
        else:
            self.pending.pop(account, None)
        return taken


def split_pending(
    lines: tuple[Line, ...], currency: str
) -> tuple[tuple[Line, ...], tuple[Line, ...]]:
    """``lines`` in ``currency`` and the others, each in their order."""
    taken = tuple(line for line in lines if line.amount.currency == currency)
    return taken, tuple(line for line in lines if line.amount.currency != currency)

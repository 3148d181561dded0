"""Billing over a ledger: subscribe, change, cancel, undo, decide, pay and renew.

This is the orchestration the simulator, the services and the bill run share. Each method
asks the pure core what happens and records the answer through a
:class:`~prorata.services.book.Ledger`; none reads a clock (instants are passed in) and
none commits (the caller owns the transaction).

Invariants:
- a refused action records nothing and returns the core's :class:`Refusal`;
- an applied change records, in this order, the new subscription state, its credit note,
  then its invoice; numbers are taken from the ledger in that order;
- renewals due at or before an instant run in due order (ties: the subscription added
  first) before anything else happens at that instant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from prorata.core import lifecycle, wording
from prorata.core.changes import Context, Quote, Refusal, evaluate
from prorata.core.documents import Document, Line, issue_credit_note, issue_invoice
from prorata.core.model import Cancel, Change, Subscribe
from prorata.core.money import Money, total
from prorata.core.subscription import Subscription
from prorata.services.book import Ledger, Request


@dataclass(frozen=True)
class Outcome:
    """What an accepted action did.

    ``status``: ``applied`` (in effect now), ``scheduled`` (at ``quote.effective_at``) or
    ``requested`` (waiting for a person: ``request``). A manual-fulfilment change is
    ``applied`` and also opens a request.
    """

    status: str
    subscription: Subscription
    quote: Quote | None = None
    documents: tuple[Document, ...] = ()
    request: Request | None = None
    at: datetime | None = None  # a renewal: the instant it fell due


def with_document(sub: Subscription, number: str) -> Subscription:
    """``sub`` with the segments billed on invoice ``number`` pointing at it."""
    segments = tuple(replace(s, document=number) if s.document is None else s for s in sub.segments)
    return replace(sub, segments=segments)


class Billing:
    def __init__(self, ctx: Context, ledger: Ledger, rounding: str) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.rounding = rounding

    # renewals ------------------------------------------------------------------------
    def renew_due(self, until: datetime, *, inclusive: bool = True) -> int:
        """Run every renewal due before ``until`` (or at it); returns how many ran."""
        count = 0
        while (due := self.ledger.next_due(until, inclusive)) is not None:
            when, sub_id = due
            self.renew(sub_id, when)
            count += 1
        return count

    def catch_up(self, sub_id: str, until: datetime) -> list[Outcome]:
        """Run the renewals of ``sub_id`` due at or before ``until`` (a service acting on a
        subscription whose period ended before the bill run reached it); returns what each
        renewal did, in order."""
        outcomes = []
        while (when := lifecycle.due_at(self._get(sub_id))) is not None and when <= until:
            outcomes.append(self.renew(sub_id, when))
        return outcomes

    def renew(self, sub_id: str, when: datetime) -> Outcome:
        """What falls due for ``sub_id`` at ``when``: scheduled changes, end, renewal."""
        sub = self._get(sub_id)
        step = lifecycle.advance(self.ctx, sub, when)
        docs = self._bill(step.subscription, step.lines, when, "renewal")
        self.ledger.renewed(sub_id, when, docs[0].number if docs else None)
        return Outcome("applied", self._get(sub_id), documents=docs, at=when)

    # actions -------------------------------------------------------------------------
    def subscribe(self, spec: Subscribe, at: datetime, currency: str) -> Outcome:
        step = lifecycle.start(self.ctx, spec, at, currency)
        docs = self._bill(step.subscription, step.lines, at, "subscribe", new=True)
        return Outcome("applied", self._get(spec.id), documents=docs)

    def change(self, change: Change, at: datetime) -> Outcome | Refusal:
        sub = self._get(change.subscription)
        outcome = evaluate(self.context_for(sub), sub, change, at)
        return self._record(sub, outcome, change, at)

    def cancel(self, cancel: Cancel, at: datetime) -> Outcome | Refusal:
        sub = self._get(cancel.subscription)
        outcome = lifecycle.evaluate_cancel(self.context_for(sub), sub, cancel, at)
        return self._record(sub, outcome, cancel, at)

    def undo(self, sub_id: str, at: datetime) -> Outcome | Refusal:
        sub = self._get(sub_id)
        undone = lifecycle.undo(sub)
        if undone is None:
            locale = self.ctx.reader_locale or self.ctx.accounts[sub.account].locale
            return Refusal("nothing_scheduled", wording.refusal("nothing_scheduled", locale))
        self.ledger.save(undone, at, "undo")
        return Outcome("applied", undone)

    def decide(self, number: int, approve: bool, at: datetime) -> Outcome | Refusal:
        """Approve or reject request ``number``; an approved change is applied at ``at``."""
        request = self.ledger.request(number)
        if request is None or request.state != "pending":
            sub = self._get(request.subscription) if request else None
            locale = self.ctx.reader_locale or (
                self.ctx.accounts[sub.account].locale if sub else "en"
            )
            message = wording.refusal("unknown_request", locale, request=number)
            return Refusal("unknown_request", message)
        sub = self._get(request.subscription)
        if not approve:
            return Outcome("rejected", sub, request=self.ledger.decide(request, "rejected", at))
        if request.reason == "manual_fulfillment":
            # billed when ordered; the approval records that the service is ready
            return Outcome("applied", sub, request=self.ledger.decide(request, "approved", at))
        if isinstance(request.action, Cancel):
            outcome = lifecycle.evaluate_cancel(self.ctx, sub, request.action, at, approved=True)
        else:
            outcome = evaluate(self.ctx, sub, request.action, at, approved=True)
        if isinstance(outcome, Refusal):
            self.ledger.decide(request, "rejected", at)
            return outcome
        decided = self.ledger.decide(request, "approved", at)
        return replace(self.apply(outcome, at), request=decided)

    def pay(self, number: str, at: datetime) -> Outcome | Refusal:
        invoice = self.ledger.invoice(number)
        if invoice is None or invoice.status != "open":
            message = wording.refusal(
                "unknown_invoice", self.ctx.reader_locale or "en", invoice=number
            )
            return Refusal("unknown_invoice", message)
        paid = self.ledger.mark_paid(invoice, at)
        sub_ids = {line.subscription for line in paid.lines}
        sub = self._get(min(sub_ids)) if sub_ids else None
        return Outcome("applied", sub, documents=(paid,))

    # recording -----------------------------------------------------------------------
    def _get(self, sub_id: str) -> Subscription:
        sub = self.ledger.subscription(sub_id)
        if sub is None:
            raise KeyError(sub_id)
        return sub

    def context_for(self, sub: Subscription) -> Context:
        """The context for a change of ``sub``: it knows whether a request is pending."""
        pending = self.ledger.pending_request(sub.id)
        return replace(self.ctx, pending_request=pending.id if pending else None)

    def _record(
        self, sub: Subscription, outcome: Quote | Refusal, action: Change | Cancel, at: datetime
    ) -> Outcome | Refusal:
        if isinstance(outcome, Refusal):
            return outcome
        if outcome.timing == "approval":
            request = self.ledger.open_request(sub.id, outcome.request_reason, action, at)
            return Outcome("requested", sub, quote=outcome, request=request)
        result = self.apply(outcome, at)
        if outcome.request_reason == "manual_fulfillment":
            request = self.ledger.open_request(sub.id, "manual_fulfillment", action, at)
            result = replace(result, request=request)
        return result

    def apply(self, quote: Quote, at: datetime) -> Outcome:
        """Record a quote: the new state, then its credit note, then its invoice."""
        sub = quote.subscription
        routing = quote.routing
        if routing.pending:
            sub = sub.evolve(pending_lines=(*sub.pending_lines, *routing.pending))
        docs: list[Document] = []
        if routing.credit_note:
            note, entries = self._credit_note(quote, at, self.ledger.next_number("CN"))
            self.ledger.record(note, entries)
            docs.append(note)
        reason = "schedule" if quote.timing == "end_of_term" else quote.kind
        docs.extend(self._bill(sub, routing.invoice, at, reason))
        status = "scheduled" if quote.timing == "end_of_term" else "applied"
        return Outcome(status, self._get(sub.id), quote=quote, documents=tuple(docs))

    def drafts(self, quote: Quote, at: datetime, balance: Money) -> tuple[Document, ...]:
        """The documents :meth:`apply` would issue for ``quote`` at ``at`` when the account
        holds ``balance`` of credit, numbered ``DRAFT``; nothing is recorded."""
        sub = quote.subscription
        docs: list[Document] = []
        if quote.routing.credit_note:
            note, entries = self._credit_note(quote, at, "DRAFT")
            balance = total((balance, *(e.amount for e in entries)), balance.currency)
            docs.append(note)
        if quote.routing.invoice:
            invoice, _ = issue_invoice(
                number="DRAFT",
                issued_at=at,
                account=self.ctx.accounts[sub.account],
                currency=sub.currency,
                lines=list(quote.routing.invoice),
                credit_balance=balance,
                rounding=self.rounding,
            )
            docs.append(invoice)
        return tuple(docs)

    def _credit_note(self, quote: Quote, at: datetime, number: str):
        sub = quote.subscription
        return issue_credit_note(
            number=number,
            issued_at=at,
            account=self.ctx.accounts[sub.account],
            currency=sub.currency,
            lines=quote.routing.credit_note,
            refers_to=quote.refers_to,
            credited_to=quote.routing.credited_to,
            rounding=self.rounding,
        )

    def _bill(
        self,
        sub: Subscription,
        lines: tuple[Line, ...] | list[Line],
        at: datetime,
        reason: str,
        *,
        new: bool = False,
    ) -> tuple[Document, ...]:
        """Invoice ``lines`` (if any), point the new segments at that invoice, save ``sub``
        (``new``: add it)."""
        keep = self.ledger.add if new else self.ledger.save
        if not lines:
            keep(sub, at) if new else keep(sub, at, reason)
            return ()
        account = self.ctx.accounts[sub.account]
        invoice, entries = issue_invoice(
            number=self.ledger.next_number("INV"),
            issued_at=at,
            account=account,
            currency=sub.currency,
            lines=list(lines),
            credit_balance=self.ledger.credit(account.id, sub.currency),
            rounding=self.rounding,
        )
        self.ledger.record(invoice, entries)
        billed = with_document(sub, invoice.number)
        keep(billed, at) if new else keep(billed, at, reason)
        return (invoice,)

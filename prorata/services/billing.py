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
  first) before anything else happens at that instant;
- lines waiting on an account (``Routing.account``: an ended subscription's pending lines
  and credit) go first on the next invoice issued to that account in their currency, by
  :meth:`Billing._bill`, whichever subscription it bills, and are removed from the account
  in the same transaction: each is invoiced once. An invoice that a change waits for
  (``payment.change`` other than ``immediately``) does not take them, since voiding it
  would lose them; they wait for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from prorata.core import lifecycle, payments, wording
from prorata.core.changes import Context, Quote, Refusal, effective_policy, evaluate
from prorata.core.documents import (
    CreditNote,
    Document,
    Invoice,
    LedgerEntry,
    Line,
    allocated_to,
    issue_adjustment,
    issue_credit_note,
    issue_invoice,
    outstanding,
    void_invoice,
)
from prorata.core.model import Account, Cancel, Change, Subscribe
from prorata.core.money import Money, total
from prorata.core.subscription import Awaiting, Subscription
from prorata.core.values import quick_init, replaced
from prorata.services.book import Ledger, Request, split_pending


@quick_init
@dataclass(frozen=True)
class Outcome:
    """What an accepted action did.

    ``status``: ``applied`` (in effect now), ``scheduled`` (at ``quote.effective_at``),
    ``requested`` (waiting for a person: ``request``), ``awaiting_payment`` (billed, in
    effect once its invoice is paid) or ``failed`` (a payment attempt failed). A
    manual-fulfilment change is ``applied`` and also opens a request.
    """

    status: str
    subscription: Subscription
    quote: Quote | None = None
    documents: tuple[Document, ...] = ()
    request: Request | None = None
    at: datetime | None = None  # a renewal: the instant it fell due


def with_document(sub: Subscription, number: str) -> Subscription:
    """``sub`` with the segments billed on invoice ``number`` pointing at it."""
    segments = tuple(
        replaced(s, document=number) if s.document is None else s for s in sub.segments
    )
    return replaced(sub, segments=segments)


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
        sub = self._get(sub_id)
        while (when := lifecycle.due_at(sub)) is not None and when <= until:
            outcome = self._renew(sub, when)
            outcomes.append(outcome)
            sub = outcome.subscription  # the state the renewal left
        return outcomes

    def renew(self, sub_id: str, when: datetime) -> Outcome:
        """What falls due for ``sub_id`` at ``when``: a change whose payment did not come is
        dropped (its invoice voided), then scheduled changes, end, renewal."""
        return self._renew(self._get(sub_id), when)

    def _renew(self, sub: Subscription, when: datetime) -> Outcome:
        """:meth:`renew` of ``sub``, the ledger's current state of its subscription."""
        sub_id = sub.id
        step = lifecycle.advance(self.ctx, sub, when)
        voids = tuple(note for n in step.voids if (note := self._void(n, when)) is not None)
        docs = self._bill(step.subscription, step.lines, when, "renewal")
        self.ledger.renewed(sub_id, when, docs[0].number if docs else None)
        if voids:
            self._restatus((sub_id,), when)
        return Outcome("applied", self._get(sub_id), documents=voids + docs, at=when)

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

    # payments ------------------------------------------------------------------------
    def _open_invoice(self, number: str) -> Invoice | Refusal:
        invoice = self.ledger.invoice(number)
        if invoice is None or invoice.status != "open":
            message = wording.refusal(
                "unknown_invoice", self.ctx.reader_locale or "en", invoice=number
            )
            return Refusal("unknown_invoice", message)
        return invoice

    def pay(
        self, number: str, at: datetime, method: str | None = None, reference: str | None = None
    ) -> Outcome | Refusal:
        """Invoice ``number`` is paid at ``at``: a change waiting for it takes effect and
        its subscriptions leave dunning once nothing else of theirs is failing."""
        invoice = self._open_invoice(number)
        if isinstance(invoice, Refusal):
            return invoice
        return self._settle(invoice, at, method, reference)

    def _settle(
        self, invoice: Invoice, at: datetime, method: str | None, reference: str | None
    ) -> Outcome:
        """Open ``invoice`` is paid: charged what it still asks for (nothing when credit
        notes settled it), its collection closed, a change waiting for it applied."""
        number = invoice.number
        account = self.ctx.accounts[invoice.account]
        due = self.outstanding(invoice)
        paid = self.ledger.mark_paid(
            invoice, at, method or account.payment_method, reference, amount=due
        )
        collection = self.ledger.collection(number)
        if collection is not None:
            self.ledger.save_collection(payments.settled(collection, "paid"))
        sub_ids = _subscriptions_of(paid)
        for sub_id in sub_ids:
            sub = self._get(sub_id)
            if sub.awaiting is not None and sub.awaiting.invoice == number:
                target = replace(sub.awaiting.target, versions=sub.versions + 1, status=sub.status)
                self.ledger.save(target, at, sub.awaiting.kind)
        self._restatus(sub_ids, at)
        return Outcome("applied", self._get(sub_ids[0]) if sub_ids else None, documents=(paid,))

    def fail(
        self, number: str, at: datetime, outcome: str, reference: str | None = None
    ) -> Outcome | Refusal:
        """An attempt to collect invoice ``number`` failed with ``outcome``: the failure is
        recorded, the next retry scheduled (or the dunning's final action taken)."""
        invoice = self._open_invoice(number)
        if isinstance(invoice, Refusal):
            return invoice
        account = self.ctx.accounts[invoice.account]
        due = self.outstanding(invoice)
        failed = payments.Payment(
            0,
            "charge",
            invoice.account,
            due,
            at,
            outcome,
            account.payment_method,
            number,
            reference,
        )
        self.ledger.record_payment(failed)
        sub_ids = _subscriptions_of(invoice)
        collection = self.ledger.collection(number) or payments.Collection(
            number, invoice.account, sub_ids, due, None
        )
        self.ledger.save_collection(
            payments.after_attempt(collection, outcome, at, self.ctx.policy.dunning)
        )
        self._restatus(sub_ids, at)
        sub = self._get(sub_ids[0]) if sub_ids else None
        return Outcome("failed", sub, documents=(invoice,))

    def collected(
        self, number: str, at: datetime, outcome: str, reference: str | None
    ) -> Outcome | Refusal:
        """The result of a gateway attempt on invoice ``number``."""
        if outcome == "succeeded":
            return self.pay(number, at, reference=reference)
        return self.fail(number, at, outcome, reference)

    def set_payment_method(self, account: str, method: str, token: str | None) -> Account:
        """The account pays with ``method`` through gateway token ``token`` from now on
        (the accounts mapping keeps it: a dict in memory, the accounts table in the store)."""
        updated = replace(self.ctx.accounts[account], payment_method=method, payment_token=token)
        self.ctx.accounts[account] = updated
        return updated

    def outstanding(self, invoice: Invoice) -> Money:
        """What ``invoice`` still asks for (see ``documents.outstanding``)."""
        paid = payments.charged(self.ledger.payments(invoice.account), invoice.number)
        notes = self.ledger.notes_for(invoice.number)
        return outstanding(invoice, paid, allocated_to(invoice.number, notes))

    def _restatus(self, sub_ids, at: datetime) -> None:
        """Each subscription's status from its collections (see ``payments``); a change
        waiting for its payment does not put its subscription in dunning."""
        final = self.ctx.policy.dunning.final
        for sub_id in sub_ids:
            sub = self._get(sub_id)
            waiting = sub.awaiting.invoice if sub.awaiting else None
            mine = [c for c in self.ledger.collections_of(sub_id) if c.invoice != waiting]
            status = payments.subscription_status(sub.status, mine, final)
            if status == sub.status:
                continue
            if status == "cancelled":
                ended = sub.evolve(
                    status="cancelled", ended_at=at, cancel_at=at, scheduled=(), pending_lines=()
                )
                self.ledger.save(ended, at, "dunning")
            else:
                self.ledger.save(sub.evolve(status=status), at, "dunning")

    def _void(self, number: str, at: datetime) -> Document | None:
        """Cancel the unpaid invoice of a change that was dropped; None if it was settled."""
        invoice = self.ledger.invoice(number)
        if invoice is None or invoice.status != "open":
            return None
        account = self.ctx.accounts[invoice.account]
        note, entries = void_invoice(
            invoice,
            number=self.ledger.next_number("CN"),
            at=at,
            why="change_dropped",
            locale=self.ctx.reader_locale or account.locale,
        )
        self.ledger.record(note, entries)
        self.ledger.mark_void(invoice)
        collection = self.ledger.collection(number)
        if collection is not None:
            self.ledger.save_collection(payments.settled(collection, "void"))
        return note

    def refund(self, note: CreditNote, at: datetime) -> tuple[payments.Payment, ...]:
        """Send credit note ``note`` back to what the account paid, latest charge first.

        A charge taken by a gateway is refunded through it (recorded ``pending`` until the
        gateway answers); one paid outside (paid on issue, or by hand) is recorded as
        refunded at once. What no charge can take goes to the account's credit."""
        charges = [p for p in self.ledger.payments(note.account) if p.kind == "charge"]
        refunds = [p for p in self.ledger.payments(note.account) if p.kind == "refund"]
        plan, left = payments.refund_plan(charges, refunds, note.total)
        made = []
        for charge, part in plan:
            status = "pending" if charge.reference else "succeeded"
            made.append(
                self.ledger.record_payment(
                    payments.Payment(
                        0,
                        "refund",
                        note.account,
                        part,
                        at,
                        status,
                        charge.method,
                        note.number,
                        None,
                        charge.id,
                    )
                )
            )
        if left.is_positive:
            entry = LedgerEntry(at, note.account, left, note.number, "refund_unavailable")
            self.ledger.record_entries((entry,))
        return tuple(made)

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
        if routing.account:
            self.ledger.add_pending(sub.account, routing.account)
        docs: list[Document] = []
        if routing.credit_note:
            adjusted = self._adjusting(quote)
            for note, entries in self._credit_notes(
                quote, at, lambda: self.ledger.next_number("CN"), adjusted
            ):
                self.ledger.record(note, entries)
                docs.append(note)
                if note.credited_to == "refund":
                    self.refund(note, at)
            if adjusted is not None:
                self._adjusted(adjusted, at)
        reason = "schedule" if quote.timing == "end_of_term" else quote.kind
        if self._waits_for_payment(quote):
            invoice = self._await(sub, quote, at)
            if invoice is not None:
                docs.append(invoice)
                current = self._get(sub.id)
                return Outcome("awaiting_payment", current, quote=quote, documents=tuple(docs))
        docs.extend(self._bill(sub, routing.invoice, at, reason))
        status = "scheduled" if quote.timing == "end_of_term" else "applied"
        return Outcome(status, self._get(sub.id), quote=quote, documents=tuple(docs))

    def _waits_for_payment(self, quote: Quote) -> bool:
        """Whether the policy holds this change until its invoice is paid."""
        if quote.timing != "immediate" or not quote.routing.invoice or quote.routing.credit_note:
            # a credit note issued beside the invoice could not be taken back if the change
            # were dropped: such a change applies at once
            return False
        policy = effective_policy(self.ctx, quote.subscription.items, None)
        if policy.payment.mode == "immediately":
            return False
        lines = quote.routing.invoice
        return total((line.amount for line in lines), lines[0].amount.currency).is_positive

    def _await(self, target: Subscription, quote: Quote, at: datetime) -> Document | None:
        """Issue the change's invoice; if it is not paid on issue, keep the current terms
        with the change waiting for it. None (nothing issued) when it would be paid on issue:
        the caller then applies the change as usual."""
        account = self.ctx.accounts[target.account]
        invoice, entries = self._issue(target, quote.routing.invoice, at, account, "DRAFT")
        if invoice.status == "paid":
            return None
        number = self.ledger.next_number("INV")
        invoice, entries = self._issue(target, quote.routing.invoice, at, account, number)
        self.ledger.record(invoice, entries, account.payment_method)
        current = self._get(target.id)
        policy = effective_policy(self.ctx, quote.subscription.items, None).payment
        if policy.mode == "on_payment":
            expires = current.period_end
        else:
            expires = at + timedelta(hours=policy.pending_hours)
        waiting = Awaiting(number, with_document(target, number), expires, quote.kind)
        self.ledger.save(current.evolve(awaiting=waiting), at, "awaiting_payment")
        self._open_collection(invoice, account, at)
        return invoice

    def _open_collection(self, invoice: Invoice, account: Account, at: datetime) -> None:
        if invoice.status == "open" and account.auto_pay and account.payment_token:
            self.ledger.save_collection(
                payments.Collection(
                    invoice.number, account.id, _subscriptions_of(invoice), invoice.amount_due, at
                )
            )

    def drafts(self, quote: Quote, at: datetime, balance: Money) -> tuple[Document, ...]:
        """The documents :meth:`apply` would issue for ``quote`` at ``at`` when the account
        holds ``balance`` of credit, numbered ``DRAFT``; nothing is recorded."""
        sub = quote.subscription
        docs: list[Document] = []
        if quote.routing.credit_note:
            notes = self._credit_notes(quote, at, lambda: "DRAFT", self._adjusting(quote))
            for note, entries in notes:
                balance = total((balance, *(e.amount for e in entries)), balance.currency)
                docs.append(note)
        if quote.routing.invoice:
            waiting: tuple[Line, ...] = ()
            if not self._waits_for_payment(quote):
                waiting = split_pending(self.ledger.pending_of(sub.account), sub.currency)[0]
            invoice, _ = issue_invoice(
                number="DRAFT",
                issued_at=at,
                account=self.ctx.accounts[sub.account],
                currency=sub.currency,
                lines=[*waiting, *quote.routing.invoice],
                credit_balance=balance,
                rounding=self.rounding,
            )
            docs.append(invoice)
        return tuple(docs)

    def _adjusting(self, quote: Quote) -> Invoice | None:
        """The open invoice ``quote``'s credit adjusts (the policy's
        ``unpaid_invoice_credit: adjustment``, a credit note to the account's credit
        referring to an invoice not paid yet); None when the credit goes as usual."""
        if quote.routing.credited_to != "account" or quote.refers_to is None:
            return None
        policy = effective_policy(self.ctx, quote.subscription.items, None)
        if policy.unpaid_invoice_credit != "adjustment":
            return None
        invoice = self.ledger.invoice(quote.refers_to)
        return invoice if invoice is not None and invoice.status == "open" else None

    def _credit_notes(
        self, quote: Quote, at: datetime, numbers, adjusted: Invoice | None
    ) -> list[tuple[CreditNote, list[LedgerEntry]]]:
        """The credit notes of ``quote``, numbered by ``numbers()``: one as the routing
        says, or the adjustment of open invoice ``adjusted`` (and a refundable note for
        what it does not still ask for)."""
        sub = quote.subscription
        account = self.ctx.accounts[sub.account]
        if adjusted is not None:
            return issue_adjustment(
                numbers=numbers,
                issued_at=at,
                account=account,
                currency=sub.currency,
                lines=quote.routing.credit_note,
                invoice=adjusted.number,
                due=self.outstanding(adjusted),
                rounding=self.rounding,
            )
        note, entries = issue_credit_note(
            number=numbers(),
            issued_at=at,
            account=account,
            currency=sub.currency,
            lines=quote.routing.credit_note,
            refers_to=quote.refers_to,
            credited_to=quote.routing.credited_to,
            rounding=self.rounding,
        )
        return [(note, entries)]

    def _adjusted(self, invoice: Invoice, at: datetime) -> None:
        """Open ``invoice`` after an adjustment: settled if it asks for nothing more, else
        its collection asks for what is left."""
        due = self.outstanding(invoice)
        if not due.is_positive:
            self._settle(invoice, at, None, None)
            return
        collection = self.ledger.collection(invoice.number)
        if collection is not None and collection.amount != due:
            self.ledger.save_collection(replace(collection, amount=due))

    def _bill(
        self,
        sub: Subscription,
        lines: tuple[Line, ...] | list[Line],
        at: datetime,
        reason: str,
        *,
        new: bool = False,
    ) -> tuple[Document, ...]:
        """Invoice ``lines`` (if any) after the lines waiting on the account, point the new
        segments at that invoice, save ``sub`` (``new``: add it). No lines, no invoice: the
        account's waiting lines never make one on their own."""
        keep = self.ledger.add if new else self.ledger.save
        if not lines:
            keep(sub, at) if new else keep(sub, at, reason)
            return ()
        lines = (*self.ledger.take_pending(sub.account, sub.currency), *lines)
        account = self.ctx.accounts[sub.account]
        invoice, entries = self._issue(sub, lines, at, account, self.ledger.next_number("INV"))
        self.ledger.record(invoice, entries, account.payment_method)
        billed = with_document(sub, invoice.number)
        keep(billed, at) if new else keep(billed, at, reason)
        self._open_collection(invoice, account, at)
        return (invoice,)

    def _issue(self, sub: Subscription, lines, at: datetime, account: Account, number: str):
        return issue_invoice(
            number=number,
            issued_at=at,
            account=account,
            currency=sub.currency,
            lines=list(lines),
            credit_balance=self.ledger.credit(account.id, sub.currency),
            rounding=self.rounding,
        )


def _subscriptions_of(invoice: Invoice) -> tuple[str, ...]:
    """The subscriptions an invoice bills, in order of first line."""
    return tuple(dict.fromkeys(line.subscription for line in invoice.lines if line.subscription))

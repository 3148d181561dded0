"""Collecting invoices and sending refunds through a payment gateway.

:class:`Collector` drives :class:`~prorata.services.billing.Billing`: it asks the gateway
to charge a due collection (with the collection's idempotency key, so a repeated attempt
is one charge) and records the answer through ``Billing.collected``; it sends the refunds
billing recorded as ``pending``. The simulator calls it between events; the store's
``prorata collect`` calls the same steps with each gateway call outside any transaction.
"""

from __future__ import annotations

from datetime import datetime

from prorata.adapters.gateways import Gateway, GatewayError, Result, charge
from prorata.core.changes import Refusal
from prorata.core.payments import Payment, settled
from prorata.services.billing import Billing, Outcome


class Collector:
    def __init__(self, billing: Billing, gateway: Gateway) -> None:
        self.billing = billing
        self.gateway = gateway

    @property
    def ledger(self):
        return self.billing.ledger

    def charge_for(self, number: str) -> tuple[str, object, str] | None:
        """What the next attempt on invoice ``number`` charges: (token, amount, key), or
        None when it is not due for collection (settled), or there is nothing to charge (no
        token on file, or the account pays by hand)."""
        collection = self.ledger.collection(number)
        if collection is None or collection.next_attempt_at is None:
            return None
        account = self.billing.ctx.accounts[collection.account]
        if not account.payment_token or not account.auto_pay:
            return None
        return account.payment_token, collection.amount, collection.key

    @staticmethod
    def call_gateway(gateway: Gateway, token: str, amount, key: str) -> Result:
        """The gateway's answer; a refused call (an unusable token) counts as declined."""
        try:
            return charge(gateway, token, amount, key)
        except GatewayError:
            return Result("declined", None)

    def call(self, token: str, amount, key: str) -> Result:
        return self.call_gateway(self.gateway, token, amount, key)

    def attempt_with(self, number: str, at: datetime, result: Result) -> Outcome | Refusal | None:
        """Record an answer obtained earlier (outside the transaction) for invoice
        ``number``'s due attempt."""
        return self.attempt(number, at, result)

    def attempt(
        self, number: str, at: datetime, result: Result | None = None
    ) -> Outcome | Refusal | None:
        """Charge invoice ``number`` now (or take ``result``, the answer already obtained)
        and record it. An invoice settled meanwhile closes its collection; a collection
        with no method on file fails (``no_payment_method``) without a gateway call."""
        invoice = self.ledger.invoice(number)
        collection = self.ledger.collection(number)
        if collection is None or collection.next_attempt_at is None:
            return None
        if invoice is None or invoice.status != "open":
            state = "void" if invoice is not None and invoice.status == "void" else "paid"
            self.ledger.save_collection(settled(collection, state))
            return None
        if result is None:
            due = self.charge_for(number)
            result = Result("no_payment_method", None) if due is None else self.call(*due)
        return self.billing.collected(number, at, result.outcome, result.reference)

    def pending_refunds(self) -> list[tuple[Payment, Payment]]:
        """Refunds recorded but not yet sent, each with the charge it returns money from."""
        payments = {p.id: p for p in self.ledger.payments()}
        return [
            (p, payments[p.refunds])
            for p in payments.values()
            if p.kind == "refund" and p.status == "pending"
        ]

    @staticmethod
    def refund_gateway(gateway: Gateway, refund: Payment, original: Payment) -> Result:
        """The gateway's answer to ``refund`` of charge ``original`` (its own idempotency
        key); a refused call is a failure named by the gateway's code."""
        try:
            return gateway.refund(original.reference, refund.amount, f"refund:{refund.id}")
        except GatewayError as exc:
            return Result(exc.code, None)

    def refund_one(self, refund: Payment, original: Payment) -> None:
        result = self.refund_gateway(self.gateway, refund, original)
        self.ledger.settle_payment(refund.id, result.outcome, result.reference)

    def run_due(self, until: datetime, *, inclusive: bool = True) -> int:
        """Every collection due by ``until``, in due order, then the pending refunds."""
        count = 0
        while (due := self.ledger.next_collection(until, inclusive)) is not None:
            when, number = due
            self.attempt(number, when)
            count += 1
        for refund, original in self.pending_refunds():
            self.refund_one(refund, original)
        return count

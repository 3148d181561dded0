"""The payment half of :class:`~prorata.adapters.store.StoreBook`: payments (charges, failed
attempts, refunds), collections, and invoice status changes, in the caller's transaction.

Invariants: a payment row is never deleted; only a ``pending`` refund's status and
reference are ever updated. A collection row follows one invoice (unique document); its
``next_attempt_at`` is what ``prorata collect`` claims on, leased while a gateway call runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from prorata.adapters import schema as t
from prorata.core.documents import Invoice, LedgerEntry
from prorata.core.money import Money
from prorata.core.payments import Collection, Payment

_P = t.payments.c
_C = t.collections.c
INSERT_COLLECTION = insert(t.collections)


def _progress(c: Collection) -> dict[str, Any]:
    """The columns of a collection that its attempts move (the lease let go)."""
    return {
        "state": c.state,
        "attempts": c.attempts,
        "first_failed_at": c.first_failed_at,
        "next_attempt_at": c.next_attempt_at,
        "last_outcome": c.last_outcome,
        "lease_until": None,
    }


def new_collection(tenant_id: int, document_id: Any, c: Collection) -> dict[str, Any]:
    """The row of a collection first saved, for :data:`INSERT_COLLECTION`."""
    return {
        "tenant_id": tenant_id,
        "document_id": document_id,
        "subscriptions": json.dumps(list(c.subscriptions)),
        "amount_minor": c.amount.minor,
        "currency": c.amount.currency,
        **_progress(c),
    }


class PaymentRecords:
    """Mixed into ``StoreBook``: needs ``connection``, ``tenant_id``, ``accounts``,
    ``_local`` and ``_payment``."""

    # invoices ------------------------------------------------------------------------
    def _set_status(self, invoice: Invoice, status: str) -> int:
        return self.connection.execute(
            update(t.documents)
            .where(
                t.documents.c.tenant_id == self.tenant_id,
                t.documents.c.number == invoice.number,
                t.documents.c.status == "open",
            )
            .values(status=status)
            .returning(t.documents.c.id)
        ).scalar_one()

    def mark_paid(
        self,
        invoice: Invoice,
        at: datetime,
        method: str | None = None,
        reference: str | None = None,
        amount: Money | None = None,
    ) -> Invoice:
        doc_id = self._set_status(invoice, "paid")
        amount = invoice.amount_due if amount is None else amount
        if amount.is_positive:  # none when credit notes alone settled it
            self._payment(doc_id, amount, invoice.account, at, method, reference)
        return invoice.paid()

    def mark_void(self, invoice: Invoice) -> Invoice:
        self._set_status(invoice, "void")
        return invoice.voided()

    def record_entries(self, entries) -> None:
        rows = [self._entry_row(e) for e in entries]
        if rows:
            self.connection.execute(insert(t.ledger_entries), rows)

    def _entry_row(self, e: LedgerEntry) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "account_id": self.accounts.id_of(e.account),
            "currency": e.amount.currency,
            "amount_minor": e.amount.minor,
            "document_number": e.document,
            "reason": e.reason,
            "at": e.at,
        }

    def _document_id(self, number: str) -> int:
        return self.connection.execute(
            select(t.documents.c.id).where(
                t.documents.c.tenant_id == self.tenant_id, t.documents.c.number == number
            )
        ).scalar_one()

    # payments ------------------------------------------------------------------------
    def record_payment(self, payment: Payment) -> Payment:
        ident = self.connection.execute(
            insert(t.payments)
            .values(
                tenant_id=self.tenant_id,
                document_id=self._document_id(payment.document),
                amount_minor=payment.amount.minor,
                currency=payment.amount.currency,
                method=payment.method,
                paid_at=payment.at,
                kind=payment.kind,
                status=payment.status,
                reference=payment.reference,
                refund_of=payment.refunds,
            )
            .returning(_P.id)
        ).scalar_one()
        return Payment(
            ident,
            payment.kind,
            payment.account,
            payment.amount,
            payment.at,
            payment.status,
            payment.method,
            payment.document,
            payment.reference,
            payment.refunds,
        )

    def settle_payment(self, payment_id: int, status: str, reference: str | None) -> None:
        done = self.connection.execute(
            update(t.payments)
            .where(_P.id == payment_id, _P.tenant_id == self.tenant_id, _P.status == "pending")
            .values(status=status, reference=reference)
        ).rowcount
        if done != 1:
            raise LookupError(f"payment {payment_id} is not pending")

    def _with_document(self, table, *where):
        """Rows of ``table`` (payments, collections) of this tenant with their document's
        number and account key."""
        return (
            select(
                table, t.documents.c.number.label("number"), t.accounts.c.key.label("account_key")
            )
            .join(t.documents, t.documents.c.id == table.c.document_id)
            .join(t.accounts, t.accounts.c.id == t.documents.c.account_id)
            .where(table.c.tenant_id == self.tenant_id, *where)
        )

    def payments(self, account: str | None = None, *where) -> list[Payment]:
        query = self._with_document(t.payments, *where).order_by(_P.id)
        if account is not None:
            query = query.where(t.documents.c.account_id == self.accounts.id_of(account))
        return [
            Payment(
                row.id,
                row.kind,
                row.account_key,
                Money.from_minor(row.amount_minor, row.currency),
                self._local(row.paid_at),
                row.status,
                row.method,
                row.number,
                row.reference,
                row.refund_of,
            )
            for row in self.connection.execute(query)
        ]

    # collections ---------------------------------------------------------------------
    def _collection(self, row: Any) -> Collection:
        return Collection(
            invoice=row.number,
            account=row.account_key,
            subscriptions=tuple(json.loads(row.subscriptions)),
            amount=Money.from_minor(row.amount_minor, row.currency),
            next_attempt_at=self._local(row.next_attempt_at),
            state=row.state,
            attempts=row.attempts,
            first_failed_at=self._local(row.first_failed_at),
            last_outcome=row.last_outcome,
        )

    def collections(self, *where, limit: int | None = None) -> list[Collection]:
        query = (
            self._with_document(t.collections, *where)
            .order_by(_C.next_attempt_at, _C.id)
            .limit(limit)
        )
        return [self._collection(row) for row in self.connection.execute(query)]

    def collection(self, invoice: str) -> Collection | None:
        found = self.collections(t.documents.c.number == invoice)
        return found[0] if found else None

    def save_collection(self, c: Collection) -> None:
        doc_id = self._document_id(c.invoice)
        moved = self.connection.execute(
            update(t.collections)
            .where(_C.document_id == doc_id)
            # the amount too: an adjustment credit note lowers what is collected
            .values(**_progress(c), amount_minor=c.amount.minor)
        ).rowcount
        if moved == 0:
            self.connection.execute(INSERT_COLLECTION, new_collection(self.tenant_id, doc_id, c))

    def collections_of(self, sub_id: str) -> list[Collection]:
        # subscriptions is a JSON list of keys: match the quoted key, then check exactly
        found = self.collections(_C.subscriptions.contains(json.dumps(sub_id)))
        return [c for c in found if sub_id in c.subscriptions]

    def next_collection(self, until: datetime, inclusive: bool) -> tuple[datetime, str] | None:
        due = _C.next_attempt_at <= until if inclusive else _C.next_attempt_at < until
        found = self.collections(due, limit=1)
        return (found[0].next_attempt_at, found[0].invoice) if found else None

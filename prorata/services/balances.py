"""What an invoice still asked for right after one of its payments, read from a ledger.

Invariants:
- the figures are derived from the ledger (the invoice as issued, its succeeded charges,
  the credit notes allocated to it) and never written on the invoice, which stays as it
  was issued (see :func:`prorata.core.documents.outstanding`);
- only what came before or with the payment is read (charges recorded up to it, credit
  notes issued by its instant): the ledger is append-only, so the figures are the same
  whenever they are asked for, and a receipt that prints them may be stored;
- what is left is never below zero.
"""

from __future__ import annotations

from dataclasses import replace

from prorata.core.documents import Invoice, allocated_to, outstanding
from prorata.core.money import total
from prorata.core.payments import Payment, charged
from prorata.rendering.sheet import Settlement
from prorata.services.book import Ledger


def after_payment(ledger: Ledger, invoice: Invoice, payment: Payment) -> Settlement:
    """``invoice`` as it stood right after ``payment``, a succeeded charge of it: what it
    asked for, the credit notes allocated to it by then, its earlier charges, this one, and
    what was left to pay."""
    if payment.kind != "charge" or payment.document != invoice.number or not payment.succeeded:
        raise ValueError(f"payment {payment.id} is not a succeeded charge of {invoice.number}")
    before = [p for p in ledger.payments(invoice.account) if p.id < payment.id]
    earlier = charged(before, invoice.number)
    notes = [n for n in ledger.notes_for(invoice.number) if n.issued_at <= payment.at]
    credited = allocated_to(invoice.number, notes)
    # charged while open: a void that came later does not change what was left then
    left = outstanding(replace(invoice, status="open"), [*earlier, payment.amount], credited)
    return Settlement(
        amount_due=invoice.amount_due,
        credited=total(credited, invoice.currency),
        paid_before=total(earlier, invoice.currency),
        paid=payment.amount,
        left=left,
    )

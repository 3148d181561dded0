"""Invoices, credit notes and the account-credit ledger, assembled from lines.

Invariants:
- Invoice lines are signed (a credit for unused time is negative); credit-note lines and
  totals are positive, the amount credited.
- ``subtotal`` is the exact sum of the lines; tax is computed once per document from the
  account's rate and rounded once; ``total = subtotal + tax``.
- An invoice with nothing due, or for an auto-pay account without a gateway token, is
  paid on issue; otherwise it is open until a payment or a collection settles it.
- A positive invoice first consumes account credit (``credit_applied``); a negative one adds
  its absolute total to the credit (``credit_added``) and is due 0.
- An issued document is never changed; paying one returns a new value with a new status.
- An unpaid invoice is cancelled only by a credit note for its whole total
  (``credited_to="invoice"``) that gives back the credit it consumed; it is then ``void``.
- A credit note with ``credited_to="invoice"`` is allocated in full to the invoice it
  ``refers_to``. What an invoice still asks for is derived, never written on it:
  :func:`outstanding` = ``amount_due`` (the total less the account credit it consumed)
  less its succeeded charges less the credit notes allocated to it, never below 0.
- An adjustment (:func:`issue_adjustment`, Chargebee's adjustment credit note) is allocated
  to an open invoice up to what it still asks for; any rest is a second, refundable credit
  note to the account's credit. An adjustment adds nothing to the ledger.
- The ledger is append-only; the balance is the sum of its entries and is never negative.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from prorata.core import wording
from prorata.core.model import Account
from prorata.core.money import Money, round_amount, total
from prorata.core.values import quick_init


@quick_init
@dataclass(frozen=True)
class Line:
    # recurring | proration_charge | proration_credit | proration | used_time (part of a
    # period paid in arrears) | licence | maintenance
    kind: str
    description: str
    subscription: str
    plan: str
    quantity: int
    amount: Money
    start: datetime | None = None
    end: datetime | None = None
    fraction: Fraction | None = None
    unit_price: Decimal | None = None
    explanation: str = ""

    def negated(self) -> Line:
        return replace(self, amount=-self.amount)


@quick_init
@dataclass(frozen=True)
class Invoice:
    number: str
    issued_at: datetime
    account: str
    currency: str
    lines: tuple[Line, ...]
    subtotal: Money
    tax: Money
    total: Money
    credit_applied: Money
    credit_added: Money
    amount_due: Money
    status: str  # paid | open | void
    tax_rate: Decimal = Decimal(0)

    def paid(self) -> Invoice:
        return replace(self, status="paid")

    def voided(self) -> Invoice:
        return replace(self, status="void")


@quick_init
@dataclass(frozen=True)
class CreditNote:
    number: str
    issued_at: datetime
    account: str
    currency: str
    lines: tuple[Line, ...]
    subtotal: Money
    tax: Money
    total: Money
    refers_to: str | None
    credited_to: str  # account | refund | invoice
    tax_rate: Decimal = Decimal(0)


Document = Invoice | CreditNote


@quick_init
@dataclass(frozen=True)
class LedgerEntry:
    """One movement of an account's credit: positive adds credit, negative consumes it."""

    at: datetime
    account: str
    amount: Money
    document: str
    reason: (
        str  # credit_added | credit_applied | credit_note | credit_restored | refund_unavailable
    )


def tax_of(subtotal: Money, rate: Decimal, rounding: str) -> Money:
    """Tax on a document: ``subtotal × rate / 100``, rounded once."""
    return round_amount(subtotal.amount * rate / 100, subtotal.currency, rounding)


def issue_invoice(
    *,
    number: str,
    issued_at: datetime,
    account: Account,
    currency: str,
    lines: Sequence[Line],
    credit_balance: Money,
    rounding: str,
) -> tuple[Invoice, list[LedgerEntry]]:
    """An invoice for ``lines`` and the ledger entries it causes."""
    subtotal = total((line.amount for line in lines), currency)
    tax = tax_of(subtotal, account.tax_rate, rounding)
    grand = subtotal + tax
    zero = Money.zero(currency)
    applied = added = zero
    entries: list[LedgerEntry] = []
    if grand.is_positive and credit_balance.is_positive:
        applied = min(credit_balance, grand)
        entries.append(LedgerEntry(issued_at, account.id, -applied, number, "credit_applied"))
    elif grand.is_negative:
        added = -grand
        entries.append(LedgerEntry(issued_at, account.id, added, number, "credit_added"))
    due = grand - applied if grand.is_positive else zero
    invoice = Invoice(
        number=number,
        issued_at=issued_at,
        account=account.id,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=grand,
        credit_applied=applied,
        credit_added=added,
        amount_due=due,
        # auto-pay without a gateway token: paid on issue; with one, collected afterwards
        status="paid" if not due or (account.auto_pay and not account.payment_token) else "open",
        tax_rate=account.tax_rate,
    )
    return invoice, entries


def issue_credit_note(
    *,
    number: str,
    issued_at: datetime,
    account: Account,
    currency: str,
    lines: Sequence[Line],
    refers_to: str | None,
    credited_to: str,
    rounding: str,
) -> tuple[CreditNote, list[LedgerEntry]]:
    """A credit note for positive ``lines``; credit to the account adds a ledger entry."""
    subtotal = total((line.amount for line in lines), currency)
    tax = tax_of(subtotal, account.tax_rate, rounding)
    note = CreditNote(
        number=number,
        issued_at=issued_at,
        account=account.id,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        refers_to=refers_to,
        credited_to=credited_to,
        tax_rate=account.tax_rate,
    )
    entries = []
    if credited_to == "account":
        entries.append(LedgerEntry(issued_at, account.id, note.total, number, "credit_note"))
    return note, entries


def outstanding(
    invoice: Invoice, paid: Iterable[Money] = (), allocated: Iterable[Money] = ()
) -> Money:
    """What ``invoice`` still asks for: its ``amount_due`` less what was ``paid`` on it (its
    succeeded charges) less the credit notes ``allocated`` to it; 0 once void, never
    negative. The issued invoice is not changed."""
    zero = Money.zero(invoice.currency)
    if invoice.status == "void":
        return zero
    left = total(
        (invoice.amount_due, *(-m for m in paid), *(-m for m in allocated)), invoice.currency
    )
    return left if left.is_positive else zero


def allocated_to(invoice: str, notes: Iterable[Document]) -> list[Money]:
    """The amounts of ``notes`` allocated to invoice number ``invoice``."""
    return [
        n.total
        for n in notes
        if isinstance(n, CreditNote) and n.credited_to == "invoice" and n.refers_to == invoice
    ]


def _split_lines(lines: Sequence[Line], amount: Money) -> tuple[list[Line], list[Line]]:
    """``lines`` (positive) cut at ``amount``: the first part sums to ``amount``, the second
    to the rest. A line cut in two keeps its period and description; its parts lose the
    fraction and unit price, which describe the whole line."""
    first: list[Line] = []
    rest: list[Line] = []
    left = amount
    for line in lines:
        if not left.is_positive:
            rest.append(line)
        elif line.amount <= left:
            first.append(line)
            left = left - line.amount
        else:
            part = replace(line, amount=left, fraction=None, unit_price=None)
            first.append(part)
            rest.append(replace(part, amount=line.amount - left))
            left = Money.zero(amount.currency)
    return first, rest


def issue_adjustment(
    *,
    numbers: Callable[[], str],
    issued_at: datetime,
    account: Account,
    currency: str,
    lines: Sequence[Line],
    invoice: str,
    due: Money,
    rounding: str,
) -> list[tuple[CreditNote, list[LedgerEntry]]]:
    """The credit for positive ``lines`` against open invoice ``invoice`` that still asks
    for ``due``: Chargebee's adjustment credit note (``credited_to="invoice"``, allocated to
    it, not refundable, nothing to the ledger) up to ``due``, and for what is left a
    refundable credit note to the account's credit, as for a paid invoice.

    The two notes together are exactly the note :func:`issue_credit_note` would issue: the
    adjustment's total is ``due``, its tax the share of ``due`` at the account's rate
    (rounded once), the refundable note has the rest of the subtotal and of the tax.
    ``numbers`` gives each note its number, in issue order."""

    def note(number: str, credited_to: str) -> tuple[CreditNote, list[LedgerEntry]]:
        return issue_credit_note(
            number=number,
            issued_at=issued_at,
            account=account,
            currency=currency,
            lines=lines,
            refers_to=invoice,
            credited_to=credited_to,
            rounding=rounding,
        )

    if not due.is_positive:
        return [note(numbers(), "account")]
    whole, _ = note("", "invoice")
    if whole.total <= due:
        return [(replace(whole, number=numbers()), [])]
    rate = account.tax_rate
    tax = min(round_amount(due.amount * rate / (100 + rate), currency, rounding), whole.tax)
    subtotal = due - tax
    adjusted, rest = _split_lines(lines, subtotal)
    adjustment = replace(
        whole, number=numbers(), lines=tuple(adjusted), subtotal=subtotal, tax=tax, total=due
    )
    refundable = replace(
        whole,
        number=numbers(),
        lines=tuple(rest),
        subtotal=whole.subtotal - subtotal,
        tax=whole.tax - tax,
        total=whole.total - due,
        credited_to="account",
    )
    entry = LedgerEntry(issued_at, account.id, refundable.total, refundable.number, "credit_note")
    return [(adjustment, []), (refundable, [entry])]


def void_invoice(
    invoice: Invoice, *, number: str, at: datetime, why: str, locale: str
) -> tuple[CreditNote, list[LedgerEntry]]:
    """The credit note that cancels the unpaid ``invoice`` in full, and the ledger entry
    that gives back the credit it consumed. One line for the subtotal, the invoice's tax:
    the note's total is exactly the invoice's, so nothing is rounded again."""
    if invoice.status != "open":
        raise ValueError(f"invoice {invoice.number} is {invoice.status}, not open")
    first = invoice.lines[0] if invoice.lines else None
    line = Line(
        kind="void",
        description=wording.void_description(invoice.number, why, locale),
        subscription=first.subscription if first else "",
        plan=first.plan if first else "",
        quantity=1,
        amount=invoice.subtotal,
    )
    note = CreditNote(
        number=number,
        issued_at=at,
        account=invoice.account,
        currency=invoice.currency,
        lines=(line,),
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        total=invoice.total,
        refers_to=invoice.number,
        credited_to="invoice",
        tax_rate=invoice.tax_rate,
    )
    entries = []
    if invoice.credit_applied.is_positive:
        entries.append(
            LedgerEntry(at, invoice.account, invoice.credit_applied, number, "credit_restored")
        )
    return note, entries


def balance(entries: Iterable[LedgerEntry], account: str, currency: str) -> Money:
    return total((e.amount for e in entries if e.account == account), currency)

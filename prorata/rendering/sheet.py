"""What a rendered document says, as plain values: the parties, each line as shown and as
exchanged, the VAT breakdown, the totals, the due date and the mentions that apply.

Pure functions of the document and the parties (no clock, no I/O). The PDF layout
(:mod:`prorata.rendering.pdf`) and the Factur-X XML (:mod:`prorata.rendering.facturx`)
both read a :class:`Sheet`, so the two always state the same figures.

Conventions:
- **Periods** are shown and exchanged with their *last day included*: a line whose data
  runs from 2024-07-10 to 2024-08-06 (our ``end`` is exclusive) reads "10 Jul 2024 – 5 Aug
  2024", as an EN 16931 invoice period (BT-73/74, BT-134/135) is written. A period that
  ends mid-day (proration to the second) includes the day it ends on. Dates are taken in
  the zone of the document's ``issued_at`` (the tenant's).
- **Unit price** is shown when the line is *quantity × unit price*, possibly times its
  share of the period (within half a minor unit, the line's one rounding); otherwise
  (a flat price with a quantity, a licence upgrade net of the original order, a credit
  capped at what was billed) the unit price stays blank and the explanation says how the
  amount was found.
- **VAT**: a document has one rate (the account's), so one VAT row: taxable amount = the
  subtotal, VAT = the document's tax (rounded once by the core, never recomputed here).
  Category ``S`` (standard) when the rate is positive; ``AE`` (reverse charge) when the
  rate is zero and the buyer has a VAT number in another EU member state than the seller;
  ``Z`` (zero rated) for any other zero rate: the account's tax settings give a rate, not
  an exemption reason, so nothing more specific can be claimed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction

from prorata.core.documents import CreditNote, Invoice, Line
from prorata.core.money import Money, minor_unit

EU_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"}
    | {"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
)


@dataclass(frozen=True)
class Party:
    """The seller (the tenant) or the buyer (the account), as printed on its documents."""

    name: str
    address: tuple[str, ...] = ()  # street lines, then postcode + city
    country: str = "FR"  # ISO 3166-1 alpha-2
    vat_id: str | None = None
    siren: str | None = None  # French company id (the seller's legal mention), optional
    email: str | None = None


@dataclass(frozen=True)
class Settlement:
    """An invoice as it stood right after one of its payments, as a receipt states it:
    ``left = max(0, amount_due - credited - paid_before - paid)``. The invoice's own
    figures are as issued; the rest is read from what had happened by the payment."""

    amount_due: Money  # what the invoice asked for when issued
    credited: Money  # credit notes allocated to it (adjustments) by the payment
    paid_before: Money  # its earlier succeeded charges
    paid: Money  # this payment
    left: Money  # what it still asked for after this payment


@dataclass(frozen=True)
class Row:
    """One line of a document as shown (``quantity``, ``unit_price``, ``share``) and as
    exchanged in the CII XML (``billed_quantity × net_price == |amount|`` with the sign on
    the quantity: EN 16931 forbids a negative price)."""

    number: int
    description: str
    explanation: str
    plan: str
    first_day: date | None
    last_day: date | None
    quantity: int
    unit_price: Decimal | None  # None: not a quantity × price line (see the module notes)
    share: Fraction | None  # the share of the period of a prorated line, else None
    amount: Money
    billed_quantity: Decimal
    net_price: Decimal


@dataclass(frozen=True)
class VatRow:
    category: str  # S | Z | AE (UNTDID 5305)
    rate: Decimal
    basis: Money
    tax: Money


@dataclass(frozen=True)
class Sheet:
    kind: str  # invoice | credit_note
    number: str
    currency: str
    issued_at: datetime
    issue_date: date
    rows: tuple[Row, ...]
    period: tuple[date, date] | None  # first and last day covered by the lines
    vat: tuple[VatRow, ...]
    subtotal: Money
    tax: Money
    total: Money
    prepaid: Money  # credit applied (invoices); zero on credit notes
    due_payable: Money  # total − prepaid: what the XML states as due (BT-115)
    reverse_charge: bool
    payment_terms_days: int
    # invoices
    due_date: date | None = None
    credit_added: Money | None = None
    amount_due: Money | None = None  # as the core issued it: never negative
    # settled when issued: nothing was due, or its charge was recorded with it (auto-pay
    # without a gateway token). Never the invoice's status at rendering: see sheet_of
    paid_on_issue: bool = False
    # credit notes
    refers_to: str | None = None
    credited_to: str | None = None  # account | refund | invoice

    @property
    def is_invoice(self) -> bool:
        return self.kind == "invoice"


def aware(moment: datetime) -> datetime:
    """``moment`` with a zone: a naive time is taken as UTC (never the machine's zone, so
    that a rendering does not depend on where it runs)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_reverse_charge(doc: Invoice | CreditNote, seller: Party, buyer: Party) -> bool:
    """Intra-EU reverse charge: a zero rate, a buyer with a VAT number, seller and buyer in
    two different EU member states."""
    seller_country, buyer_country = seller.country.upper(), buyer.country.upper()
    return (
        doc.tax_rate == 0
        and not doc.tax
        and bool(buyer.vat_id)
        and seller_country in EU_COUNTRIES
        and buyer_country in EU_COUNTRIES
        and buyer_country != seller_country
    )


def vat_category(doc: Invoice | CreditNote, seller: Party, buyer: Party) -> str:
    if doc.tax_rate > 0:
        return "S"
    return "AE" if is_reverse_charge(doc, seller, buyer) else "Z"


def last_day(start: datetime, end: datetime, zone: tzinfo) -> date:
    """The last day a period ``[start, end)`` includes, in ``zone``."""
    first = aware(start).astimezone(zone).date()
    local_end = aware(end).astimezone(zone)
    last = local_end.date()
    if local_end.timetz().replace(tzinfo=None) == time(0):
        last -= timedelta(days=1)
    return max(first, last)


def _share(line: Line) -> Fraction | None:
    if line.fraction is None or line.fraction == 1:
        return None
    return line.fraction


def shown_unit_price(line: Line) -> Decimal | None:
    """``line.unit_price`` when the line is quantity × unit price (× share), else None."""
    if line.unit_price is None or line.quantity <= 0:
        return None
    expected = Fraction(line.unit_price) * line.quantity * (_share(line) or 1)
    off = abs(Fraction(abs(line.amount.amount)) - expected)
    return line.unit_price if off * 2 <= Fraction(minor_unit(line.amount.currency)) else None


def exchanged_quantity_price(line: Line) -> tuple[Decimal, Decimal]:
    """Billed quantity and net price for the CII line, with quantity × price == amount.

    A full-period line priced per unit keeps its seats as the quantity and the unit price
    as the price; any other line (prorated, flat, capped) is one unit at its amount. The
    sign of a credit line goes on the quantity.
    """
    amount = line.amount.amount
    sign = -1 if amount < 0 else 1
    price = shown_unit_price(line)
    if price is not None and _share(line) is None and price * line.quantity == abs(amount):
        return Decimal(sign * line.quantity), price
    return Decimal(sign), abs(amount)


def _row(number: int, line: Line, zone: tzinfo) -> Row:
    first = last = None
    if line.start is not None:
        first = last = aware(line.start).astimezone(zone).date()
        if line.end is not None:
            last = last_day(line.start, line.end, zone)
    quantity, price = exchanged_quantity_price(line)
    return Row(
        number=number,
        description=line.description,
        explanation=line.explanation,
        plan=line.plan,
        first_day=first,
        last_day=last,
        quantity=line.quantity,
        unit_price=shown_unit_price(line),
        share=_share(line),
        amount=line.amount,
        billed_quantity=quantity,
        net_price=price,
    )


def sheet_of(
    doc: Invoice | CreditNote,
    seller: Party,
    buyer: Party,
    payment_terms_days: int = 30,
    *,
    paid_on_issue: bool = False,
) -> Sheet:
    """Everything a rendering of ``doc`` states, computed once, from what was true when it
    was issued. An invoice's ``status`` is not read: it is the invoice's state now (paid
    or voided later), not a fact of the document. ``paid_on_issue`` says whether its
    charge was recorded with it, at its issue instant (auto-pay without a gateway token),
    which the caller knows from the store; an invoice that asked for nothing (its total
    taken from account credit, or added to it) was settled on issue anyway."""
    if payment_terms_days < 0:
        raise ValueError(f"payment_terms_days must be 0 or more, not {payment_terms_days}")
    issued_at = aware(doc.issued_at)
    zone = issued_at.tzinfo
    rows = tuple(_row(i, line, zone) for i, line in enumerate(doc.lines, start=1))
    firsts = [r.first_day for r in rows if r.first_day is not None]
    lasts = [r.last_day for r in rows if r.last_day is not None]
    period = (min(firsts), max(lasts)) if firsts and lasts else None
    vat = (VatRow(vat_category(doc, seller, buyer), doc.tax_rate, doc.subtotal, doc.tax),)
    issue_date = issued_at.date()
    common = dict(
        number=doc.number,
        currency=doc.currency,
        issued_at=issued_at,
        issue_date=issue_date,
        rows=rows,
        period=period,
        vat=vat,
        subtotal=doc.subtotal,
        tax=doc.tax,
        total=doc.total,
        reverse_charge=is_reverse_charge(doc, seller, buyer),
        payment_terms_days=payment_terms_days,
    )
    if isinstance(doc, Invoice):
        return Sheet(
            kind="invoice",
            prepaid=doc.credit_applied,
            due_payable=doc.total - doc.credit_applied,
            due_date=issue_date + timedelta(days=payment_terms_days),
            credit_added=doc.credit_added,
            amount_due=doc.amount_due,
            paid_on_issue=paid_on_issue or not doc.amount_due.is_positive,
            **common,
        )
    return Sheet(
        kind="credit_note",
        prepaid=Money.zero(doc.currency),
        due_payable=doc.total,
        refers_to=doc.refers_to,
        credited_to=doc.credited_to,
        **common,
    )

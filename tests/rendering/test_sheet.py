"""What a document states, before any layout: periods, unit prices, exchanged quantities,
VAT category, reverse charge, due date."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from prorata.rendering.sheet import (
    Party,
    exchanged_quantity_price,
    is_reverse_charge,
    last_day,
    sheet_of,
    shown_unit_price,
    vat_category,
)
from tests.rendering import (
    BUYER_DE,
    BUYER_FR,
    BUYER_US,
    PARIS,
    SELLER,
    at,
    credit_note,
    eur,
    invoice,
    proration_credit,
    recurring,
)


def test_a_period_shows_its_last_day_included():
    assert last_day(at(2024, 7, 6), at(2024, 8, 6), PARIS) == date(2024, 8, 5)
    # to the second: the day it ends on is partly used, so included
    assert last_day(at(2024, 7, 10, 14, 3), at(2024, 8, 6, 9, 0), PARIS) == date(2024, 8, 6)
    # an empty span still shows one day, never an end before its start
    assert last_day(at(2024, 7, 6), at(2024, 7, 6), PARIS) == date(2024, 7, 6)
    # taken in the document's zone: 22:00 UTC on 5 August is midnight on 6 August in Paris
    end = datetime(2024, 8, 5, 22, 0, tzinfo=UTC)
    assert last_day(at(2024, 7, 6), end, PARIS) == date(2024, 8, 5)


def test_naive_times_are_taken_as_utc():
    naive = replace(invoice(), issued_at=datetime(2024, 7, 10, 23, 30))
    sheet = sheet_of(naive, SELLER, BUYER_FR)
    assert sheet.issued_at == datetime(2024, 7, 10, 23, 30, tzinfo=UTC)
    assert sheet.issue_date == date(2024, 7, 10)


def test_rows_carry_periods_and_the_document_period():
    sheet = sheet_of(invoice(), SELLER, BUYER_FR)
    full, credit = sheet.rows
    assert (full.first_day, full.last_day) == (date(2024, 7, 6), date(2024, 8, 5))
    assert (credit.first_day, credit.last_day) == (date(2024, 7, 10), date(2024, 8, 5))
    assert sheet.period == (date(2024, 7, 6), date(2024, 8, 5))
    assert credit.share == Fraction(27, 31) and full.share is None


def test_unit_price_is_shown_only_when_the_line_is_quantity_times_price():
    assert shown_unit_price(recurring()) == Decimal("290.00")
    assert shown_unit_price(proration_credit()) == Decimal("30.00")  # 4 × 30 × 27/31
    flat_price = replace(recurring(), quantity=5, amount=eur("290.00"))  # not per seat
    assert shown_unit_price(flat_price) is None
    capped = replace(proration_credit(), amount=eur("-50.00"))  # capped at what was billed
    assert shown_unit_price(capped) is None
    assert shown_unit_price(replace(recurring(), unit_price=None)) is None


def test_exchanged_quantity_times_price_is_the_line_amount():
    assert exchanged_quantity_price(recurring()) == (Decimal(5), Decimal("290.00"))
    # a credit: the sign on the quantity, the price positive (EN 16931 BR-27)
    assert exchanged_quantity_price(proration_credit()) == (Decimal(-1), Decimal("104.52"))
    zero = replace(recurring(), amount=eur("0.00"), unit_price=None)
    assert exchanged_quantity_price(zero) == (Decimal(1), Decimal("0.00"))
    for line in (recurring(), proration_credit(), zero):
        quantity, price = exchanged_quantity_price(line)
        assert quantity * price == line.amount.amount
        assert price >= 0


@pytest.mark.parametrize(
    ("rate", "buyer", "expected"),
    [
        ("0", BUYER_DE, True),  # another EU member state, with a VAT number
        ("20", BUYER_DE, False),  # VAT charged
        ("0", BUYER_FR, False),  # same country as the seller
        ("0", replace(BUYER_DE, vat_id=None), False),  # no VAT number: not a business
        ("0", BUYER_US, False),  # outside the EU
    ],
)
def test_reverse_charge_needs_zero_rate_and_an_eu_business_abroad(rate, buyer, expected):
    doc = invoice(rate=rate)
    assert is_reverse_charge(doc, SELLER, buyer) is expected
    assert sheet_of(doc, SELLER, buyer).reverse_charge is expected
    category = vat_category(doc, SELLER, buyer)
    assert category == ("AE" if expected else "S" if rate == "20" else "Z")


def test_country_codes_are_compared_in_capitals():
    assert is_reverse_charge(invoice(rate="0"), replace(SELLER, country="fr"), BUYER_DE)


def test_reverse_charge_needs_a_seller_in_the_eu():
    swiss = Party(name="Helvetia AG", address=("8001 Zürich",), country="CH", vat_id="CHE1")
    assert not is_reverse_charge(invoice(rate="0"), swiss, BUYER_DE)


def test_paid_on_issue_is_what_was_true_at_issue():
    assert not sheet_of(invoice().paid(), SELLER, BUYER_FR).paid_on_issue  # paid later
    assert not sheet_of(invoice(auto_pay=True), SELLER, BUYER_FR).paid_on_issue
    assert sheet_of(invoice(), SELLER, BUYER_FR, paid_on_issue=True).paid_on_issue
    assert sheet_of(invoice(credit="2000.00"), SELLER, BUYER_FR).paid_on_issue  # nothing due


def test_invoice_sheet_totals_and_due_date():
    sheet = sheet_of(invoice(), SELLER, BUYER_FR, payment_terms_days=45)
    assert sheet.kind == "invoice" and not sheet.paid_on_issue
    assert sheet.issue_date == date(2024, 7, 10)
    assert sheet.due_date == date(2024, 8, 24)
    assert sheet.subtotal == eur("1345.48")
    assert sheet.tax == eur("269.10")
    assert sheet.total == eur("1614.58")
    assert sheet.prepaid == eur("100.00")
    assert sheet.due_payable == sheet.amount_due == eur("1514.58")
    (vat,) = sheet.vat
    assert (vat.category, vat.rate, vat.basis, vat.tax) == ("S", 20, sheet.subtotal, sheet.tax)


def test_credit_note_sheet():
    sheet = sheet_of(credit_note(credited_to="refund"), SELLER, BUYER_FR)
    assert sheet.kind == "credit_note"
    assert sheet.due_date is None and sheet.amount_due is None
    assert sheet.total == sheet.due_payable == eur("125.42")
    assert not sheet.prepaid
    assert (sheet.refers_to, sheet.credited_to) == ("F-2024-0040", "refund")


def test_negative_payment_terms_are_refused():
    with pytest.raises(ValueError, match="payment_terms_days"):
        sheet_of(invoice(), SELLER, BUYER_FR, payment_terms_days=-1)

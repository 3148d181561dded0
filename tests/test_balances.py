"""What an invoice still asked for right after one of its payments (a receipt's figures),
read from the in-memory book of a simulated run; the API tests read it from the store."""

from __future__ import annotations

import pytest

from prorata.core.money import Money
from prorata.rendering import Settlement
from prorata.scenario.loader import parse_scenario
from prorata.scenario.simulator import simulate
from prorata.services.balances import after_payment

SCENARIO = """\
currency: USD
policy: chargebee
catalog:
  products:
    - id: app
      plans:
        - {id: silver, tier: 1, period: monthly, price: "15.00"}
        - {id: gold, tier: 2, period: monthly, price: "30.00"}
accounts:
  - {id: cus, locale: en, auto_pay: false}
  - {id: auto, locale: fr, auto_pay: true}
events:
  - at: 2024-04-01
    subscribe: {id: s1, account: cus, plan: gold, billing_day: 1}
  - at: 2024-04-01
    subscribe: {id: s2, account: auto, plan: gold, billing_day: 1}
  - at: 2024-04-05
    change: {subscription: s1, plan: silver}
  - at: 2024-04-06
    pay: {invoice: INV-0001}
run_until: 2024-04-20
"""


def usd(text: str) -> Money:
    return Money.of(text, "USD")


@pytest.fixture(scope="module")
def book():
    return simulate(parse_scenario(SCENARIO))


def charge_of(book, number: str):
    (charge,) = [p for p in book.payments() if p.kind == "charge" and p.document == number]
    return charge


def test_after_an_adjustment_the_payment_takes_what_was_left(book):
    """30.00 due, a 26.00 adjustment credit note allocated to it, then 4.00 paid: nothing
    left; the invoice's own figure is as issued."""
    invoice = book.invoice("INV-0001")
    assert (invoice.amount_due, invoice.status) == (usd("30.00"), "paid")
    assert after_payment(book, invoice, charge_of(book, "INV-0001")) == Settlement(
        amount_due=usd("30.00"),
        credited=usd("26.00"),
        paid_before=usd("0.00"),
        paid=usd("4.00"),
        left=usd("0.00"),
    )


def test_an_invoice_paid_on_issue_is_settled_by_its_one_charge(book):
    invoice = book.invoice("INV-0002")
    assert after_payment(book, invoice, charge_of(book, "INV-0002")) == Settlement(
        usd("30.00"), usd("0.00"), usd("0.00"), usd("30.00"), usd("0.00")
    )


def test_a_payment_of_another_invoice_is_refused(book):
    with pytest.raises(ValueError, match="not a succeeded charge of INV-0001"):
        after_payment(book, book.invoice("INV-0001"), charge_of(book, "INV-0002"))

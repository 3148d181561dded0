"""Chargebee's adjustment credit note: what an open invoice still asks for, and where a
credit that exceeds it goes (`unpaid_invoice_credit: adjustment`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from prorata.core.changes import evaluate
from prorata.core.documents import (
    Line,
    allocated_to,
    balance,
    issue_adjustment,
    issue_invoice,
    outstanding,
)
from prorata.core.model import Account, Change
from prorata.core.money import Money
from prorata.core.payments import Payment
from prorata.core.policy import PolicyError, build_policy
from prorata.scenario.loader import parse_scenario
from prorata.scenario.output import to_data
from prorata.scenario.simulator import Simulation

AT = datetime(2024, 4, 1, tzinfo=UTC)
LATER = datetime(2024, 4, 5, tzinfo=UTC)


def usd(text: str) -> Money:
    return Money.of(text, "USD")


def line(amount: str, kind: str = "recurring") -> Line:
    return Line(kind, "Gold", "s1", "gold", 1, usd(amount))


def invoice_of(amount: str, account: Account, credit: str = "0.00"):
    invoice, _ = issue_invoice(
        number="INV-0001",
        issued_at=AT,
        account=account,
        currency="USD",
        lines=[line(amount)],
        credit_balance=usd(credit),
        rounding="half_up",
    )
    return invoice


def numbering():
    count = iter(range(1, 100))
    return lambda: f"CN-{next(count):04d}"


def adjust(credit: str, due: Money, account: Account, *amounts: str):
    return issue_adjustment(
        numbers=numbering(),
        issued_at=LATER,
        account=account,
        currency="USD",
        lines=[line(a, "proration_credit") for a in (amounts or (credit,))],
        invoice="INV-0001",
        due=due,
        rounding="half_up",
    )


MANUAL = Account("cus", auto_pay=False)


def test_outstanding_is_amount_due_less_charges_less_allocated_notes():
    invoice = invoice_of("30.00", MANUAL)
    assert invoice.status == "open" and outstanding(invoice) == usd("30.00")
    assert outstanding(invoice, [usd("10.00")]) == usd("20.00")
    assert outstanding(invoice, [usd("10.00")], [usd("15.00")]) == usd("5.00")
    # never below nothing; a void invoice asks for nothing
    assert outstanding(invoice, [usd("10.00")], [usd("26.00")]) == usd("0.00")
    assert outstanding(invoice.voided()) == usd("0.00")


def test_account_credit_the_invoice_consumed_counts_as_paid():
    invoice = invoice_of("30.00", MANUAL, credit="12.00")
    assert invoice.amount_due == usd("18.00")
    assert outstanding(invoice, [], [usd("5.00")]) == usd("13.00")


def test_partial_payment_then_an_adjustment_larger_than_what_is_left():
    invoice = invoice_of("30.00", MANUAL)
    due = outstanding(invoice, [usd("10.00")])  # $10 paid: $20 still due
    (adjustment, no_entries), (refundable, entries) = adjust("26.00", due, MANUAL)
    # the adjustment settles what is due: allocated to the invoice, nothing to the ledger
    assert (adjustment.number, adjustment.credited_to, adjustment.refers_to) == (
        "CN-0001",
        "invoice",
        "INV-0001",
    )
    assert adjustment.total == usd("20.00") and no_entries == []
    # the rest is refundable credit, as for the paid part of a partially paid invoice
    assert (refundable.number, refundable.credited_to, refundable.total) == (
        "CN-0002",
        "account",
        usd("6.00"),
    )
    assert balance(entries, "cus", "USD") == usd("6.00")
    assert [e.reason for e in entries] == ["credit_note"]
    # each note's lines add up to it; together they are the whole credit
    for note in (adjustment, refundable):
        assert sum(x.amount.amount for x in note.lines) == note.subtotal.amount
    allocated = allocated_to("INV-0001", [adjustment, refundable])
    assert allocated == [usd("20.00")]
    assert outstanding(invoice, [usd("10.00")], allocated) == usd("0.00")


def test_an_adjustment_within_what_is_due_is_one_note_for_the_whole_credit():
    invoice = invoice_of("30.00", MANUAL)
    [(note, entries)] = adjust("26.00", outstanding(invoice), MANUAL, "20.00", "6.00")
    assert note.credited_to == "invoice" and note.total == usd("26.00") and entries == []
    assert [x.amount for x in note.lines] == [usd("20.00"), usd("6.00")]
    assert outstanding(invoice, [], allocated_to("INV-0001", [note])) == usd("4.00")


def test_nothing_left_due_makes_the_whole_credit_refundable():
    [(note, entries)] = adjust("26.00", usd("0.00"), MANUAL)
    assert note.credited_to == "account" and note.total == usd("26.00")
    assert balance(entries, "cus", "USD") == usd("26.00")


def test_a_split_with_tax_keeps_the_totals_exact():
    taxed = Account("cus", auto_pay=False, tax_rate=Decimal("20"))
    # credit: 26.00 + 5.20 tax = 31.20; 10.00 still due (tax included)
    (adjustment, _), (refundable, _) = adjust("26.00", usd("10.00"), taxed, "20.00", "6.00")
    assert (adjustment.subtotal, adjustment.tax, adjustment.total) == (
        usd("8.33"),
        usd("1.67"),
        usd("10.00"),
    )
    assert (refundable.subtotal, refundable.tax, refundable.total) == (
        usd("17.67"),
        usd("3.53"),
        usd("21.20"),
    )
    # the line cut in two keeps its period and description; the parts add up to it
    assert [x.amount for x in adjustment.lines] == [usd("8.33")]
    assert [x.amount for x in refundable.lines] == [usd("11.67"), usd("6.00")]


def test_the_policy_key_is_validated_and_only_chargebee_turns_it_on():
    assert build_policy("chargebee").unpaid_invoice_credit == "adjustment"
    for preset in ("stripe", "lago", "aircall", "killbill", "whmcs", "kajoom"):
        assert build_policy(preset).unpaid_invoice_credit == "account"
    assert build_policy({"preset": "lago", "unpaid_invoice_credit": "adjustment"})
    with pytest.raises(PolicyError) as error:
        build_policy({"preset": "chargebee", "unpaid_invoice_credit": "refund"})
    assert error.value.path == "policy.unpaid_invoice_credit"
    assert "'refund' is not one of account, adjustment" in str(error.value)


SCENARIO = """
currency: USD
policy: {policy}
catalog:
  products:
    - id: app
      plans:
        - {{id: silver, tier: 1, period: monthly, price: "15.00"}}
        - {{id: gold, tier: 2, period: monthly, price: "30.00"}}
accounts:
  - {{id: cus, locale: en, auto_pay: false}}
events:
  - at: 2024-04-01
    subscribe: {{id: s1, account: cus, plan: gold, billing_day: 1}}
run_until: 2024-04-01
"""


def simulation(policy: str = "chargebee") -> Simulation:
    sim = Simulation(parse_scenario(SCENARIO.format(policy=policy)))
    sim.run()
    return sim


def test_engine_partly_paid_invoice_then_a_downgrade():
    sim = simulation()
    first = sim.book.invoice("INV-0001")
    sim.book.record_payment(
        Payment(0, "charge", "cus", usd("10.00"), first.issued_at, "succeeded", None, "INV-0001")
    )
    at = first.issued_at.replace(day=5)
    outcome = sim.billing.change(Change("s1", plan="silver"), at)
    cn1, cn2, inv2 = outcome.documents
    assert (cn1.credited_to, cn1.total) == ("invoice", usd("20.00"))
    assert (cn2.credited_to, cn2.total) == ("account", usd("6.00"))
    # the $6 of refundable credit is consumed by the change's invoice
    assert (inv2.total, inv2.credit_applied, inv2.amount_due) == (
        usd("13.00"),
        usd("6.00"),
        usd("7.00"),
    )
    # INV-0001 asks for nothing more: settled, with no new charge; as issued, unchanged
    settled = sim.book.invoice("INV-0001")
    assert settled.status == "paid" and settled.amount_due == usd("30.00")
    assert [(p.document, str(p.amount)) for p in sim.book.payments()] == [("INV-0001", "10.00")]
    assert sim.book.credit("cus", "USD") == usd("0.00")


def test_engine_preview_shows_the_adjustment_and_the_pay_event_charges_what_is_left():
    sim = simulation()
    first = sim.book.invoice("INV-0001")
    at = first.issued_at.replace(day=5)
    ctx = sim.billing.context_for(sim.book.subscriptions["s1"])
    drafts = sim.billing.drafts(
        evaluate(ctx, sim.book.subscriptions["s1"], Change("s1", plan="silver"), at),
        at,
        usd("0.00"),
    )
    assert [(getattr(d, "credited_to", None), str(d.total)) for d in drafts] == [
        ("invoice", "26.00"),
        (None, "13.00"),
    ]
    sim.billing.change(Change("s1", plan="silver"), at)
    assert sim.billing.outstanding(sim.book.invoice("INV-0001")) == usd("4.00")
    sim.billing.pay("INV-0001", at)
    assert [str(p.amount) for p in sim.book.payments()] == ["4.00"]
    assert sim.billing.outstanding(sim.book.invoice("INV-0001")) == usd("0.00")


def test_engine_other_presets_credit_the_account_even_while_the_invoice_is_open():
    sim = simulation("{preset: chargebee, unpaid_invoice_credit: account}")
    at = sim.book.invoice("INV-0001").issued_at.replace(day=5)
    sim.billing.change(Change("s1", plan="silver"), at)
    out = to_data(sim.scenario, sim.book)
    note = out["documents"][1]
    assert (note["type"], note["credited_to"]) == ("credit_note", "account")
    assert sim.billing.outstanding(sim.book.invoice("INV-0001")) == usd("30.00")

"""Plans paid in arrears (``pay_in_advance: false``) beside plans paid in advance: what each
step bills, and when. Day prices are round (EUR 31.00 over January's 31 days)."""

from __future__ import annotations

import textwrap

from prorata.core.changes import Quote, evaluate
from prorata.core.model import Change
from prorata.scenario.loader import parse_scenario
from prorata.scenario.output import to_data
from prorata.scenario.simulator import Simulation, simulate

CATALOG = """
catalog:
  products:
    - id: app
      plans:
        - {id: use-m, period: monthly, price: "31.00", per_unit: true, pay_in_advance: false}
        - {id: more-m, period: monthly, price: "62.00", per_unit: true, pay_in_advance: false}
        - {id: paid-m, period: monthly, price: "62.00", per_unit: true}
    - id: support
      plans:
        - {id: support-m, period: monthly, price: "31.00"}
"""


def scenario(events: str, run_until: str = "2024-03-01", policy: str = "lago"):
    lines = [f"  {line.strip()}" for line in events.strip().splitlines() if line.strip()]
    text = "\n".join(
        [
            "currency: EUR",
            f"policy: {policy}",
            textwrap.dedent(CATALOG),
            "accounts:",
            "  - {id: acme, locale: en}",
            "events:",
            *lines,
            f"run_until: {run_until}",
        ]
    )
    return parse_scenario(text)


def documents(events: str, **kw) -> list[tuple]:
    sc = scenario(events, **kw)
    out = to_data(sc, simulate(sc))
    return [
        (
            d["type"],
            d["date"],
            [(line["kind"], line["start"], line["amount"]) for line in d["lines"]],
        )
        for d in out["documents"]
    ], out


def test_an_add_on_paid_in_advance_is_billed_at_the_start_the_plan_in_arrears_at_the_end():
    docs, _ = documents(
        "- {at: 2024-01-10, subscribe: {id: s1, account: acme, plan: use-m,"
        " add_products: [support-m]}}",
        run_until="2024-02-01",
    )
    assert docs == [
        ("invoice", "2024-01-10", [("recurring", "2024-01-10", "22.00")]),
        (
            "invoice",
            "2024-02-01",
            [("used_time", "2024-01-10", "22.00"), ("recurring", "2024-02-01", "31.00")],
        ),
    ]


def test_an_anniversary_period_in_arrears_is_billed_whole_when_it_ends():
    docs, _ = documents(
        "- {at: 2024-01-10, subscribe: {id: s1, account: acme, plan: use-m, billing_day: 10}}",
        run_until="2024-02-10",
    )
    assert docs == [("invoice", "2024-02-10", [("recurring", "2024-01-10", "31.00")])]


def test_more_seats_bill_the_old_quantity_used_so_far_and_accrue_the_new_one():
    docs, _ = documents(
        """
        - {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m}}
        - {at: 2024-01-11, change: {subscription: s1, quantity: 2}}
        """,
        run_until="2024-02-01",
    )
    assert docs == [
        ("invoice", "2024-01-11", [("used_time", "2024-01-01", "10.00")]),
        ("invoice", "2024-02-01", [("used_time", "2024-01-11", "42.00")]),
    ]


def test_an_upgrade_to_a_plan_paid_in_advance_bills_the_use_and_the_rest_of_the_period():
    docs, _ = documents(
        """
        - {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m}}
        - {at: 2024-01-15, change: {subscription: s1, plan: paid-m}}
        """,
        run_until="2024-02-01",
    )
    assert docs == [
        (
            "invoice",
            "2024-01-15",
            [("used_time", "2024-01-01", "14.00"), ("proration_charge", "2024-01-15", "34.00")],
        ),
        ("invoice", "2024-02-01", [("recurring", "2024-02-01", "62.00")]),
    ]


def test_a_change_of_the_add_on_alone_leaves_the_plan_in_arrears_accruing():
    docs, _ = documents(
        """
        - {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m}}
        - {at: 2024-01-15, change: {subscription: s1, add_products: [support-m]}}
        """,
        run_until="2024-02-01",
    )
    assert docs == [
        ("invoice", "2024-01-15", [("proration_charge", "2024-01-15", "17.00")]),
        (
            "invoice",
            "2024-02-01",
            [("recurring", "2024-01-01", "31.00"), ("recurring", "2024-02-01", "31.00")],
        ),
    ]


def test_a_cancellation_at_period_end_bills_the_last_period_when_it_ends():
    docs, out = documents(
        """
        - {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m}}
        - {at: 2024-01-20, cancel: {subscription: s1, timing: end_of_term}}
        """
    )
    assert docs == [("invoice", "2024-02-01", [("recurring", "2024-01-01", "31.00")])]
    assert out["subscriptions"]["s1"]["status"] == "cancelled"


def test_a_term_that_does_not_renew_bills_its_last_period_when_it_expires():
    docs, out = documents(
        "- {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m,"
        " term: {period: monthly, auto_renew: false}}}"
    )
    assert docs == [("invoice", "2024-02-01", [("recurring", "2024-01-01", "31.00")])]
    assert out["subscriptions"]["s1"]["status"] == "expired"


def test_stripe_leaves_the_old_terms_use_for_the_renewal_invoice():
    docs, _ = documents(
        """
        - {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m}}
        - {at: 2024-01-11, change: {subscription: s1, plan: more-m}}
        """,
        run_until="2024-02-01",
        policy="{preset: stripe, proration: {unit: day}}",
    )
    assert docs == [
        (
            "invoice",
            "2024-02-01",
            [("used_time", "2024-01-01", "10.00"), ("used_time", "2024-01-11", "42.00")],
        ),
    ]


def test_a_preview_of_an_upgrade_in_arrears_is_what_it_bills():
    sc = scenario(
        "- {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: use-m}}",
        run_until="2024-01-01",
    )
    sim = Simulation(sc)
    sim.run()
    sub, ctx = sim.book.subscriptions["s1"], sim.billing.ctx
    at = sc.events[0].at.replace(day=15)
    quote = evaluate(ctx, sub, Change("s1", plan="more-m"), at)
    assert isinstance(quote, Quote) and quote == evaluate(ctx, sub, Change("s1", plan="more-m"), at)
    assert [str(line.amount) for line in quote.lines] == ["14.00"]
    assert quote.routing.credit_note == ()
    assert quote.subscription.accrued_from == at
    sim.billing.apply(quote, at)
    assert [str(line.amount) for line in sim.book.documents[-1].lines] == ["14.00"]

"""The change engine through small scenarios: refusals, timing, routing, explanations."""

from __future__ import annotations

import textwrap

from prorata.core.changes import Context, Quote, evaluate
from prorata.core.model import Change
from prorata.scenario.loader import parse_scenario
from prorata.scenario.output import to_data
from prorata.scenario.simulator import Simulation, simulate

CATALOG = """
catalog:
  products:
    - id: app
      plans:
        - {id: basic-m, tier: 1, period: monthly, price: "30.00", per_unit: true}
        - {id: pro-m, tier: 2, period: monthly, price: "60.00", per_unit: true}
        - {id: basic-y, tier: 1, period: annual, price: "300.00", per_unit: true}
        - {id: flat, tier: 3, period: monthly, price: "100.00"}
"""


def scenario(policy: str, events: str, run_until: str = "2024-03-01", locale: str = "en"):
    """A scenario over ``CATALOG`` with one-line ``events`` (each ``- {at: ..., action: ...}``)."""
    lines = [f"  {line.strip()}" for line in events.strip().splitlines() if line.strip()]
    text = "\n".join(
        [
            "currency: EUR",
            f"policy: {policy}",
            textwrap.dedent(CATALOG),
            "accounts:",
            f"  - {{id: acme, locale: {locale}}}",
            "  - {id: other, locale: en}",
            "events:",
            *lines,
            f"run_until: {run_until}",
        ]
    )
    return parse_scenario(text)


def run(policy: str, events: str, **kw) -> dict:
    sc = scenario(policy, events, **kw)
    return to_data(sc, simulate(sc))


SUBSCRIBE = "- {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: basic-m, quantity: 2}}\n"


def codes(out: dict) -> list[str]:
    return [r["code"] for r in out["rejected"]]


def test_preview_and_apply_give_the_same_numbers():
    sc = scenario("chetspms", SUBSCRIBE, run_until="2024-01-01")
    sim = Simulation(sc)
    sim.run()
    sub = sim.book.subscriptions["s1"]
    change = Change("s1", plan="pro-m")
    at = sc.events[0].at.replace(day=16)
    ctx = sim.billing.ctx
    first, second = evaluate(ctx, sub, change, at), evaluate(ctx, sub, change, at)
    assert isinstance(first, Quote) and first == second
    sim.billing.apply(first, at)
    invoice = sim.book.documents[-1]
    assert [line.amount for line in invoice.lines] == [line.amount for line in first.lines]
    assert str(invoice.total) == "30.97"  # -60 x 16/31 + 120 x 16/31, each rounded


def test_refusals_have_stable_codes_and_localised_messages():
    out = run(
        "gotoassist",
        SUBSCRIBE
        + """
        - {at: 2024-01-05, change: {subscription: s1, quantity: 3, by: {account: other}}}
        - {at: 2024-01-06, change: {subscription: s1, plan: basic-m}}
        - {at: 2024-01-07, change: {subscription: s1, period: weekly}}
        - {at: 2024-01-08, change: {subscription: s1, plan: pro-m}}
        - {at: 2024-01-09, change: {subscription: s1, plan: basic-m}}
        - {at: 2024-01-10, change: {subscription: s1, quantity: 3}}
        """,
        locale="fr",
    )
    assert codes(out) == ["not_authorized", "no_change", "unknown_plan", "already_pending"]
    assert out["rejected"][0]["message"].startswith("Un utilisateur d'un autre compte")
    assert out["requests"] == [
        {
            "id": 1,
            "subscription": "s1",
            "state": "pending",
            "reason": "approval_required",
            "created": "2024-01-09",
            "decided": None,
        }
    ]


def test_quantity_of_a_flat_plan_and_forbidden_changes_are_refused():
    out = run(
        {"preset": "chetspms", "downgrade": {"timing": "forbidden"}}.__repr__().replace("'", '"'),
        """
        - {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: flat}}
        - {at: 2024-01-05, change: {subscription: s1, quantity: 4}}
        - {at: 2024-01-06, change: {subscription: s1, plan: pro-m}}
        """,
    )
    assert codes(out) == ["quantity_invalid", "change_forbidden"]


def test_end_of_term_change_is_scheduled_then_undone_or_applied():
    out = run(
        "lago",
        SUBSCRIBE
        + """
        - {at: 2024-01-10, change: {subscription: s1, quantity: 1}}
        """,
        run_until="2024-01-20",
    )
    sub = out["subscriptions"]["s1"]
    assert sub["quantity"] == 2
    assert sub["scheduled"] == [
        {
            "at": "2024-02-01",
            "kind": "quantity_decrease",
            "plan": None,
            "quantity": 1,
            "period": None,
        }
    ]
    applied = run("lago", SUBSCRIBE + "- {at: 2024-01-10, change: {subscription: s1, quantity: 1}}")
    assert [d["total"] for d in applied["documents"]] == ["60.00", "30.00", "30.00"]
    undone = run(
        "lago",
        SUBSCRIBE
        + """
        - {at: 2024-01-10, change: {subscription: s1, quantity: 1}}
        - {at: 2024-01-11, undo: {subscription: s1}}
        """,
    )
    assert [d["total"] for d in undone["documents"]] == ["60.00", "60.00", "60.00"]


def test_stripe_proration_waits_for_the_next_invoice():
    out = run(
        "stripe",
        SUBSCRIBE + "- {at: 2024-01-16, change: {subscription: s1, plan: pro-m}}",
        run_until="2024-02-01",
    )
    renewal = out["documents"][-1]
    assert renewal["date"] == "2024-02-01"
    assert [line["kind"] for line in renewal["lines"]] == [
        "proration_credit",
        "proration_charge",
        "recurring",
    ]
    assert renewal["total"] == str(sum(float(line["amount"]) for line in renewal["lines"]))[:6]
    assert renewal["lines"][0]["start"].startswith("2024-01-16T00:00:00")


def test_cancel_at_period_end_keeps_access_then_ends():
    out = run("chetspms", SUBSCRIBE + "- {at: 2024-01-20, cancel: {subscription: s1}}")
    sub = out["subscriptions"]["s1"]
    assert sub["status"] == "cancelled" and sub["cancel_at"] == "2024-02-01"
    assert len(out["documents"]) == 1


def test_lago_termination_credits_the_days_after_the_termination_day():
    out = run("lago", SUBSCRIBE + "- {at: 2024-01-16, cancel: {subscription: s1}}")
    note = out["documents"][-1]
    assert note["type"] == "credit_note" and note["refers_to"] == "INV-0001"
    assert note["lines"][0]["start"] == "2024-01-17"
    assert note["total"] == "29.03"  # 60 x 15/31
    assert out["subscriptions"]["s1"]["status"] == "cancelled"


def test_rejected_request_changes_nothing():
    out = run(
        "gotoassist",
        SUBSCRIBE
        + """
        - {at: 2024-01-05, change: {subscription: s1, plan: pro-m}}
        - {at: 2024-01-10, change: {subscription: s1, plan: basic-m}}
        - {at: 2024-01-11, reject: {request: 1}}
        - {at: 2024-01-12, approve: {request: 1}}
        """,
    )
    assert [r["state"] for r in out["requests"]] == ["rejected"]
    assert codes(out) == ["unknown_request"]
    assert out["subscriptions"]["s1"]["plan"] == "pro-m"


def test_every_prorated_line_is_explained_in_the_account_language():
    contract = SUBSCRIBE.replace("quantity: 2}", "quantity: 2, term: {period: annual}}")
    out = run(
        "aircall",
        contract + "- {at: 2024-01-10, change: {subscription: s1, quantity: 1}}",
        locale="fr",
    )
    note = out["documents"][1]
    line = note["lines"][0]
    assert line["fraction"] == "0.7097"  # 10 Jan to 1 Feb: 22 of 31 days
    assert line["amount"] == "21.29"
    assert line["description"] == "Retrait de basic-m × 1 pour le reste de la période"
    assert "30,00\u00a0€ × 1 × 22/31 jours" in line["explanation"]


def test_context_is_pure_value():
    sc = scenario("chetspms", SUBSCRIBE)
    ctx = Context(sc.catalog, sc.policy, sc.accounts)
    assert ctx == Context(sc.catalog, sc.policy, sc.accounts)


def test_anchor_reset_restarts_the_period_on_a_change_of_the_same_period():
    # any preset: `anchor: reset` on a plan change starts a new month on the change day
    out = run(
        "chetspms",
        SUBSCRIBE + "- {at: 2024-01-16, change: {subscription: s1, plan: pro-m, anchor: reset}}",
        run_until="2024-02-16",
    )
    change = out["documents"][1]
    assert change["date"] == "2024-01-16"
    assert [line["amount"] for line in change["lines"]] == ["-30.97", "120.00"]  # 60 x 16/31
    assert change["lines"][1]["kind"] == "recurring"
    assert change["lines"][1]["end"] == "2024-02-16"
    assert [(d["date"], d["total"]) for d in out["documents"][2:]] == [("2024-02-16", "120.00")]
    assert out["subscriptions"]["s1"]["period_end"] == "2024-03-16"


def test_anchor_reset_is_invoiced_now_even_when_prorations_wait():
    # Stripe's upgrade waits for the next invoice; a new period from today does not
    events = "- {at: 2024-01-16, change: {subscription: s1, plan: pro-m, anchor: reset}}"
    out = run("stripe", SUBSCRIBE + events, run_until="2024-01-16")
    assert out["documents"][-1]["date"] == "2024-01-16"
    unprorated = events.replace("reset}", "reset, proration: {unit: none}}")
    out = run("stripe", SUBSCRIBE + unprorated, run_until="2024-01-16")
    assert [line["amount"] for line in out["documents"][-1]["lines"]] == ["120.00"]


def test_anchor_reset_is_refused_once_a_cancellation_is_scheduled():
    out = run(
        "chetspms",
        SUBSCRIBE
        + """
        - {at: 2024-01-10, cancel: {subscription: s1}}
        - {at: 2024-01-16, change: {subscription: s1, plan: pro-m, anchor: reset}}
        """,
    )
    assert codes(out) == ["cancellation_scheduled"]


def test_a_contract_changes_its_billing_cycle_at_the_end_of_its_term_not_within_it():
    """A quarterly term billed monthly: annual billing now, or the anchor reset that
    restarts a month on the change day, would start a period ending after the term:
    refused, nothing billed or kept. A plan change keeps the period and applies; annual
    billing at the end of the term applies there and makes the next term a year."""
    quarterly = (
        "- {at: 2024-01-01, subscribe: {id: s1, account: acme, plan: basic-m, quantity: 2,"
        " term: {period: quarterly}}}\n"
    )
    out = run(
        "chetspms",
        quarterly
        + """
        - {at: 2024-02-10, change: {subscription: s1, period: annual}}
        - {at: 2024-03-10, change: {subscription: s1, plan: pro-m, anchor: reset}}
        - {at: 2024-03-11, change: {subscription: s1, plan: pro-m}}
        """,
        run_until="2024-03-20",
    )
    assert codes(out) == ["period_past_term", "period_past_term"]
    first, second = out["rejected"]
    past = "ends on Feb 10, 2025, after the contract's term ends on Apr 1, 2024"
    assert past in first["message"]
    assert "ends on Apr 10, 2024" in second["message"]
    assert out["subscriptions"]["s1"]["plan"] == "pro-m"
    assert out["subscriptions"]["s1"]["period_end"] == "2024-04-01"
    assert [d["total"] for d in out["documents"] if d["type"] == "invoice"][:3] == [
        "60.00",
        "60.00",
        "60.00",
    ]

    later = run(
        "aircall",
        quarterly
        + """
        - {at: 2024-02-11, change: {subscription: s1, period: annual, timing: end_of_term}}
        - {at: 2025-03-10, change: {subscription: s1, quantity: 1}}
        """,
        run_until="2025-04-02",
    )
    # the year from the term's end is the next term: 22 days before its renewal on
    # 2025-04-01 a seat reduction is past the 30 days' notice
    assert codes(later) == ["notice_period_passed"]
    assert later["subscriptions"]["s1"]["plan"] == "basic-y"
    assert later["subscriptions"]["s1"]["period_end"] == "2026-04-01"
    invoices = [(d["date"], d["total"]) for d in later["documents"] if d["type"] == "invoice"]
    assert invoices[-2:] == [("2024-04-01", "600.00"), ("2025-04-01", "600.00")]


CANCEL_AT_ONCE = """
- {at: 2024-01-16, change: {subscription: s1, quantity: 3}}
- {at: 2024-01-21, cancel: {subscription: s1}}
"""


def test_immediate_cancel_without_a_final_invoice_drops_pending_lines_not_the_credit():
    # pending lines for the next renewal only: a cancelled subscription has none
    cancel = "{timing: immediate, invoice: next_invoice, credit: account_credit}"
    policy = "{preset: stripe, pending_lines: renewal, cancel: " + cancel + "}"
    out = run(policy, SUBSCRIBE + CANCEL_AT_ONCE)
    final = out["documents"][-1]
    assert final["date"] == "2024-01-21"
    assert [line["kind"] for line in final["lines"]] == ["proration_credit"]
    assert final["total"].startswith("-")
    assert out["accounts"]["acme"]["credit"] == final["total"][1:]
    assert "pending" not in out["accounts"]["acme"]


def test_stripe_cancel_prorate_without_invoice_now_leaves_everything_pending_on_the_account():
    # prorate=true, invoice_now=false: no invoice now; the upgrade's two prorations (16 of
    # 31 days: -2 x 30.00, +3 x 30.00) and the credit (11 of 31 days of 3 x 30.00) wait for
    # the account's next invoice, here its new subscription's first
    cancel = "{timing: immediate, invoice: next_invoice, credit: account_credit}"
    policy = "{preset: stripe, cancel: " + cancel + "}"
    out = run(policy, SUBSCRIBE + CANCEL_AT_ONCE, run_until="2024-01-31")
    assert [d["date"] for d in out["documents"]] == ["2024-01-01"]
    waiting = out["accounts"]["acme"]["pending"]
    assert [(w["kind"], w["subscription"], w["amount"]) for w in waiting] == [
        ("proration_credit", "s1", "-30.97"),
        ("proration_charge", "s1", "46.45"),
        ("proration_credit", "s1", "-31.94"),
    ]
    assert out["accounts"]["acme"]["credit"] == "0.00"
    assert "pending" not in out["accounts"]["other"]
    later = "- {at: 2024-02-01, subscribe: {id: s2, account: acme, plan: flat}}"
    out = run(policy, SUBSCRIBE + CANCEL_AT_ONCE + later, run_until="2024-02-01")
    first = out["documents"][-1]
    assert [line["amount"] for line in first["lines"]] == ["-30.97", "46.45", "-31.94", "100.00"]
    assert first["total"] == "83.54"
    assert "pending" not in out["accounts"]["acme"]


def test_a_preview_shows_the_lines_waiting_on_the_account_as_the_change_invoices_them():
    cancel = "{timing: immediate, invoice: next_invoice, credit: account_credit}"
    second = "- {at: 2024-01-02, subscribe: {id: s2, account: acme, plan: basic-m}}\n"
    sc = scenario(
        "{preset: stripe, cancel: " + cancel + "}",
        SUBSCRIBE + second + CANCEL_AT_ONCE,
        run_until="2024-01-21",
    )
    sim = Simulation(sc)
    sim.run()
    waiting = sim.book.pending_of("acme")
    assert [str(line.amount) for line in waiting] == ["-30.97", "46.45", "-31.94"]
    at = sc.events[-1].at.replace(day=25)
    quote = evaluate(
        sim.billing.ctx, sim.book.subscriptions["s2"], Change("s2", quantity=2, anchor="reset"), at
    )
    assert isinstance(quote, Quote)
    (draft,) = sim.billing.drafts(quote, at, sim.book.credit("acme", "EUR"))
    sim.billing.apply(quote, at)
    invoice = sim.book.documents[-1]
    assert draft.lines == invoice.lines and draft.total == invoice.total
    assert invoice.lines[:3] == waiting
    assert sim.book.pending_of("acme") == ()


def test_stripe_cancel_pending_lines_are_not_swept_by_another_account():
    cancel = "{timing: immediate, invoice: next_invoice, credit: account_credit}"
    policy = "{preset: stripe, cancel: " + cancel + "}"
    other = "- {at: 2024-02-01, subscribe: {id: s2, account: other, plan: flat}}"
    out = run(policy, SUBSCRIBE + CANCEL_AT_ONCE + other, run_until="2024-02-01")
    assert [line["amount"] for line in out["documents"][-1]["lines"]] == ["100.00"]
    assert len(out["accounts"]["acme"]["pending"]) == 3


def test_one_instant_is_written_in_each_zone_it_comes_in():
    """The wording cache once keyed on the aware datetime: midnight in Paris and 23:00 UTC
    the day before are equal datetimes, so whichever came first gave its date to both."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from prorata.core import wording

    paris = datetime(2024, 3, 1, tzinfo=ZoneInfo("Europe/Paris"))
    utc = paris.astimezone(UTC)
    assert paris == utc and hash(paris) == hash(utc)
    for first, second in ((utc, paris), (paris, utc)):
        wording._date.cache_clear()
        wording._when_seconds.cache_clear()
        assert wording.when(first, "en") != wording.when(second, "en")
        assert wording.when(first, "en", seconds=True) != wording.when(second, "en", True)
    assert wording.when(paris, "en") == "Mar 1, 2024"
    assert wording.when(utc, "en") == "Feb 29, 2024"

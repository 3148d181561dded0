"""The policy presets: each is a set of overrides on ``policy.DEFAULTS``.

Each preset reproduces a real system's documented behaviour; the comment above it says
which behaviour and the rule it follows. Behaviour that is not a policy key (the licence
windows of GroupDocs, the billing-cycle-day alignment of Kill Bill) lives in the engine and
is switched on by these keys.
"""

from __future__ import annotations

from typing import Any

_CHANGE_KINDS = ("upgrade", "downgrade", "quantity_increase", "quantity_decrease", "period_change")
_CANCEL_AT_PERIOD_END = {"timing": "end_of_term", "invoice": "now", "credit": "none"}


def _changes(credit: str, *, invoice: str = "now", anchor: str = "reset", **kinds) -> dict:
    """Every kind of change immediate, invoiced ``invoice``, unused time to ``credit``;
    ``kinds`` overrides single kinds (``downgrade={"timing": "approval"}``)."""
    rules = {
        kind: {"timing": "immediate", "invoice": invoice, "credit": credit}
        for kind in _CHANGE_KINDS
    }
    rules["period_change"]["anchor"] = anchor
    for kind, override in kinds.items():
        rules[kind] = {**rules[kind], **override}
    return rules


PRESETS: dict[str, dict[str, Any]] = {
    # Kajoom (seed 000, a WHMCS client area): upgrades and downgrades at any time, effective at
    # once. An upgrade pays only the difference for the rest of the current period (actual
    # days, change day on the new plan); the due date does not move. A downgrade refunds and
    # credits nothing: the lower price applies from the next due date. Plans with
    # `fulfillment: manual` are billed when ordered and wait for a person. Cancellation is a
    # request effective at the end of the period. A change of billing cycle credits the
    # unused time of the old cycle against the new one.
    "kajoom": {
        "proration": {"lines": "difference"},
        **_changes("none", period_change={"credit": "account_credit"}),
        "cancel": _CANCEL_AT_PERIOD_END,
    },
    # WHMCS: as Kajoom, with "Credit on Downgrade" on: a downgrade credits the prorated
    # difference (old and new price per day over the days to the next due date) to the
    # client's credit balance. An upgrade or downgrade order is carried out once its invoice
    # is paid (an unpaid upgrade invoice leaves the service as it was).
    "whmcs": {
        "proration": {"lines": "difference"},
        **_changes("account_credit"),
        "cancel": _CANCEL_AT_PERIOD_END,
        "payment": {"change": "on_payment"},
    },
    # GroupDocs (seed 001): perpetual licences with a year of maintenance. Upgrades only (to a
    # dearer plan of the same product, to a suite of the same platform that includes it at
    # the same or a higher tier, or by adding products) while maintenance is active; the
    # original order is credited in full; 90-day windows after purchase/renewal (expiry
    # resets) and before expiry (maintenance renewed too, expiry resets). Only the ordering
    # account may upgrade (its owner or billing contact), or the seller's sales team and
    # commercial support for it ("contactez notre équipe commerciale ; nous essaierons de
    # résoudre le problème manuellement"). Anything that is not an upgrade is refused.
    "groupdocs": {
        "proration": {"lines": "difference", "unit": "none"},
        **_changes(
            "none",
            downgrade={"timing": "forbidden"},
            quantity_decrease={"timing": "forbidden"},
            period_change={"timing": "forbidden"},
        ),
        "cancel": _CANCEL_AT_PERIOD_END,
        "licence": {"upgrade_credit": "full_original", "early_days": 90, "late_days": 90},
        "authorized_roles": ["owner", "billing_contact", "support", "account_manager"],
    },
    # Aircall (seed 002): contracts with a term and monthly billing, auto-renewing.
    # Increases (users, add-ons, a higher plan) at any time, invoiced now for the difference,
    # actual days, change day remaining. Decreases, amendments and cancellations need 30
    # days' notice before the term's renewal date (else refused, the contract renews as is);
    # a decrease mid-period gets a credit note for the unused share of the removed users.
    "aircall": {
        "proration": {"lines": "difference"},
        **_changes("credit_note", anchor="keep"),
        "cancel": _CANCEL_AT_PERIOD_END,
        "notice": {
            "days": 30,
            "applies_to": ["downgrade", "quantity_decrease", "period_change", "cancel"],
        },
    },
    # ChetsPMS (seed 003): change plan at any time, monthly or annual, effective at once and
    # invoiced at once, by day; unused time becomes account credit; a change of billing cycle
    # starts a new period today. Unsubscribing keeps access to the end of the paid period.
    "chetspms": {
        **_changes("account_credit"),
        "cancel": _CANCEL_AT_PERIOD_END,
    },
    # GoToAssist (seed 004): the billing contact changes tier, seats or billing frequency at
    # any time: effective at once, prorated by day against the account balance, invoiced now.
    # Seats can be reduced online (credit to the account); a lower tier goes through customer
    # support (approval); a lower tier made by customer support or a LogMeIn advisor itself
    # ("veuillez contacter l'assistance clientèle": they are the ones who do it) needs no
    # further approval and takes effect at once. A new billing frequency bills a period from
    # today.
    "gotoassist": {
        **_changes("account_credit", downgrade={"timing": "approval"}),
        "cancel": _CANCEL_AT_PERIOD_END,
        "authorized_roles": ["owner", "billing_contact", "support", "account_manager"],
        "approvers": ["support", "account_manager"],
    },
    # Stripe Billing (classic billing mode, proration_behavior=create_prorations): prorated to
    # the second over the period's real length; the unused time of the old price is credited
    # at today's price and the new price charged for the rest of the period, as two separate
    # lines, each rounded to the minor unit; the proration items wait for the next invoice
    # (`invoice: now` is `always_invoice`). A change of interval resets the billing cycle
    # anchor to now, credits unused time and invoices the new full period at once. A negative
    # invoice goes to the customer's credit balance. Cancelling at period end prorates nothing.
    "stripe": {
        "proration": {"unit": "second", "credit_from": "price", "lines": "separate"},
        **_changes("account_credit", invoice="next_invoice", period_change={"invoice": "now"}),
        "cancel": _CANCEL_AT_PERIOD_END,
    },
    # Kill Bill: in-advance billing by day, end date exclusive; the time ratio is rounded to
    # 9 digits half-up, then each amount half-up. An immediate change repairs the old item (a
    # negative line for the unused share of what was billed for it, on its own span, capped at
    # what remains of it) and bills the new plan prorated up to the next billing-cycle day, on
    # one invoice; a negative total becomes account credit (CBA). The billing-cycle day is kept
    # (`anchor: keep`): a longer plan's first period ends on the first billing-cycle date on or
    # after the change. `proration.basis: 30/360` is its fixed-30-days mode. An immediate
    # cancellation is a repair alone.
    "killbill": {
        "rounding": "half_up",
        "proration": {
            "unit": "day",
            "basis": "actual",
            "change_day": "remaining",
            "credit_from": "billed",
            "ratio_digits": 9,
            "lines": "separate",
        },
        **_changes("account_credit", anchor="keep"),
        "cancel": {"timing": "end_of_term", "invoice": "now", "credit": "account_credit"},
    },
    # Lago: plans are ordered by price per year (equal counts as an upgrade). An upgrade is
    # immediate: a credit note for the unused days of the old plan (the change day counted as
    # unused) and an invoice for the new plan by day from the change day to the end of the
    # period. A downgrade waits for the end of the period and credits nothing. Day price =
    # amount / actual days of the period. An immediate termination credits the days after
    # the termination day.
    "lago": {
        "classify": "price",
        "proration": {"unit": "day", "basis": "actual", "change_day": "remaining"},
        **_changes(
            "credit_note",
            downgrade={"timing": "end_of_term", "credit": "none"},
            quantity_decrease={"timing": "end_of_term", "credit": "none"},
        ),
        "cancel": {
            "timing": "immediate",
            "invoice": "now",
            "credit": "credit_note",
            "change_day": "used",
        },
    },
    # Chargebee (day-based billing mode): immediate changes prorated by day over the current
    # term, the change day counted as unused; the credit for unused time is a credit note
    # (refundable credit once the term's invoice is paid); the new terms' prorated charge is
    # invoiced at once and consumes that credit; what is left is applied to later invoices.
    # A new billing period resets the term.
    "chargebee": {
        "proration": {"unit": "day", "basis": "actual", "change_day": "remaining"},
        **_changes("credit_note"),
        "cancel": {"timing": "end_of_term", "invoice": "now", "credit": "credit_note"},
    },
}

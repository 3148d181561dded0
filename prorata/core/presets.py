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
    # unused time of the old cycle against the new one. From a free plan the new plan starts
    # a new cycle on the change day, billed in full: WHMCS does this for every free product
    # and it is not a setting (docs.whmcs.com/products/upgrades-and-downgrades, "Free to
    # Paid Products"); the seed, silent on free plans, does not say otherwise.
    "kajoom": {
        "proration": {"lines": "difference", "from_free": "new_period"},
        **_changes("none", period_change={"credit": "account_credit"}),
        "cancel": _CANCEL_AT_PERIOD_END,
    },
    # WHMCS (docs.whmcs.com/products/upgrades-and-downgrades, formerly
    # Automated_Upgrades_and_Downgrades): a change is effective at once and the next due date does
    # not move. Payable = new price per day x days to the next due date - old price per day x the
    # same days, where a price per day is the recurring amount over the days of its billing cycle
    # (actual days of the cycle that ends on the next due date) and the days to the next due date
    # count the change day; only the result is rounded (to the cent, half away from zero). "Credit
    # on Downgrade" is on: a negative result goes to the client's credit balance. A change of
    # billing cycle keeps the next due date too: the rest of the period is charged at the new
    # cycle's price per day (over the new cycle's days ending on the next due date) less the old
    # one's, and the new cycle's periods start from that date; when both cost the same per month (to
    # the cent) nothing is charged (WHMCS's upgrade calculation, SumUpPackageUpgradeOrder). From a
    # free product the next due date becomes one billing cycle after the change and the new price is
    # billed in full. An upgrade or downgrade order is carried out once its invoice is paid; an
    # unpaid one is cancelled when the renewal is invoiced. Cancellation requests: end of billing
    # period (or immediate), no credit.
    "whmcs": {
        "proration": {"lines": "difference", "from_free": "new_period"},
        **_changes("account_credit", anchor="due_date", period_change={"equal_monthly": "nothing"}),
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
    # Stripe Billing (classic billing mode). Prorated to the second over the period's real
    # length. A change replaces the item: the unused time of the old price and quantity is
    # credited at the item's current price (classic mode; flexible mode credits what was
    # billed, not modelled) and the new price and quantity charged for the rest of the
    # period, two lines each rounded to the minor unit. proration_behavior: create_prorations
    # is `invoice: next_invoice` (the items wait for the next invoice), always_invoice is
    # `invoice: now`, none is `proration: {unit: none}` on the change. Pending items go on the
    # next invoice issued for the subscription, whichever it is (`pending_lines:
    # any_invoice`): a renewal, an always_invoice change, a new billing period, a final
    # invoice. A change of interval credits unused time, resets the billing cycle anchor to
    # now and invoices the new full period at once; `anchor: reset` on any change is
    # billing_cycle_anchor=now (a new period from the change, invoiced at once). A negative
    # invoice goes to the customer's credit balance, applied to later invoices. Cancelling at
    # period end prorates nothing and bills the pending items at the end; an immediate
    # cancellation is `cancel: {timing: immediate}` with prorate as `credit: account_credit`
    # (`none`: false) and invoice_now as `invoice: now` (`next_invoice`: false). invoice_now
    # puts the pending items and the credit on a final invoice; prorate without invoice_now
    # leaves them pending on the customer, for its next invoice whichever subscription it
    # bills; with neither, the pending items are removed (docs.stripe.com/api/subscriptions
    # /cancel).
    "stripe": {
        "proration": {"unit": "second", "credit_from": "price", "lines": "separate"},
        **_changes("account_credit", invoice="next_invoice", period_change={"invoice": "now"}),
        "cancel": _CANCEL_AT_PERIOD_END,
        "pending_lines": "any_invoice",
    },
    # Kill Bill: in-advance billing by day, end date exclusive; the time ratio is rounded to
    # 9 digits half-up, then each amount half-up. An immediate change repairs the old item (a
    # negative line for the unused share of what was billed for it, on its own span, capped at
    # what remains of it) and bills the new plan prorated up to the next billing-cycle day, on
    # one invoice; a negative total becomes account credit (CBA). The billing-cycle day is kept
    # (`anchor: keep`): a longer plan's first period ends on the first billing-cycle date on or
    # after the change. Its fixed-30-days mode (org.killbill.invoice.proration.fixed.days =
    # 30) is `proration.basis: fixed_30` (InvoiceDateUtils: a stretch within a month counts
    # its days, one into the next month loses the start month's excess over 30, the period
    # counts 30). The ratio's 9 digits are KillBillMoney.MAX_SCALE (InvoiceDateUtils
    # .calculateProrationBetweenDates). An immediate cancellation is a repair alone.
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
    # Lago: plans are ordered by price per year (equal counts as an upgrade), a weekly plan
    # counted as 52 weeks (Plan#yearly_amount_cents: x1 yearly, x2 semiannual, x4 quarterly,
    # x12 monthly, else x52). An upgrade is
    # immediate: a credit note for the unused days of the old plan (the change day counted as
    # unused) and an invoice for the new plan by day from the change day to the end of the
    # period. A downgrade waits for the end of the period and credits nothing. Day price =
    # amount / actual days of the period. An immediate termination credits the days after
    # the termination day. The plan that replaces another keeps its subscription date and
    # billing time (PlanUpgradeService), so a change of interval keeps the billing day
    # (`anchor: keep`) and bills the new plan by day to the next boundary.
    # Billing time (Subscription#billing_time, `calendar` unless the subscription asks for
    # `anniversary`; Subscriptions::Dates::*Service): calendar periods start at the
    # beginning of the week (Monday), month, quarter, half year or year; the first period
    # runs from the start to the next of them, by day at amount / days of the full period
    # containing the start (Fees::SubscriptionService#first_subscription_amount,
    # DatesService#single_day_price); anniversary periods follow the subscription date.
    # A prorated fee is days × (amount_cents.fdiv(days of the period)) in Ruby Floats,
    # rounded half away from zero (Fees::SubscriptionService, CreditNotes::
    # CreateFromTermination): `arithmetic: binary64` (15 days of 9.99 over 30 give 4.99).
    "lago": {
        "billing_time": "calendar",
        "classify": "price",
        "classify_weeks_per_year": "52",
        "proration": {
            "unit": "day",
            "basis": "actual",
            "change_day": "remaining",
            "arithmetic": "binary64",
        },
        **_changes(
            "credit_note",
            anchor="keep",
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
    # Chargebee, day-based billing mode ("Billing Mode & Proration"): immediate changes
    # prorated by day over the current term, the change day counted as unused; the site's
    # default millisecond-based mode is `proration: {unit: second}`. The old terms' unused
    # time (the whole old quantity) is credited and the new terms charged for the rest of
    # the term. The credit is a credit note to the customer's credits (refundable: the
    # term's invoice is paid); the new terms' charge is invoiced at once and consumes it
    # (invoice_immediately=false is `invoice: next_invoice`: unbilled charges on the
    # renewal); what is left is applied to later invoices. While the term's invoice is
    # unpaid (payment_due / not_paid) the credit is an adjustment credit note applied to
    # that invoice, lowering its amount due, not refundable (`unpaid_invoice_credit:
    # adjustment`; apidocs.chargebee.com/docs/api/credit_notes, type adjustment, and
    # chargebee.com/docs/2.0/credit-notes); what exceeds the amount still due is
    # refundable credit, as the paid part of a partially paid invoice is (Chargebee
    # support, "What are the actions that can be performed on a refundable credit
    # note?": adjust the due amount for the unpaid part, credits against the paid part;
    # scenarios/presets/chargebee-adjustment-unpaid-derived.yaml). A plan of
    # another billing period starts a new term on the change day. Immediate cancellation
    # credits the unused days (credit_option prorate; `credit: none` for none; the date of
    # cancellation unbilled unless `cancel: {change_day: used}`); unbilled charges are
    # invoiced (`invoice: now`) or deleted (`next_invoice`). Each line is rounded half-up
    # (the docs do not say how Chargebee rounds). With proration disabled (`proration:
    # {unit: none}`) nothing is credited: a plan changed mid-term, upgraded or downgraded,
    # is charged the new plan's whole price at once ("the whole charges would be
    # collected", Chargebee support, discussion 322333, staff answer), the next renewal
    # that price again; fewer units credit nothing and lower the next renewal
    # (`unprorated: full_price`; chargebee.com/docs/proration-old: no credit on a
    # downgrade without proration).
    "chargebee": {
        "proration": {
            "unit": "day",
            "basis": "actual",
            "change_day": "remaining",
            "unprorated": "full_price",
        },
        **_changes("credit_note"),
        "cancel": {"timing": "end_of_term", "invoice": "now", "credit": "credit_note"},
        "unpaid_invoice_credit": "adjustment",
    },
}

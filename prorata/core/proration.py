"""Prorated lines: what a stretch of time on some terms costs or gives back.

Rounding: each line is ``unit price × quantity × ratio`` computed exactly (the ratio is an
exact fraction, rounded first only when ``ratio_digits`` is set) and rounded once, to the
currency's minor unit, with the policy's rounding mode. Credit lines are negative. Under
``proration.arithmetic: binary64`` (Lago) a prorated amount is instead the price in minor
units over the period's days (or seconds), times those used, each operation rounded to a
double as that system's Floats are (:mod:`prorata.core.binary64`), then rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from prorata.core import binary64, wording
from prorata.core.calendar import (
    day_count,
    elapsed_seconds,
    local_midnight,
    period_days,
    round_ratio,
    span_ratio,
)
from prorata.core.catalog import Catalog, Plan
from prorata.core.documents import Line
from prorata.core.money import Money, currency_digits, round_amount, round_minor
from prorata.core.policy import Policy
from prorata.core.subscription import Item, Segment
from prorata.core.values import quick_init, replaced


@quick_init
@dataclass(frozen=True)
class Pricing:
    """What a line needs to know beyond its terms: the policy, catalog, currency and locale."""

    policy: Policy
    catalog: Catalog
    currency: str
    locale: str

    def plan_name(self, plan: Plan) -> str:
        return plan.name.get(self.locale)

    def amount(self, value: Decimal) -> Money:
        return round_amount(value, self.currency, self.policy.rounding)


def change_instant(at: datetime, unit: str, change_day: str, period_end: datetime) -> datetime:
    """Where unused time starts: the instant itself to the second, else the change day's
    midnight (``remaining``) or the next midnight (``used``: the change day stays billed)."""
    if unit == "second":
        return at
    start = local_midnight(at.date(), at.tzinfo)
    if change_day == "used":
        start = local_midnight(at.date() + timedelta(days=1), at.tzinfo)
    return min(start, period_end)


def used_units(span: tuple[datetime, datetime], period: tuple[datetime, datetime], pr) -> tuple:
    """The numerator and denominator of a ratio, for explanations."""
    if pr.unit == "second":
        return elapsed_seconds(*span), elapsed_seconds(*period)
    count = day_count(pr.basis)
    return count(span[0].date(), span[1].date()), period_days(
        period[0].date(), period[1].date(), pr.basis
    )


def ratio_for(span, period, pricing: Pricing) -> Fraction:
    pr = pricing.policy.proration
    if pr.unit == "none":
        return Fraction(1) if span == period else Fraction(0)
    ratio = span_ratio(span, period, "second" if pr.unit == "second" else "day", pr.basis)
    return round_ratio(ratio, pr.ratio_digits)


def unit_total(plan: Plan, quantity: int) -> Decimal:
    """Price of ``quantity`` of a plan for one full period."""
    return plan.price * quantity if plan.per_unit else plan.price


_WHOLE = Fraction(1)  # the ratio of a whole period (a Fraction is immutable: one will do)


def _prorated(full: Decimal, ratio: Fraction, span, period, pricing: Pricing, sign: int) -> Money:
    """``full × ratio``, signed, rounded once; under ``arithmetic: binary64`` the price in
    minor units over the period's units, times the units used, in double precision."""
    pr = pricing.policy.proration
    if pr.arithmetic != "binary64" or ratio is _WHOLE or pr.unit == "none":
        return pricing.amount(full * ratio.numerator / ratio.denominator * sign)
    used, units = used_units(span, period, pr)
    minor = Fraction(full) * 10 ** currency_digits(pricing.currency)
    value = binary64.multiply(binary64.divide(minor, Fraction(units)), Fraction(used))
    return round_minor(value * sign, pricing.currency, pricing.policy.rounding)


def period_line(
    kind: str,
    subscription: str,
    item: Item,
    span: tuple[datetime, datetime],
    period: tuple[datetime, datetime],
    pricing: Pricing,
    *,
    sign: int = 1,
    value: Decimal | None = None,
    quantity: int | None = None,
) -> Line:
    """A line for ``item`` over ``span`` of ``period``; ``value`` replaces the full-period price."""
    plan = pricing.catalog.plan(item.plan)
    full = unit_total(plan, item.quantity) if value is None else value
    ratio = _WHOLE if span == period else ratio_for(span, period, pricing)
    amount = _prorated(Decimal(full), ratio, span, period, pricing, sign)
    shown_qty = item.quantity if quantity is None else quantity
    explanation = ""
    if ratio is not _WHOLE and ratio != 1:
        explanation = wording.explain_proration(
            locale=pricing.locale,
            currency=pricing.currency,
            amount=full / shown_qty if plan.per_unit and shown_qty else full,
            quantity=shown_qty if plan.per_unit else 1,
            ratio=ratio,
            span=span,
            period=period,
            used=used_units(span, period, pricing.policy.proration),
            unit=pricing.policy.proration.unit,
            rounding=pricing.policy.rounding,
            ratio_digits=pricing.policy.proration.ratio_digits,
            arithmetic=pricing.policy.proration.arithmetic,
        )
    wording_kind = "proration_reduction" if kind == "proration" and full < 0 else kind
    return Line(
        kind=kind,
        description=wording.line_description(
            wording_kind, pricing.plan_name(plan), shown_qty, pricing.locale
        ),
        subscription=subscription,
        plan=plan.id,
        quantity=shown_qty,
        amount=amount,
        start=span[0],
        end=span[1],
        fraction=ratio,
        unit_price=plan.price,
        explanation=explanation,
    )


def billed_credit(
    subscription: str,
    item: Item,
    segments: tuple[Segment, ...],
    span: tuple[datetime, datetime],
    pricing: Pricing,
) -> tuple[list[Line], list[Segment]]:
    """Kill Bill repair: credit the unused share of what was billed for ``item``.

    Each segment billed for the item is prorated on its own span (the ratio rounded as the
    policy says), rounded once, and capped at what remains uncredited of it. Returns the
    negative lines and the segments with their new credited amounts.
    """
    plan = pricing.catalog.plan(item.plan)
    lines, updated = [], []
    for seg in segments:
        if seg.plan != item.plan or seg.quantity != item.quantity:
            updated.append(seg)
            continue
        overlap = (max(seg.start, span[0]), min(seg.end, span[1]))
        if overlap[0] >= overlap[1] or not seg.remaining.is_positive:
            updated.append(seg)
            continue
        ratio = ratio_for(overlap, (seg.start, seg.end), pricing)
        value = seg.amount.amount * ratio.numerator / ratio.denominator
        credit = min(pricing.amount(value), seg.remaining)
        updated.append(replaced(seg, credited=seg.credited + credit))
        line = period_line(
            "proration_credit",
            subscription,
            item,
            overlap,
            (seg.start, seg.end),
            pricing,
            sign=-1,
            value=seg.amount.amount,
        )
        lines.append(replace(line, amount=-credit, unit_price=plan.price))
    return lines, updated

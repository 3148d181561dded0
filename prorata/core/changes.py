"""Changing a subscription: classify, admit, time and quote a change, as pure functions.

``evaluate`` is the single entry point used by previews, the API, the simulator and the
store: it returns either a :class:`Refusal` or a :class:`Quote` that says when the change
takes effect and, for an immediate change, every line it produces and the subscription it
leaves. Applying a change means recording that quote; previewing means showing it, so the
numbers of a preview and of the applied change are the same by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from prorata.core import arrears, licences, wording
from prorata.core.calendar import Schedule
from prorata.core.catalog import Catalog
from prorata.core.classify import classify
from prorata.core.documents import Line
from prorata.core.model import Account, Actor, Change
from prorata.core.money import Money, total
from prorata.core.policy import Policy
from prorata.core.proration import (
    Pricing,
    billed_credit,
    change_instant,
    period_line,
    ratio_for,
    unit_total,
    used_units,
)
from prorata.core.subscription import Item, Scheduled, Subscription, charged_segments

_TIMING_ORDER = {"immediate": 0, "end_of_term": 1, "approval": 2, "forbidden": 3}


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


@dataclass(frozen=True)
class Routing:
    """Where a change's lines go: invoiced now, left for the subscription's next invoice,
    left for the account's next invoice, or credited.

    ``account`` holds lines of a subscription that has just ended and so has no invoice of
    its own to come: they wait on its account for the next invoice issued to that account,
    whichever subscription it bills."""

    invoice: tuple[Line, ...] = ()
    pending: tuple[Line, ...] = ()
    credit_note: tuple[Line, ...] = ()  # positive amounts
    credited_to: str = "account"  # account | refund
    account: tuple[Line, ...] = ()


@dataclass(frozen=True)
class Quote:
    kind: str
    kinds: frozenset[str]
    timing: str  # immediate | end_of_term | approval
    request_reason: str | None  # approval_required | manual_fulfillment
    effective_at: datetime
    lines: tuple[Line, ...] = ()
    routing: Routing = field(default_factory=Routing)
    subscription: Subscription | None = None  # the state after an immediate change
    refers_to: str | None = None

    @property
    def total(self) -> Money | None:
        if not self.lines:
            return None
        return total((line.amount for line in self.lines), self.lines[0].amount.currency)


@dataclass(frozen=True)
class Context:
    """What the engine needs to know besides the subscription itself."""

    catalog: Catalog
    policy: Policy
    accounts: Mapping[str, Account]
    pending_request: int | None = None  # a request already waiting for this subscription
    reader_locale: str | None = None  # who reads refusals now (an API caller); None: the account


# admission -------------------------------------------------------------------


def authorize(policy: Policy, sub: Subscription, actor: Actor) -> str | None:
    """Who may act: the account's own owner or billing contact, or the seller's staff, as the
    policy allows. Returns the role to name in a refusal, or None when allowed."""
    if not actor.is_staff and actor.account != sub.account:
        return "other"
    if actor.role not in policy.authorized_roles:
        return actor.role
    return None


def admit(ctx: Context, sub: Subscription, by: Actor | None, *, approved: bool) -> Refusal | None:
    """Whether anyone may act on ``sub`` now, and ``by`` in particular (default: its owner).
    A request a person approved has passed the role check already."""
    if not sub.active:
        return refuse(ctx, sub, "subscription_not_active", status=sub.status)
    if sub.awaiting is not None:
        return refuse(ctx, sub, "awaiting_payment", invoice=sub.awaiting.invoice)
    denied = authorize(ctx.policy, sub, by or Actor(sub.account, "owner"))
    if denied and not approved:
        return refuse(
            ctx, sub, "not_authorized", who=wording.role_name(denied, refusal_locale(ctx, sub))
        )
    return None


def locale_of(ctx: Context, sub: Subscription) -> str:
    """The language of the subscription's account (refusals and lines are written in it)."""
    account = ctx.accounts.get(sub.account)
    return account.locale if account else "en"


def refusal_locale(ctx: Context, sub: Subscription) -> str:
    """The language refusals are written in: the reader's if known, else the account's.
    Documents and their lines are always in the account's (:func:`locale_of`)."""
    return ctx.reader_locale or locale_of(ctx, sub)


def refuse(ctx: Context, sub: Subscription, code: str, **params) -> Refusal:
    return Refusal(code, wording.refusal(code, refusal_locale(ctx, sub), **params))


def main_period(ctx: Context, sub: Subscription):
    return ctx.catalog.plan(sub.plan).period


def resolve_items(ctx: Context, sub: Subscription, change: Change) -> tuple | Refusal:
    """The items the change asks for, or why they cannot exist."""
    catalog = ctx.catalog
    main = catalog.plan(change.plan) if change.plan else catalog.plan(sub.plan)
    if change.period is not None and main.period != change.period:
        sibling = catalog.sibling(main, change.period)
        if sibling is None:
            return refuse(ctx, sub, "unknown_plan", what=f"{main.id} ({change.period})")
        main = sibling
    quantity = sub.quantity if change.quantity is None else change.quantity
    if quantity < 1:
        return refuse(ctx, sub, "quantity_invalid", quantity=quantity, why="at least 1")
    if change.quantity is not None and change.quantity != sub.quantity and not main.per_unit:
        return refuse(
            ctx, sub, "quantity_invalid", quantity=quantity, why=f"{main.id} is not sold per unit"
        )
    suite = catalog.products[main.product]
    kept = tuple(
        item for item in sub.items[1:] if not catalog.covers(suite, catalog.plan(item.plan).product)
    )
    added = tuple(Item(plan_id, 1) for plan_id in change.add_products)
    return (Item(main.id, quantity), *kept, *added)


def decide_timing(ctx: Context, policy: Policy, sub, kinds, primary, change, at) -> str | Refusal:
    timing = max((policy.rule(k).timing for k in kinds), key=_TIMING_ORDER.__getitem__)
    locale = refusal_locale(ctx, sub)
    if timing == "forbidden":
        return refuse(ctx, sub, "change_forbidden", kind=wording.kind_name(primary, locale))
    renewal = sub.renewal_date()
    notice_applies = policy.notice_days and renewal and kinds & policy.notice_applies_to
    if notice_applies and (renewal.date() - at.date()).days < policy.notice_days:
        return refuse(
            ctx,
            sub,
            "notice_period_passed",
            days=policy.notice_days,
            renewal=wording.when(renewal, locale),
        )
    if ctx.pending_request is not None:
        return refuse(ctx, sub, "already_pending", request=ctx.pending_request)
    if change is not None and change.timing and timing in ("immediate", "end_of_term"):
        timing = change.timing
    return timing


def effective_policy(ctx: Context, items: tuple[Item, ...], change: Change | None) -> Policy:
    """The scenario policy with the target plan's product and plan overrides, then the
    change's own proration overrides."""
    plan = ctx.catalog.plan(items[0].plan)
    product = ctx.catalog.products[plan.product]
    if not product.policy and not plan.policy and (change is None or not change.proration):
        return ctx.policy  # no override: what with_overrides gives back unchanged
    layers = [product.policy, plan.policy]
    if change is not None and change.proration:
        layers.append({"proration": dict(change.proration)})
    return ctx.policy.with_overrides(*layers, where=f"catalog.{plan.id}.policy")


def _ends_past_term(ctx: Context, sub: Subscription, quote: Quote) -> Refusal | None:
    """Why an immediate change cannot start the billing period it would: that period ends
    after the contract's term (a cycle changed, or restarted, mid-term: the term's end
    must be the end of a billing period, where its renewal and notice are checked). None
    when it ends by then, when the change keeps the period's end (a seat or plan change
    is not refused for a period the subscription already had), or there is no term. At the
    term's end the same change applies, the next term lasting at least one of its periods
    (``lifecycle``)."""
    after = quote.subscription
    if sub.term is None or after is None or after.period_end is None:
        return None
    if after.period_end <= sub.term.end or after.period_end == sub.period_end:
        return None
    locale = refusal_locale(ctx, sub)
    return refuse(
        ctx,
        sub,
        "period_past_term",
        end=wording.when(after.period_end, locale),
        term_end=wording.when(sub.term.end, locale),
    )


def end_of_term(sub: Subscription) -> datetime:
    """When an end-of-term change takes effect: the contract term's end, else the period's."""
    if sub.term is not None:
        return sub.term.end
    return sub.period_end or sub.maintenance_until or sub.started_at


# evaluation ------------------------------------------------------------------


def evaluate(
    ctx: Context,
    sub: Subscription,
    change: Change,
    at: datetime,
    *,
    approved: bool = False,
) -> Quote | Refusal:
    """What ``change`` to ``sub`` at ``at`` would do. Pure: nothing is recorded.

    ``approved`` evaluates a request a person has accepted: the approval gate is passed and the
    change takes effect as the policy's ``after_approval`` (or the change's timing) says.
    """
    refusal = admit(ctx, sub, change.by, approved=approved)
    if refusal is not None:
        return refusal
    items = resolve_items(ctx, sub, change)
    if isinstance(items, Refusal):
        return items
    policy = effective_policy(ctx, items, change)
    if not sub.is_recurring:
        return licences.evaluate(ctx, policy, sub, items, change, at, refuse, locale_of(ctx, sub))
    if items == sub.items:
        return refuse(ctx, sub, "no_change")
    kinds, primary = classify(policy, ctx.catalog, sub.items, items)
    if primary is None:
        return refuse(ctx, sub, "no_change")
    cycle_changed = ctx.catalog.plan(items[0].plan).period != main_period(ctx, sub)
    if sub.cancel_at is not None and (cycle_changed or change.anchor == "reset"):
        # a new billing cycle would bill time past the end the customer asked for
        return refuse(
            ctx,
            sub,
            "cancellation_scheduled",
            at=wording.when(sub.cancel_at, refusal_locale(ctx, sub)),
        )
    if approved:
        timing = policy.rule(primary).after_approval
        if change.timing:
            timing = change.timing
    else:
        timing = decide_timing(ctx, policy, sub, kinds, primary, change, at)
        if isinstance(timing, Refusal):
            return timing
        if timing == "approval" and policy.approves(change.by):
            timing = change.timing or policy.rule(primary).after_approval
    if timing == "approval":
        return Quote(primary, kinds, "approval", "approval_required", at)
    if timing == "end_of_term":
        when = end_of_term(sub)
        scheduled = (*sub.scheduled, Scheduled(when, change, primary))
        return Quote(
            primary, kinds, "end_of_term", None, when, subscription=sub.evolve(scheduled=scheduled)
        )
    quote = quote_immediate(ctx, policy, sub, items, primary, kinds, change, at)
    refusal = _ends_past_term(ctx, sub, quote)
    if refusal is not None:
        return refusal
    target = ctx.catalog.plan(items[0].plan)
    if target.manual and target.id != sub.plan and not approved:
        quote = replace(quote, request_reason="manual_fulfillment")
    return quote


def quote_immediate(
    ctx: Context,
    policy: Policy,
    sub: Subscription,
    items: tuple[Item, ...],
    kind: str,
    kinds: frozenset[str],
    change: Change | None,
    at: datetime,
) -> Quote:
    """Lines and resulting state of a change that takes effect at ``at``."""
    pricing = Pricing(policy, ctx.catalog, sub.currency, locale_of(ctx, sub))
    pr = policy.proration
    period = sub.billing_period()
    t = change_instant(at, pr.unit, policy.change_day(kind), sub.period_end)
    old_plan, new_plan = ctx.catalog.plan(sub.plan), ctx.catalog.plan(items[0].plan)
    rule = policy.rule(kind)

    schedule, new_period, charge_period = sub.schedule, period, period
    asked = change.anchor if change else None
    anchor = asked or policy.rule("period_change").anchor
    cycle_changed = old_plan.period != new_plan.period
    # a new billing period from the change: from terms that cost nothing (WHMCS), a new
    # cycle with the anchor reset (or nothing to prorate), or any change that asks for
    # `anchor: reset` (Stripe billing_cycle_anchor=now)
    from_free = pr.from_free == "new_period" and _costs_nothing(ctx.catalog, sub.items)
    restart = (
        from_free
        or asked == "reset"
        or (cycle_changed and (anchor == "reset" or pr.unit == "none"))
    )
    billing_time = sub.billing_time
    if restart:
        # a new anniversary on the change day, whatever the billing time was
        schedule = Schedule.starting(t, new_plan.period, t.day)
        new_period = charge_period = (t, schedule.boundary(1))
        billing_time = "anniversary"
    elif cycle_changed and anchor == "due_date":
        # the period still ends where it did and the new cycle's periods end there too; the
        # current period becomes the new cycle's one that ends there (its days are the
        # denominator of the new price per day, as WHMCS counts them back from the due date)
        day = sub.schedule.billing_day if sub.schedule.unit.months else sub.period_end.day
        schedule = Schedule.starting(sub.period_end, new_plan.period, day)
        new_period = charge_period = (schedule.boundary(-1), sub.period_end)
        billing_time = "anniversary"
    elif cycle_changed:
        # the billing day kept, or (calendar billing) the new cycle's calendar periods
        schedule = Schedule.starting(t, new_plan.period, sub.schedule.billing_day, billing_time)
        charge_period = schedule.period_containing(t)
        new_period = (charge_period[0], charge_period[1])
    remaining = (t, sub.period_end)
    charge_span = (t, new_period[1])

    every_item = kind == "period_change" or restart
    changed_old = [i for i in sub.items if i not in items or every_item]
    changed_new = [i for i in items if i not in sub.items or every_item]
    segments = tuple(s for s in sub.segments if s.end > t)
    lines: list[Line] = []
    # items paid in arrears: the old terms' use up to the change is billed now, the new
    # terms accrue from the change (see ``arrears``); they have nothing to credit
    used, accrued_from = _arrears_at_change(ctx, sub, items, changed_old, changed_new, t, pricing)
    lines.extend(used)
    changed_old = list(arrears.in_advance(ctx.catalog, changed_old))
    changed_new = list(arrears.in_advance(ctx.catalog, changed_new))
    prorate = pr.unit != "none" or every_item
    # the new cycle's full period when it ends where the current one does (anchor due_date)
    new_cycle = charge_period if cycle_changed and anchor == "due_date" and not restart else None
    if not changed_old and not changed_new:
        pass  # only items paid in arrears changed
    elif pr.lines == "difference" and prorate and (not every_item or new_cycle is not None):
        lines.extend(
            _difference_line(sub, changed_old, changed_new, remaining, period, pricing, new_cycle)
        )
    elif not prorate and pr.unprorated == "full_price":
        lines.extend(_full_price_lines(sub.id, changed_old, changed_new, remaining, pricing))
    elif prorate:
        for item in changed_old:
            if remaining[0] >= remaining[1] or pr.unit == "none":
                continue
            if pr.credit_from == "billed":
                credit, segments = billed_credit(sub.id, item, segments, remaining, pricing)
                lines.extend(credit)
            else:
                lines.append(
                    period_line(
                        "proration_credit", sub.id, item, remaining, period, pricing, sign=-1
                    )
                )
        for item in changed_new:
            if charge_span[0] < charge_span[1]:
                line_kind = "recurring" if charge_span == charge_period else "proration_charge"
                lines.append(
                    period_line(line_kind, sub.id, item, charge_span, charge_period, pricing)
                )
    lines = [line for line in lines if line.amount]

    kept_segments = tuple(
        replace(s, end=min(s.end, t)) if s.plan in {i.plan for i in changed_old} else s
        for s in segments
    )
    new_segments = charged_segments(lines, sub.currency)
    state = sub.evolve(
        items=items,
        schedule=schedule,
        period_start=new_period[0] if new_period != period else sub.period_start,
        period_end=new_period[1],
        segments=kept_segments + new_segments,
        term=_term_after(sub, new_period) if new_period != period else sub.term,
        billing_time=billing_time,
        accrued_from=accrued_from,
    )
    if restart:
        # a period that starts now is billed in advance now, whatever the kind's rule says
        rule = replace(rule, invoice="now")
    routing = route(lines, rule)
    if policy.pending_lines == "any_invoice" and routing.invoice and sub.pending_lines:
        # the lines an earlier change left for later go on this invoice (Stripe)
        routing = replace(routing, invoice=(*sub.pending_lines, *routing.invoice))
        state = state.evolve(pending_lines=())
    return Quote(
        kind,
        kinds,
        "immediate",
        None,
        at,
        lines=tuple(lines),
        routing=routing,
        subscription=state,
        refers_to=sub.last_invoice(),
    )


def _arrears_at_change(ctx, sub, items, changed_old, changed_new, t, pricing):
    """The lines and the new ``accrued_from`` of an immediate change at ``t`` for the items
    paid in arrears. When the change touches any of them (Lago ends the old subscription and
    starts the new one), every old one is billed for its use up to ``t`` and the new ones
    accrue from ``t``; a change that touches none leaves them accruing as they were.
    Without proration nothing is split: the period is billed whole at its end on the terms
    then in force, or now on the old terms when no new item is paid in arrears."""
    catalog = ctx.catalog
    touched = arrears.arrears_of(catalog, (*changed_old, *changed_new))
    if not touched or sub.accrued_from is None:
        return [], sub.accrued_from or arrears.accrual_start(catalog, items, t)
    if pricing.policy.proration.unit != "none":
        return arrears.used_lines(sub, t, pricing), arrears.accrual_start(catalog, items, t)
    if arrears.arrears_of(catalog, items):
        return [], sub.accrued_from
    return arrears.used_lines(sub, sub.period_end, pricing), None


def _term_after(sub: Subscription, new_period) -> object:
    """A term that would end before the new period does is stretched to the new period's end."""
    if sub.term is None or sub.term.end >= new_period[1]:
        return sub.term
    return replace(sub.term, end=new_period[1])


def _costs_nothing(catalog: Catalog, items: tuple[Item, ...]) -> bool:
    """Whether a full period of ``items`` costs nothing (a free plan)."""
    return all(not unit_total(catalog.plan(i.plan), i.quantity) for i in items)


def _full_price_lines(sub_id: str, old_items, new_items, remaining, pricing: Pricing) -> list[Line]:
    """A change billed without proration at the full price (``unprorated: full_price``).

    Nothing is credited for the old terms. A new plan is charged its full period price; a
    plan kept with more units is charged the added units' full period price; a plan kept
    with fewer or the same units is charged nothing. Each line is the catalogue price,
    unrounded by any ratio, over the rest of the period (``remaining``)."""
    if remaining[0] >= remaining[1]:
        return []
    before = {item.plan: item for item in old_items}
    lines = []
    for item in new_items:
        plan = pricing.catalog.plan(item.plan)
        kept = before.get(item.plan)
        value = quantity = None  # a new plan: its whole price
        if kept is not None:
            if item.quantity <= kept.quantity or not plan.per_unit:
                continue
            value = unit_total(plan, item.quantity) - unit_total(plan, kept.quantity)
            quantity = item.quantity - kept.quantity
        line = period_line(
            "recurring", sub_id, item, remaining, remaining, pricing, value=value, quantity=quantity
        )
        lines.append(line)
    return lines


def _difference_line(
    sub, old_items, new_items, remaining, period, pricing: Pricing, new_cycle=None
) -> list[Line]:
    """One line for the difference of the new and old terms over the rest of the period.

    ``new_cycle``: the full period the new terms are priced over when the billing cycle
    changes but the period's end does not (WHMCS): the new price per day is the new cycle's
    price over that period's days, the old price per day the old one's over ``period``; the
    difference of the two shares is rounded once."""
    if remaining[0] >= remaining[1]:
        return []
    catalog = pricing.catalog
    old_value = sum((unit_total(catalog.plan(i.plan), i.quantity) for i in old_items), 0)
    new_value = sum((unit_total(catalog.plan(i.plan), i.quantity) for i in new_items), 0)
    if new_cycle is not None:
        values = (old_value, new_value)
        return [
            _cycle_difference_line(
                sub, (old_items, new_items), values, remaining, period, pricing, new_cycle
            )
        ]
    main = new_items[0] if new_items else old_items[0]
    old_main = old_items[0] if old_items else main
    shown = (
        abs(main.quantity - old_main.quantity)
        if main.plan == old_main.plan and main.quantity != old_main.quantity
        else main.quantity
    )
    return [
        period_line(
            "proration",
            sub.id,
            main,
            remaining,
            period,
            pricing,
            value=new_value - old_value,
            quantity=shown,
        )
    ]


def _cycle_difference_line(sub, items, values, remaining, period, pricing, new_cycle):
    """One line: the new terms' share of ``new_cycle`` less the old terms' share of
    ``period`` over the same ``remaining`` days, the difference rounded once (WHMCS);
    ``items`` and ``values``: the old and the new terms, and the price of a whole period of
    each."""
    catalog = pricing.catalog
    old_items, new_items = items
    old_value, new_value = values
    r_new = ratio_for(remaining, new_cycle, pricing)
    r_old = ratio_for(remaining, period, pricing)
    exact = Fraction(new_value) * r_new - Fraction(old_value) * r_old
    if pricing.policy.rule("period_change").equal_monthly == "nothing" and _same_monthly(
        catalog, old_items, new_items, old_value, new_value, pricing
    ):
        exact = Fraction(0)
    main = new_items[0]
    line = period_line("proration", sub.id, main, remaining, new_cycle, pricing, value=new_value)
    pr = pricing.policy.proration
    parts = []
    for value, ratio, whole in ((new_value, r_new, new_cycle), (old_value, r_old, period)):
        parts.append(
            wording.explain_proration(
                locale=pricing.locale,
                currency=pricing.currency,
                amount=value,
                quantity=1,
                ratio=ratio,
                span=remaining,
                period=whole,
                used=used_units(remaining, whole, pr),
                unit=pr.unit,
                rounding=pricing.policy.rounding,
                ratio_digits=pr.ratio_digits,
                rounded=False,
            )
        )
    return replace(
        line,
        amount=pricing.amount(Decimal(exact.numerator) / Decimal(exact.denominator)),
        fraction=r_new,
        explanation=wording.explain_difference(*parts, pricing.locale, pricing.policy.rounding),
    )


def _same_monthly(catalog, old_items, new_items, old_value, new_value, pricing) -> bool:
    """Whether the old and new terms cost the same per month, each rounded to the minor
    unit (month-based billing cycles only)."""
    old_months = catalog.plan(old_items[0].plan).period.months if old_items else 0
    new_months = catalog.plan(new_items[0].plan).period.months if new_items else 0
    if not old_months or not new_months:
        return False
    old_rate = pricing.amount(Decimal(old_value) / old_months)
    new_rate = pricing.amount(Decimal(new_value) / new_months)
    return old_rate == new_rate


def route(lines, rule) -> Routing:
    """Send each line where the rule says: charges to an invoice now or to the next one;
    credits to the invoice (account credit), to a credit note, to a refund, or nowhere."""
    invoice, pending, credit_note = [], [], []
    for line in lines:
        if line.amount.is_negative:
            if rule.credit == "none":
                continue
            if rule.credit in ("credit_note", "refund"):
                credit_note.append(line.negated())
                continue
        (invoice if rule.invoice == "now" else pending).append(line)
    return Routing(
        tuple(invoice),
        tuple(pending),
        tuple(credit_note),
        "refund" if rule.credit == "refund" else "account",
    )

"""A subscription's life apart from changes: start, renew at period end, cancel, undo.

Pure functions: each takes the state and an instant and returns the new state with the
lines to invoice. Renewals fall due at the period's end; at that instant the use of the
items paid in arrears is billed first (on the terms it was made on), then scheduled changes
and cancellations due by then are applied, then the term is renewed or ended, then the next
period is billed in advance (items paid in advance) together with any proration lines left
pending, and the items paid in arrears start accruing again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from prorata.core import arrears, licences, wording
from prorata.core.calendar import Schedule, local_midnight, term_end
from prorata.core.changes import (
    Context,
    Quote,
    Refusal,
    Routing,
    admit,
    decide_timing,
    effective_policy,
    end_of_term,
    locale_of,
    refuse,
    resolve_items,
    route,
)
from prorata.core.documents import Line
from prorata.core.model import Cancel, Subscribe, TermSpec
from prorata.core.policy import ChangeRule, Policy
from prorata.core.proration import Pricing, billed_credit, change_instant, period_line
from prorata.core.subscription import Item, Subscription, Term, charged_segments
from prorata.core.values import quick_init, replaced


@quick_init
@dataclass(frozen=True)
class Step:
    """The result of a lifecycle step: the new state and the lines it bills."""

    subscription: Subscription
    lines: tuple[Line, ...] = ()
    notes: tuple[str, ...] = field(default=())
    voids: tuple[str, ...] = ()  # unpaid invoices of changes dropped at this instant


def _pricing(ctx, sub: Subscription) -> Pricing:
    policy = effective_policy(ctx, sub.items, None)
    return Pricing(policy, ctx.catalog, sub.currency, locale_of(ctx, sub))


def _bill_period(ctx, sub: Subscription, span, period) -> list[Line]:
    """The period ``span`` billed in advance: the items paid in advance only."""
    pricing = _pricing(ctx, sub)
    return [
        period_line("recurring", sub.id, item, span, period, pricing)
        for item in arrears.in_advance(ctx.catalog, sub.items)
    ]


def _bill_used(ctx, sub: Subscription, until: datetime) -> list[Line]:
    """The use of ``sub``'s items paid in arrears up to ``until``, on its current terms
    (none without such items: their pricing is not even made)."""
    if sub.accrued_from is None:
        return []
    return arrears.used_lines(sub, until, _pricing(ctx, sub))


def start(ctx: Context, spec: Subscribe, at: datetime, currency: str) -> Step:
    """A new subscription and its first invoice's lines.

    Recurring plans: the first period runs to the next billing day, prorated over the full
    period that ends there when the start is not on a billing day; items paid in arrears
    are not billed now but accrue from the start (billed, prorated the same way, when the
    first period ends). One-time plans (perpetual
    licences): the full price, and maintenance for one period from the purchase.
    """
    main = ctx.catalog.plan(spec.plan)
    items = (Item(main.id, spec.quantity), *(Item(p, 1) for p in spec.add_products))
    policy = effective_policy(ctx, items, None)
    base = Subscription(
        id=spec.id, account=spec.account, items=items, currency=currency, started_at=at
    )
    if not main.period.recurring:
        pricing = Pricing(policy, ctx.catalog, currency, locale_of(ctx, base))
        lines = []
        for item in items:
            plan = ctx.catalog.plan(item.plan)
            line = period_line("recurring", spec.id, item, (at, at), (at, at), pricing)
            name = ctx.catalog.products[plan.product].name.get(pricing.locale)
            description = wording.line_description(
                "licence_purchase",
                f"{name} {pricing.plan_name(plan)}",
                item.quantity,
                pricing.locale,
            )
            lines.append(replace(line, start=None, end=None, description=description))
        term = None
        if spec.term is not None:
            term = Term(spec.term.period, at, term_end(at, spec.term.period), spec.term.auto_renew)
        sub = base.evolve(
            maintenance_start=at,
            maintenance_until=licences.maintenance_end(ctx.catalog, items, at),
            order_value=licences.order_value(ctx.catalog, items, currency),
            term=term,
        )
        return Step(sub, tuple(lines))
    begin = at if policy.proration.unit == "second" else local_midnight(at.date(), at.tzinfo)
    billing_time = billing_time_of(spec, policy.billing_time)
    schedule = Schedule.starting(begin, main.period, spec.billing_day, billing_time)
    period = schedule.period_containing(begin)
    term = None
    if spec.term is not None:
        term = Term(
            spec.term.period, begin, term_end(begin, spec.term.period), spec.term.auto_renew
        )
    sub = base.evolve(
        schedule=schedule,
        period_start=begin,
        period_end=period[1],
        term=term,
        billing_time=billing_time,
        accrued_from=arrears.accrual_start(ctx.catalog, items, begin),
    )
    lines = _bill_period(ctx, sub, (begin, period[1]), period)
    return Step(sub.evolve(segments=charged_segments(lines, currency)), tuple(lines))


def billing_time_of(spec: Subscribe, default: str) -> str:
    """Where the periods of the subscription that ``spec`` starts begin: its own
    ``billing_time``, else the policy's ``default``; but a ``billing_day`` other than the 1st,
    with no billing time asked for, is an anniversary on that day (calendar periods start on
    the 1st), as it was before billing times existed. Under ``calendar`` the billing day is
    not used."""
    if spec.billing_time is not None:
        return spec.billing_time
    if spec.billing_day not in (None, 1):
        return "anniversary"
    return default


def due_at(sub: Subscription) -> datetime | None:
    """The next instant at which something happens to ``sub`` without anyone acting."""
    if not sub.renews:
        return None
    candidates = [t for t in (sub.cancel_at,) if t is not None]
    if sub.awaiting is not None and sub.awaiting.expires_at is not None:
        candidates.append(sub.awaiting.expires_at)
    if sub.is_recurring:
        candidates.append(sub.period_end)
    elif sub.term is not None and sub.term.auto_renew and sub.maintenance_until is not None:
        candidates.append(sub.maintenance_until)
    return min(candidates) if candidates else None


def _end(ctx: Context, sub: Subscription, at: datetime, status: str) -> Step:
    """End ``sub`` at ``at``; proration lines still pending and the use of the items paid in
    arrears up to ``at`` go on a final invoice."""
    used = _bill_used(ctx, sub, at)
    ended = sub.evolve(
        status=status, ended_at=at, pending_lines=(), scheduled=(), accrued_from=None
    )
    return Step(ended, (*sub.pending_lines, *used))


def advance(ctx: Context, sub: Subscription, at: datetime) -> Step:
    """Run what falls due at ``at``: a change still waiting for its payment is dropped
    (its invoice is voided by the caller), then scheduled changes, cancellation, term end,
    renewal."""
    awaiting = sub.awaiting
    if awaiting is not None and awaiting.expires_at is not None and awaiting.expires_at <= at:
        sub = sub.evolve(awaiting=None)
        step = _advance(ctx, sub, at) if (due := due_at(sub)) is not None and due <= at else None
        return replace(step or Step(sub), voids=(awaiting.invoice,))
    return _advance(ctx, sub, at)


def _next_term_unit(ctx: Context, sub: Subscription):
    """How long the term that follows ``sub``'s lasts: as long, unless a change applied at
    its end bills by a longer period (a month-to-month contract moved to annual billing):
    then one of those periods, as a term holds whole billing periods
    (:meth:`~prorata.core.model.TermSpec.covers`)."""
    billing = ctx.catalog.plan(sub.plan).period
    if TermSpec(sub.term.unit).covers(billing):
        return sub.term.unit
    return billing


def _advance(ctx: Context, sub: Subscription, at: datetime) -> Step:
    if sub.cancel_at is not None and sub.cancel_at <= at:
        return _end(ctx, sub, at, "cancelled")
    if not sub.is_recurring:
        return _renew_maintenance(ctx, sub, at)
    # the period just ended, for the items paid in arrears, on the terms it was used on
    used = _bill_used(ctx, sub, at)
    if sub.accrued_from is not None:
        sub = sub.evolve(accrued_from=at)
    # setting aside the scheduled changes done is a version of its own; with none
    # scheduled it changes nothing else, and is counted in the renewed state's version
    unset = 0
    if sub.scheduled:
        for scheduled in [s for s in sub.scheduled if s.effective_at <= at]:
            sub = _apply_scheduled(ctx, sub, scheduled, at)
        sub = sub.evolve(scheduled=tuple(s for s in sub.scheduled if s.effective_at > at))
    else:
        unset = 1
    if sub.term is not None and at >= sub.term.end:
        if unset:
            sub, unset = sub.evolve(), 0
        if not sub.term.auto_renew:
            ended = _end(ctx, sub, at, "expired")
            return replace(ended, lines=(*used, *ended.lines))
        unit = _next_term_unit(ctx, sub)
        sub = sub.evolve(term=Term(unit, sub.term.end, term_end(sub.term.end, unit)))
    # ``at`` is a boundary, unless a scheduled change of cycle has just aligned the schedule
    # on the calendar: then the new plan's first period is prorated over the full period
    period = sub.schedule.period_containing(at)
    span = (at, period[1])
    advance = _bill_period(ctx, sub, span, period)
    lines = [*sub.pending_lines, *used, *advance]  # earliest first
    renewed = replaced(
        sub,
        versions=sub.versions + 1 + unset,
        period_start=span[0],
        period_end=span[1],
        pending_lines=(),
        segments=charged_segments([*sub.pending_lines, *advance], sub.currency),
        accrued_from=arrears.accrual_start(ctx.catalog, sub.items, at),
    )
    return Step(renewed, tuple(lines))


def _apply_scheduled(ctx: Context, sub: Subscription, scheduled, at: datetime) -> Subscription:
    items = resolve_items(ctx, sub, scheduled.change)
    if isinstance(items, Refusal):
        return sub
    new_unit = ctx.catalog.plan(items[0].plan).period
    schedule, billing_time = sub.schedule, sub.billing_time
    if new_unit != schedule.unit:
        policy = effective_policy(ctx, items, scheduled.change)
        anchor = scheduled.change.anchor or policy.rule("period_change").anchor
        if anchor == "reset":
            # a new anniversary on the change day
            schedule, billing_time = Schedule.starting(at, new_unit, at.day), "anniversary"
        else:
            schedule = Schedule.starting(at, new_unit, schedule.billing_day, billing_time)
    return sub.evolve(items=items, schedule=schedule, billing_time=billing_time)


def _renew_maintenance(ctx: Context, sub: Subscription, at: datetime) -> Step:
    """A licence whose term auto-renews buys another maintenance period at expiry."""
    locale = locale_of(ctx, sub)
    name = ctx.catalog.plan(sub.plan).name.get(locale)
    line = licences.maintenance_line(ctx.catalog, sub, sub.items, name, at, locale)
    return Step(sub.evolve(maintenance_start=at, maintenance_until=line.end), (line,))


def evaluate_cancel(
    ctx: Context, sub: Subscription, request: Cancel, at: datetime, *, approved: bool = False
) -> Quote | Refusal:
    """When a cancellation takes effect and what it credits; pure like ``changes.evaluate``."""
    refusal = admit(ctx, sub, request.by, approved=approved)
    if refusal is None and sub.cancel_at is not None:
        refusal = refuse(ctx, sub, "subscription_not_active", status="cancelled")
    if refusal is not None:
        return refusal
    policy = effective_policy(ctx, sub.items, None)
    rule = policy.rule("cancel")
    kinds = frozenset({"cancel"})
    if approved:
        timing = request.timing or rule.after_approval
    else:
        timing = decide_timing(ctx, policy, sub, kinds, "cancel", None, at)
        if isinstance(timing, Refusal):
            return timing
        if request.timing and timing in ("immediate", "end_of_term"):
            timing = request.timing
        if timing == "approval" and policy.approves(request.by):
            timing = request.timing or rule.after_approval
    if timing == "approval":
        return Quote("cancel", kinds, "approval", "approval_required", at)
    if timing == "end_of_term":
        when = end_of_term(sub)
        return Quote(
            "cancel", kinds, "end_of_term", None, when, subscription=sub.evolve(cancel_at=when)
        )
    lines: list[Line] = []
    unit = policy.proration.unit
    if sub.is_recurring and (sub.accrued_from is not None or rule.credit != "none"):
        pricing = Pricing(policy, ctx.catalog, sub.currency, locale_of(ctx, sub))
        # where the use ends and the credit starts; without proration nothing is split
        t = sub.period_end
        if unit != "none":
            t = change_instant(at, unit, policy.change_day("cancel"), sub.period_end)
        # the use of the items paid in arrears up to the termination (Lago's closing
        # invoice); without proration the period is billed whole, as it was paid in advance
        lines.extend(arrears.used_lines(sub, t, pricing))
    if sub.is_recurring and rule.credit != "none" and unit != "none":
        remaining = (t, sub.period_end)
        segments = sub.segments
        for item in arrears.in_advance(ctx.catalog, sub.items):
            if remaining[0] >= remaining[1]:
                break
            if policy.proration.credit_from == "billed":
                credit, segments = billed_credit(sub.id, item, segments, remaining, pricing)
                lines.extend(credit)
            else:
                period = sub.billing_period()
                lines.append(
                    period_line(
                        "proration_credit", sub.id, item, remaining, period, pricing, sign=-1
                    )
                )
    lines = [line for line in lines if line.amount]
    routing = _cancel_routing(policy, rule, sub, route(lines, rule))
    ended = sub.evolve(
        status="cancelled",
        ended_at=at,
        cancel_at=at,
        pending_lines=(),
        scheduled=(),
        accrued_from=None,
    )
    return Quote(
        "cancel",
        kinds,
        "immediate",
        None,
        at,
        lines=tuple(lines),
        routing=routing,
        subscription=ended,
        refers_to=sub.last_invoice(),
    )


def _cancel_routing(
    policy: Policy, rule: ChangeRule, sub: Subscription, routing: Routing
) -> Routing:
    """Where an immediate cancellation's lines go, with those earlier changes left pending
    on ``sub``. Nothing stays pending on the ended subscription; credit notes are issued now.

    - ``invoice: now``: the pending lines and the credit for unused time on a final invoice
      (Stripe invoice_now=true; Chargebee's unbilled charges invoiced).
    - ``invoice: next_invoice`` under ``pending_lines: any_invoice`` with a credit
      (``credit`` other than ``none``): the pending lines and the credit stay pending, on the
      account, for its next invoice whichever subscription it bills (Stripe prorate=true,
      invoice_now=false: pending items are removed only when both flags are false).
    - any other ``next_invoice``: the subscription has no invoice to come, so its pending
      lines are deleted (Stripe with both flags false; Chargebee ``delete``) and the credit
      for unused time is invoiced now.
    """
    credit = (*routing.invoice, *routing.pending)
    if rule.invoice == "now":
        return Routing((*sub.pending_lines, *credit), (), routing.credit_note, routing.credited_to)
    if policy.pending_lines == "any_invoice" and rule.credit != "none":
        kept = (*sub.pending_lines, *credit)
        return Routing((), (), routing.credit_note, routing.credited_to, account=kept)
    return Routing(credit, (), routing.credit_note, routing.credited_to)


def undo(sub: Subscription) -> Subscription | None:
    """Withdraw the scheduled changes and cancellation; None when nothing was scheduled."""
    if sub.cancel_at is None and not sub.scheduled:
        return None
    return sub.evolve(cancel_at=None, scheduled=())

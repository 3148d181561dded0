"""Subscription services: read, preview, checkout, cancel, undo, subscribe.

Every function takes the engine, the :class:`Principal` and the instant (``at``, aware),
checks access (:mod:`prorata.services.access`), runs in one transaction
(:func:`prorata.services.transaction.run`) and returns JSON-ready data. Mutating services
take an idempotency ``key``. The preview and the checkout call the same core function, so a
checkout at the previewed instant and version bills exactly the previewed lines.

Invariants:
- a checkout applies all of its items or none: the first refusal or version conflict rolls
  the whole cart back; its documents, order, audit rows and outbox events commit together;
- ``expected_version`` (per item) is compared with the stored version under the row lock:
  of many checkouts made against one version, exactly one applies;
- seats assigned to users are never silently dropped: reducing below them is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from prorata.adapters import codec
from prorata.adapters import schema as t
from prorata.adapters.store import StaleVersion
from prorata.core import lifecycle, wording
from prorata.core.calendar import BILLING_TIMES, PeriodUnit, billing_day_fits
from prorata.core.changes import Quote, Refusal, evaluate
from prorata.core.documents import Invoice
from prorata.core.model import Cancel, Change, Subscribe, TermSpec
from prorata.core.money import Money, round_amount, total
from prorata.services import access, terms
from prorata.services.access import Principal
from prorata.services.errors import Conflict, InvalidRequest, NotFound, Refused
from prorata.services.recording import (
    assigned_seats,
    audit,
    load,
    outcome_view,
    publish,
    reader_locale,
)
from prorata.services.transaction import Work, run
from prorata.services.views import (
    document_view,
    instant,
    line_view,
    quote_view,
    subscription_view,
    summary,
)

_TIMINGS = ("immediate", "end_of_term")


@dataclass(frozen=True)
class ChangeInput:
    """One change asked for: ``None`` keeps the current value."""

    subscription: str
    plan: str | None = None
    quantity: int | None = None
    period: str | None = None
    add_products: tuple[str, ...] = field(default=())
    timing: str | None = None
    expected_version: int | None = None

    def body(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "plan": self.plan,
            "quantity": self.quantity,
            "period": self.period,
            "add_products": list(self.add_products),
            "timing": self.timing,
            "expected_version": self.expected_version,
        }


# loading and checking ---------------------------------------------------------------------


def _check_version(key: str, expected: int | None, found: int) -> None:
    if expected is not None and expected != found:
        raise Conflict(subscription=key, expected=expected, found=found)


def _to_change(work: Work, item: ChangeInput, by) -> Change:
    catalog = work.billing.ctx.catalog
    for plan in (item.plan, *item.add_products):
        if plan is not None and plan not in catalog.plans:
            raise InvalidRequest(code="unknown_plan", plan=plan)
    if item.quantity is not None and (
        not isinstance(item.quantity, int) or isinstance(item.quantity, bool) or item.quantity < 1
    ):
        raise InvalidRequest(code="quantity_invalid", quantity=item.quantity)
    period = None
    if item.period is not None:
        try:
            period = PeriodUnit(item.period)
        except ValueError:
            choices = ", ".join(u.value for u in PeriodUnit if u.recurring)
            raise InvalidRequest(
                code="invalid_period", period=item.period, choices=choices
            ) from None
    if item.timing is not None and item.timing not in _TIMINGS:
        raise InvalidRequest(code="invalid_timing", timing=item.timing)
    return Change(
        subscription=item.subscription,
        plan=item.plan,
        quantity=item.quantity,
        period=period,
        add_products=tuple(item.add_products),
        timing=item.timing,
        by=by,
    )


def _refused(refusal: Refusal, **details) -> Refused:
    return Refused(code=refusal.code, message=refusal.message, **details)


def _check_seats(work: Work, sub, change: Change) -> None:
    if change.quantity is None or change.quantity >= sub.quantity:
        return
    assigned = assigned_seats(work, sub.id)
    if change.quantity < assigned:
        locale = reader_locale(work, sub.account)
        params = {
            "assigned": assigned,
            "excess": assigned - change.quantity,
            "quantity": change.quantity,
        }
        message = wording.refusal("seats_assigned", locale, **params)
        raise Refused(code="seats_assigned", message=message, **params)


def order_summary(work: Work, sub, quote: Quote) -> dict:
    """Seed 004's checkout page: the billing period from today, seats, rate, then the
    documents the checkout would issue now (drafts, same core code) with the credit used and
    the total due."""
    after = quote.subscription or sub
    plan = work.billing.ctx.catalog.plan(after.plan)
    balance = work.book.balance(sub.account, sub.currency)
    drafts = work.billing.drafts(quote, work.at, balance)
    invoices = [d for d in drafts if isinstance(d, Invoice)]
    notes = [d for d in drafts if not isinstance(d, Invoice)]
    zero = Money.zero(sub.currency)
    starts = [line.start for line in quote.lines if line.start is not None]
    ends = [line.end for line in quote.lines if line.end is not None]
    return {
        "currency": sub.currency,
        "period_start": instant(min(starts)) if starts else None,
        "period_end": instant(max(ends)) if ends else None,
        "plan": after.plan,
        "seats": after.quantity,
        "rate": str(plan.price),
        "rate_period": str(plan.period),
        "credit_balance": str(balance),
        "subtotal": str(total((d.subtotal for d in invoices), sub.currency)),
        "tax": str(total((d.tax for d in invoices), sub.currency)),
        "credit_used": str(total((d.credit_applied for d in invoices), sub.currency)),
        "credit_note_total": str(total((d.total for d in notes), sub.currency)),
        "total_due": str(
            total((d.amount_due for d in invoices), sub.currency) if invoices else zero
        ),
        "documents": [document_view(d) for d in drafts],
    }


def visible_account_ids(work: Work, account: str | None = None) -> list[int] | None:
    """Account row ids the caller may list (``None``: all of the tenant's), narrowed to
    ``account`` when given (the caller must be allowed to see it)."""
    if account is not None:
        return [work.book.accounts.id_of(account)]
    if work.principal.is_staff:
        return None
    return [work.book.accounts.id_of(k) for k in work.principal.memberships]


# services -------------------------------------------------------------------------------


def detail(work: Work, sub, version: int) -> dict:
    """The subscription as seed 000's product page shows it: signup date, recurring amount
    (list price × quantity per item, rounded once per item), cycle, next due date, payment
    method, status; plus the seats assigned, what waits for a later invoice
    (``pending_lines``: lines left for the next invoice on the subscription, then those of
    it waiting on its account, as they will be billed) and since when the use of its items
    paid in arrears accrues (``in_arrears_since``, billed at the period's end)."""
    account = work.billing.ctx.accounts[sub.account]
    catalog = work.billing.ctx.catalog
    rounding = work.billing.rounding
    amounts = [
        round_amount(catalog.plan(i.plan).price * i.quantity, sub.currency, rounding)
        for i in sub.items
        if catalog.plan(i.plan).period.recurring
    ]
    due = lifecycle.due_at(sub)
    waiting = [line for line in work.book.pending_of(sub.account) if line.subscription == sub.id]
    return subscription_view(sub, version) | {
        "currency": sub.currency,
        "signed_up_at": sub.started_at.isoformat(),
        "recurring_amount": str(total(amounts, sub.currency)) if amounts else None,
        "next_due_at": None if due is None else due.isoformat(),
        "payment_method": account.payment_method,
        "seats_assigned": assigned_seats(work, sub.id),
        "pending_lines": [line_view(line) for line in (*sub.pending_lines, *waiting)],
        "in_arrears_since": instant(sub.accrued_from),
    }


def get_subscription(engine: Engine, principal: Principal, key: str, *, at: datetime) -> dict:
    def read(work: Work) -> dict:
        sub, version = load(work, key)
        return detail(work, sub, version)

    body = {"subscription": key}
    return run(engine, principal, "subscription.read", body, read, at=at, write=False)


def list_subscriptions(
    engine: Engine,
    principal: Principal,
    *,
    at: datetime,
    account: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict:
    """The subscriptions the caller may see, oldest first; ``account`` and ``status`` filter.
    Renewals that fell due are shown caught up (but kept only by the bill run), and the
    ``status`` filter applies to what is shown: a subscription whose stored status may be
    stale (something fell due) is loaded and checked."""

    def read(work: Work) -> dict:
        if account is not None:
            access.ensure_visible(work.principal, account, "account", account)
            if account not in work.billing.ctx.accounts:
                raise NotFound(kind="account", id=account)
        query = select(t.subscriptions.c.key).where(
            t.subscriptions.c.tenant_id == work.principal.tenant_id
        )
        visible = visible_account_ids(work, account)
        if visible is not None:
            query = query.where(t.subscriptions.c.account_id.in_(visible))
        if status is None:
            keys = work.connection.execute(
                query.order_by(t.subscriptions.c.id).limit(limit).offset(offset)
            ).scalars()
            items = [detail(work, *load(work, key)) for key in list(keys)]
            return {"items": items, "limit": limit, "offset": offset}
        stale = t.subscriptions.c.due_at <= work.at
        query = query.where((t.subscriptions.c.status == status) | stale)
        items, skipped = [], 0
        for key in list(work.connection.execute(query.order_by(t.subscriptions.c.id)).scalars()):
            view = detail(work, *load(work, key))
            if view["status"] != status:
                continue
            if skipped < offset:
                skipped += 1
                continue
            items.append(view)
            if len(items) == limit:
                break
        return {"items": items, "limit": limit, "offset": offset}

    body = {"account": account, "status": status, "limit": limit, "offset": offset}
    return run(engine, principal, "subscription.list", body, read, at=at, write=False)


def preview(engine: Engine, principal: Principal, item: ChangeInput, *, at: datetime) -> dict:
    """What the change would do now: the quote (lines, total, timing) or the refusal.

    Nothing is written; the returned ``version`` is what a checkout should expect.
    """

    def quote(work: Work) -> dict:
        sub, version = load(work, item.subscription)
        by = access.actor_for_change(work.principal, sub.account, "subscription", sub.id)
        change = _to_change(work, item, by)
        _check_version(sub.id, item.expected_version, version)
        try:
            _check_seats(work, sub, change)
            outcome = evaluate(work.billing.context_for(sub), sub, change, work.at)
        except Refused as refused:
            outcome = Refusal(refused.code, refused.message)
        if isinstance(outcome, Refusal):
            return {
                "subscription": sub.id,
                "version": version,
                "allowed": False,
                "refusal": {"code": outcome.code, "message": outcome.message},
            }
        return {
            "subscription": sub.id,
            "version": version,
            "allowed": True,
            "quote": quote_view(outcome),
            "summary": order_summary(work, sub, outcome),
        }

    return run(engine, principal, "subscription.preview", item.body(), quote, at=at, write=False)


def check_cart(items: list[ChangeInput]) -> None:
    if not items:
        raise InvalidRequest(code="empty_cart")
    keys = [item.subscription for item in items]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise InvalidRequest(code="duplicate_item", subscription=twice)


def apply_cart(work: Work, items: list[ChangeInput]) -> dict:
    """Apply ``items`` in ``work``'s transaction: all or none; one order records them."""
    check_cart(items)
    keys = [item.subscription for item in items]
    # Load (and lock) every subscription in key order first: no deadlocks between carts.
    loaded = {k: load(work, k) for k in sorted(keys)}
    accounts = {sub.account for sub, _ in loaded.values()}
    if len(accounts) != 1:
        raise InvalidRequest(code="mixed_accounts")
    account = accounts.pop()
    order_id = work.connection.execute(
        insert(t.orders)
        .values(
            tenant_id=work.principal.tenant_id,
            account_id=work.book.accounts.id_of(account),
            created_by=work.principal.user_id,
            status="open",
            created_at=work.at,
        )
        .returning(t.orders.c.id)
    ).scalar_one()
    work.book.order_id = order_id
    work.book.acting_user = work.principal.user_id
    results = []
    for position, item in enumerate(items):
        sub, version = loaded[item.subscription]
        by = access.actor_for_change(work.principal, sub.account, "subscription", sub.id)
        change = _to_change(work, item, by)
        _check_version(sub.id, item.expected_version, version)
        _check_seats(work, sub, change)
        try:
            outcome = work.billing.change(change, work.at)
        except StaleVersion as exc:
            raise Conflict("changed_meanwhile", subscription=sub.id) from exc
        if isinstance(outcome, Refusal):
            raise _refused(outcome, item=position, subscription=sub.id)
        work.connection.execute(
            insert(t.order_items).values(
                order_id=order_id,
                position=position,
                subscription_id=work.book.row_id(sub.id),
                action=codec.encode(change),
                expected_version=item.expected_version,
                outcome=outcome.status,
            )
        )
        after_version = work.book.version_of(sub.id)
        audit(
            work,
            f"subscription.change.{outcome.status}",
            sub,
            summary(sub, version),
            summary(outcome.subscription, after_version),
        )
        publish(work, f"subscription.change.{outcome.status}", outcome)
        results.append(outcome_view(work, outcome))
    status = "completed" if all(r["status"] != "requested" for r in results) else "requested"
    work.connection.execute(update(t.orders).where(t.orders.c.id == order_id).values(status=status))
    return {"order": order_id, "status": status, "items": results}


def checkout(
    engine: Engine,
    principal: Principal,
    items: list[ChangeInput],
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Apply a cart of changes atomically; one order records them."""
    check_cart(items)

    def apply(work: Work) -> dict:
        return apply_cart(work, items)

    body = {"items": [item.body() for item in items]}
    return run(engine, principal, "checkout", body, apply, at=at, key=key, request_id=request_id)


def cancel(
    engine: Engine,
    principal: Principal,
    subscription: str,
    *,
    at: datetime,
    timing: str | None = None,
    expected_version: int | None = None,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Cancel at the end of the term (the usual unsubscribe, seed 003) or immediately."""
    if timing is not None and timing not in _TIMINGS:
        raise InvalidRequest(code="invalid_timing", timing=timing)

    def apply(work: Work) -> dict:
        sub, version = load(work, subscription)
        by = access.actor_for_change(work.principal, sub.account, "subscription", sub.id)
        _check_version(sub.id, expected_version, version)
        work.book.acting_user = work.principal.user_id
        outcome = work.billing.cancel(Cancel(sub.id, timing, by), work.at)
        if isinstance(outcome, Refusal):
            raise _refused(outcome, subscription=sub.id)
        after = summary(outcome.subscription, work.book.version_of(sub.id))
        audit(work, f"subscription.cancel.{outcome.status}", sub, summary(sub, version), after)
        publish(work, f"subscription.cancel.{outcome.status}", outcome)
        return outcome_view(work, outcome)

    body = {"subscription": subscription, "timing": timing, "expected_version": expected_version}
    return run(engine, principal, "cancel", body, apply, at=at, key=key, request_id=request_id)


def undo(
    engine: Engine,
    principal: Principal,
    subscription: str,
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Withdraw a scheduled change or cancellation (before it takes effect)."""

    def apply(work: Work) -> dict:
        sub, version = load(work, subscription)
        access.actor_for_change(work.principal, sub.account, "subscription", sub.id)
        outcome = work.billing.undo(sub.id, work.at)
        if isinstance(outcome, Refusal):
            raise _refused(outcome, subscription=sub.id)
        after = summary(outcome.subscription, work.book.version_of(sub.id))
        audit(work, "subscription.undo", sub, summary(sub, version), after)
        publish(work, "subscription.undo", outcome)
        return outcome_view(work, outcome)

    body = {"subscription": subscription}
    return run(engine, principal, "undo", body, apply, at=at, key=key, request_id=request_id)


def subscribe(
    engine: Engine,
    principal: Principal,
    *,
    account: str,
    plan: str,
    at: datetime,
    subscription: str | None = None,
    quantity: int = 1,
    billing_day: int | None = None,
    billing_time: str | None = None,
    term: TermSpec | None = None,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Start a subscription for ``account`` and issue its first invoice. ``billing_time``
    (``anniversary`` or ``calendar``; None: the policy's) says where its periods start; a
    calendar subscription has no billing day but the 1st. ``term`` is its contract term
    (a recurring period, renewing or not; see :mod:`prorata.services.terms`), none when
    left out.

    The id is chosen by prorata (``sub_<hex>``) unless staff or an API token name it (to
    keep the ids of a system migrated from); customers cannot, since a refusal of an id in
    use would tell them which ids other accounts have.
    """
    if subscription is not None and not principal.is_staff:
        raise InvalidRequest(code="id_not_allowed")
    if billing_time is not None and billing_time not in BILLING_TIMES:
        raise InvalidRequest(code="unknown_billing_time", billing_time=billing_time)
    if not billing_day_fits(billing_time, billing_day):
        raise InvalidRequest(code="billing_day_not_calendar", billing_day=billing_day)
    terms.checked(term)
    if subscription is None:
        subscription = f"sub_{uuid.uuid4().hex[:20]}"

    def apply(work: Work) -> dict:
        access.ensure_visible(work.principal, account, "account", account)
        if account not in work.billing.ctx.accounts:
            raise NotFound(kind="account", id=account)
        if not work.principal.is_staff and work.principal.memberships[account] == "member":
            raise access.Forbidden("member_cannot_subscribe", account=account)
        if plan not in work.billing.ctx.catalog.plans:
            raise InvalidRequest(code="unknown_plan", plan=plan)
        if work.book.subscription(subscription) is not None:
            raise Conflict(
                "duplicate_id", code="duplicate_id", kind="subscription", id=subscription
            )
        if quantity < 1:
            raise InvalidRequest(code="quantity_invalid", quantity=quantity)
        billing = work.billing.ctx.catalog.plans[plan].period
        if term is not None and not term.covers(billing):
            raise InvalidRequest(
                code="term_shorter_than_period",
                term=str(term.period),
                plan=plan,
                period=str(billing),
            )
        spec = Subscribe(
            subscription, account, plan, quantity, billing_day, term, billing_time=billing_time
        )
        outcome = work.billing.subscribe(spec, work.at, work.book.config.currency)
        sub = outcome.subscription
        audit(work, "subscription.create", sub, None, summary(sub, 1))
        publish(work, "subscription.created", outcome)
        return {
            "subscription": subscription_view(sub, work.book.version_of(sub.id)),
            "documents": [document_view(doc) for doc in outcome.documents],
        }

    body = {
        "subscription": subscription,
        "account": account,
        "plan": plan,
        "quantity": quantity,
        "billing_day": billing_day,
        "billing_time": billing_time,
    }
    if term is not None:  # left out otherwise: keys kept before terms were taken still match
        body["term"] = terms.body_of(term)
    return run(engine, principal, "subscribe", body, apply, at=at, key=key, request_id=request_id)

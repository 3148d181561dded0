"""Seats of a per-user subscription assigned to users of its account (seed 004).

Invariants: a user holds at most one seat of a subscription; the seats held never exceed
the subscription's quantity; releasing keeps the row (``released_at``) as history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from prorata.adapters import journal
from prorata.adapters import schema as t
from prorata.core import wording
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import NotFound, Refused, ensure_id
from prorata.services.recording import assigned_seats, audit, load, reader_locale
from prorata.services.transaction import Work, run


def _member(work: Work, account: str, user_id: int) -> None:
    ensure_id("user", user_id)
    found = work.connection.execute(
        select(t.memberships.c.id).where(
            t.memberships.c.user_id == user_id,
            t.memberships.c.account_id == work.book.accounts.id_of(account),
        )
    ).one_or_none()
    if found is None:
        raise NotFound("not_a_member", user=user_id, account=account)


def _held(work: Work, subscription: str, user_id: int):
    return work.connection.execute(
        select(t.seat_assignments.c.id).where(
            t.seat_assignments.c.subscription_id == work.book.row_id(subscription),
            t.seat_assignments.c.user_id == user_id,
            t.seat_assignments.c.released_at.is_(None),
        )
    ).scalar_one_or_none()


def assign(
    engine: Engine,
    principal: Principal,
    subscription: str,
    user_id: int,
    *,
    at: datetime,
    key: str | None = None,
) -> dict:
    def apply(work: Work) -> dict:
        sub, _ = load(work, subscription)
        access.actor_for_change(work.principal, sub.account, "subscription", subscription)
        _member(work, sub.account, user_id)
        locale = reader_locale(work, sub.account)
        if _held(work, subscription, user_id) is not None:
            message = wording.refusal("seat_already_assigned", locale)
            raise Refused(code="seat_already_assigned", message=message)
        if assigned_seats(work, subscription) >= sub.quantity:
            message = wording.refusal("no_seat_available", locale, quantity=sub.quantity)
            raise Refused(code="no_seat_available", message=message, quantity=sub.quantity)
        before = seats_view(work, subscription, sub.quantity)
        work.connection.execute(
            insert(t.seat_assignments).values(
                subscription_id=work.book.row_id(subscription),
                user_id=user_id,
                assigned_at=work.at,
                assigned_by=work.principal.user_id,
            )
        )
        return _recorded(work, "assign", sub, user_id, before)

    body = {"subscription": subscription, "user": user_id}
    return run(engine, principal, "seat.assign", body, apply, at=at, key=key)


def release(
    engine: Engine,
    principal: Principal,
    subscription: str,
    user_id: int,
    *,
    at: datetime,
    key: str | None = None,
) -> dict:
    def apply(work: Work) -> dict:
        sub, _ = load(work, subscription)
        access.actor_for_change(work.principal, sub.account, "subscription", subscription)
        ensure_id("user", user_id)
        held = _held(work, subscription, user_id)
        if held is None:
            raise NotFound("no_seat_held", user=user_id, subscription=subscription)
        before = seats_view(work, subscription, sub.quantity)
        work.connection.execute(
            update(t.seat_assignments)
            .where(t.seat_assignments.c.id == held)
            .values(released_at=work.at, released_by=work.principal.user_id)
        )
        return _recorded(work, "release", sub, user_id, before)

    body = {"subscription": subscription, "user": user_id}
    return run(engine, principal, "seat.release", body, apply, at=at, key=key)


def _recorded(work: Work, verb: str, sub, user_id: int, before: dict) -> dict:
    """Audit and publish a seat change; returns the seats after it."""
    after = seats_view(work, sub.id, sub.quantity)
    audit(work, f"seat.{verb}", sub, before, after)
    payload = {"subscription": sub.id, "user": user_id}
    topic = {"assign": "seat.assigned", "release": "seat.released"}[verb]
    journal.emit(work.connection, work.principal.tenant_id, topic, payload, work.at)
    return after


def seats_view(work: Work, subscription: str, quantity: int) -> dict:
    rows = work.connection.execute(
        select(t.seat_assignments.c.user_id, t.seat_assignments.c.assigned_at)
        .where(
            t.seat_assignments.c.subscription_id == work.book.row_id(subscription),
            t.seat_assignments.c.released_at.is_(None),
        )
        .order_by(t.seat_assignments.c.id)
    )
    zone = work.at.tzinfo
    holders = [
        {"user": r.user_id, "since": r.assigned_at.astimezone(zone).isoformat()} for r in rows
    ]
    return {"subscription": subscription, "seats": quantity, "assigned": holders}


def list_seats(engine: Engine, principal: Principal, subscription: str, *, at: datetime) -> dict:
    """Who holds the seats of ``subscription`` now."""

    def read(work: Work) -> dict:
        sub, _ = load(work, subscription)
        return seats_view(work, subscription, sub.quantity)

    body = {"subscription": subscription}
    return run(engine, principal, "seat.list", body, read, at=at, write=False)

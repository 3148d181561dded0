"""Requests waiting for a person: approve, reject, fulfil (staff only), and list them.

``approve`` applies a change or cancellation that needed approval (seed 004: tier cuts
through support); ``fulfil`` marks a manual set-up done (seed 000) and notifies the
customer through the outbox; ``reject`` closes the request without changing anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from prorata.adapters import journal
from prorata.adapters import schema as t
from prorata.core.changes import Refusal
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import InvalidRequest, NotFound, Refused, ensure_id
from prorata.services.recording import audit, outcome_view, publish
from prorata.services.subscriptions import visible_account_ids
from prorata.services.transaction import Work, run
from prorata.services.views import request_view, summary

REQUEST_STATES = ("pending", "approved", "rejected")
_DECISIONS = {
    "approve": ("approval_required", True),
    "fulfil": ("manual_fulfillment", True),
    "reject": (None, False),
}


def decide(
    engine: Engine,
    principal: Principal,
    number: int,
    decision: str,
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """``decision``: ``approve`` (approval requests), ``fulfil`` (manual set-ups) or
    ``reject`` (either)."""
    if decision not in _DECISIONS:
        raise InvalidRequest("invalid_decision", code="invalid_decision", decision=decision)
    reason, approve = _DECISIONS[decision]
    ensure_id("request", number, bits=31)

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, "decide")
        request = work.book.request(number)
        if request is None:
            raise NotFound(kind="request", id=number)
        if reason is not None and request.reason != reason:
            raise InvalidRequest(
                "wrong_decision",
                code="wrong_decision",
                request=number,
                reason=request.reason,
                decision=decision,
            )
        sub = work.book.subscription(request.subscription)
        version = work.book.version_of(sub.id)
        work.book.acting_user = work.principal.user_id
        outcome = work.billing.decide(number, approve, work.at)
        if isinstance(outcome, Refusal):
            raise Refused(code=outcome.code, message=outcome.message, request=number)
        after = summary(outcome.subscription, work.book.version_of(sub.id))
        audit(work, f"request.{decision}", sub, summary(sub, version), after)
        topic = "request.fulfilled" if decision == "fulfil" else f"request.{decision}d"
        journal.emit(
            work.connection, work.principal.tenant_id, topic, request_view(outcome.request), work.at
        )
        if outcome.status == "applied" and decision == "approve":
            publish(work, "subscription.change.applied", outcome)
        return {"request": request_view(outcome.request), "result": outcome_view(work, outcome)}

    body = {"request": number, "decision": decision}
    return run(engine, principal, "decide", body, apply, at=at, key=key, request_id=request_id)


def _visible_requests(work: Work, *where):
    ids = visible_account_ids(work)
    if ids is not None:
        where = (*where, t.subscriptions.c.account_id.in_(ids))
    return work.book.requests(*where)


def list_requests(
    engine: Engine, principal: Principal, *, at: datetime, state: str | None = None
) -> dict:
    """Requests on the subscriptions the caller may see (staff: all), by number."""
    if state is not None and state not in REQUEST_STATES:
        raise InvalidRequest(
            "invalid_value", field="state", value=state, why=", ".join(REQUEST_STATES)
        )

    def read(work: Work) -> dict:
        where = () if state is None else (t.requests.c.state == state,)
        return {"items": [request_view(r) for r in _visible_requests(work, *where)]}

    body = {"state": state}
    return run(engine, principal, "request.list", body, read, at=at, write=False)


def get_request(engine: Engine, principal: Principal, number: int, *, at: datetime) -> dict:
    ensure_id("request", number, bits=31)

    def read(work: Work) -> dict:
        found = _visible_requests(work, t.requests.c.number == number)
        if not found:
            raise NotFound(kind="request", id=number)
        return request_view(found[0])

    return run(engine, principal, "request.read", {"request": number}, read, at=at, write=False)

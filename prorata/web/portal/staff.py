"""The back office, for the seller's support and account managers: the queue of requests
waiting for approval or a manual set-up, the accounts and their subscriptions, amending a
subscription on a customer's behalf (the customer's change wizard, audited as staff on
the account's behalf), credit notes issued by hand and a subscription's audit trail."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response

from prorata.services import accounts, backoffice, documents, requests, subscriptions
from prorata.services.errors import Forbidden, NotFound, ServiceError
from prorata.web.portal.customer import plans_of
from prorata.web.portal.web import PortalRoute, Viewer, new_key, viewer

router = APIRouter(prefix="/backoffice", route_class=PortalRoute)


def staff(seen: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    if not seen.is_staff:
        raise Forbidden("staff_only", action="decide")
    return seen


Staff = Annotated[Viewer, Depends(staff)]


def _redirect(url: str, **params: str) -> RedirectResponse:
    if params:
        url += "?" + urlencode(params)
    return RedirectResponse(url, status_code=303)


def _subscription_names(seen: Viewer) -> dict[str, dict]:
    found = subscriptions.list_subscriptions(seen.engine, seen.principal, at=seen.at, limit=200)
    return {s["id"]: s for s in found["items"]}


@router.get("", include_in_schema=False)
def queue(seen: Staff, done: str = "") -> Response:
    """Pending approvals and manual fulfilments, oldest first; then the accounts."""
    return _queue(seen, done=done)


def _queue(seen: Viewer, *, done: str = "", error: str | None = None, status: int = 200):
    pending = requests.list_requests(seen.engine, seen.principal, at=seen.at, state="pending")
    listed = accounts.list_accounts(seen.engine, seen.principal, at=seen.at, limit=200)
    return seen.render(
        "backoffice/queue.html",
        status=status,
        plans=plans_of(seen),
        pending=pending["items"],
        subs=_subscription_names(seen),
        accounts=listed["items"],
        key=new_key(),
        done=done,
        error=error,
    )


@router.post("/requests/{number}/{decision}", include_in_schema=False)
def decide(
    seen: Staff,
    number: int,
    decision: str,
    key: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    if decision not in ("approve", "reject", "fulfil"):
        raise NotFound(kind="route", id=decision)
    try:
        requests.decide(
            seen.engine,
            seen.principal,
            number,
            decision,
            at=seen.at,
            key=key,
            request_id=seen.request.state.request_id,
        )
    except ServiceError as exc:
        if isinstance(exc, NotFound | Forbidden):
            raise
        return _queue(seen, error=exc.message_in(seen.language), status=422)
    return _redirect("/portal/backoffice", done=decision)


@router.get("/accounts/{account}", include_in_schema=False)
def account(seen: Staff, account: str) -> Response:
    found = accounts.get_account(seen.engine, seen.principal, account, at=seen.at)
    subs = subscriptions.list_subscriptions(
        seen.engine, seen.principal, at=seen.at, account=account, limit=200
    )
    docs = documents.list_documents(
        seen.engine, seen.principal, at=seen.at, account=account, limit=200
    )
    credit = documents.get_credit(seen.engine, seen.principal, account, at=seen.at)
    return seen.render(
        "backoffice/account.html",
        plans=plans_of(seen),
        account=found,
        subs=subs["items"],
        docs=docs["items"],
        credit=credit,
    )


@router.get("/subscriptions/{subscription}", include_in_schema=False)
def subscription(seen: Staff, subscription: str, done: str = "") -> Response:
    """A subscription as support sees it: its state, what to do for the customer (amend,
    credit note) and its audit trail."""
    return _subscription(seen, subscription, done=done)


def _subscription(seen: Viewer, subscription: str, *, done="", error=None, status=200):
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    trail = backoffice.audit_trail(seen.engine, seen.principal, subscription, at=seen.at)
    found = accounts.get_account(seen.engine, seen.principal, sub["account"], at=seen.at)
    invoices = documents.list_documents(
        seen.engine, seen.principal, at=seen.at, account=sub["account"], type="invoice", limit=200
    )
    return seen.render(
        "backoffice/subscription.html",
        status=status,
        plans=plans_of(seen),
        sub=sub,
        account=found,
        trail=trail["entries"],
        invoices=invoices["items"],
        key=new_key(),
        done=done,
        error=error,
    )


@router.post("/subscriptions/{subscription}/credit-notes", include_in_schema=False)
def credit_note(
    seen: Staff,
    subscription: str,
    amount: Annotated[str, Form(min_length=1, max_length=32)],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    key: Annotated[str, Form(min_length=1, max_length=200)],
    refers_to: Annotated[str | None, Form(max_length=32)] = None,
) -> Response:
    try:
        note = backoffice.issue_manual_credit_note(
            seen.engine,
            seen.principal,
            subscription,
            amount=amount,
            reason=reason,
            refers_to=refers_to or None,
            at=seen.at,
            key=key,
            request_id=seen.request.state.request_id,
        )
    except ServiceError as exc:
        if isinstance(exc, NotFound | Forbidden) and exc.params.get("kind") != "invoice":
            raise
        return _subscription(seen, subscription, error=exc.message_in(seen.language), status=422)
    return _redirect(
        f"/portal/backoffice/subscriptions/{subscription}", done=f"credit_note:{note['number']}"
    )

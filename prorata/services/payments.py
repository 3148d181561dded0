"""The customer's side of payments: the payment method on file, and paying an open invoice
now (seed 000's PayPal/card, seed 004's checkout asking for a payment method).

A payment method is a gateway token, never a card number. Paying now is the collection's
own three steps (:mod:`prorata.services.collection_run`): the invoice's collection is made
due now in one transaction, the gateway is called outside any transaction, and the answer
is recorded in another; a change waiting for the invoice then takes effect.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine

from prorata.adapters.gateways import Gateway, GatewayError, parse_sandbox_token
from prorata.core.payments import METHOD_TYPES, Collection
from prorata.services import access, collection_run
from prorata.services.access import Principal
from prorata.services.errors import Conflict, Forbidden, InvalidRequest, NotFound
from prorata.services.recording import audit_action
from prorata.services.transaction import Work, run

BILLING_ROLES = ("owner", "billing_contact")


def _ensure_payer(work: Work, account: str) -> None:
    """Staff, or the account's owner or billing contact (a member cannot pay or change
    how the account pays)."""
    access.ensure_visible(work.principal, account, "account", account)
    if account not in work.billing.ctx.accounts:
        raise NotFound(kind="account", id=account)
    role = None if work.principal.is_staff else work.principal.memberships[account]
    if role not in (None, *BILLING_ROLES):
        raise Forbidden("role_cannot_manage", role=role, account=account)


def method_view(account) -> dict:
    token = account.payment_token
    return {
        "account": account.id,
        "type": account.payment_method,
        "on_file": token is not None,
        # enough to recognise the method, never the token itself
        "hint": token.rsplit(":", 1)[-1] if token and token.startswith("sandbox:") else None,
        "auto_pay": account.auto_pay,
    }


def set_payment_method(
    engine: Engine,
    principal: Principal,
    account: str,
    *,
    type: str,
    token: str,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Put a tokenised payment method on file for ``account``; its open collections use it
    from their next attempt."""
    if type not in METHOD_TYPES:
        raise InvalidRequest("invalid_value", field="type", value=type, why=", ".join(METHOD_TYPES))
    try:
        method, _ = parse_sandbox_token(token)
    except GatewayError as exc:
        raise InvalidRequest("unusable_payment_token", code="invalid_value", why=str(exc)) from None
    if method != type:
        raise InvalidRequest("invalid_value", field="token", value=token, why=f"a token for {type}")

    def apply(work: Work) -> dict:
        _ensure_payer(work, account)
        before = method_view(work.billing.ctx.accounts[account])
        updated = work.billing.set_payment_method(account, type, token)
        after = method_view(updated)
        audit_action(
            work,
            "account.payment_method",
            account,
            before,
            after,
            account_id=work.book.accounts.id_of(account),
            customer_role=None if work.principal.is_staff else work.principal.memberships[account],
        )
        return after

    body = {"account": account, "type": type, "token": token}
    return run(
        engine, principal, "payment_method.set", body, apply, at=at, key=key, request_id=request_id
    )


def pay_invoice(
    engine: Engine,
    gateway: Gateway,
    principal: Principal,
    number: str,
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Charge open invoice ``number`` now with the method on file; the outcome."""

    def prepare(work: Work) -> dict:
        invoice = work.book.invoice(number)
        if invoice is None:
            raise NotFound(kind="invoice", id=number)
        access.ensure_visible(work.principal, invoice.account, "invoice", number)
        _ensure_payer(work, invoice.account)
        if invoice.status != "open":
            raise Conflict(
                "invoice_not_open", code="invoice_not_open", invoice=number, status=invoice.status
            )
        account = work.billing.ctx.accounts[invoice.account]
        if not account.payment_token:
            raise InvalidRequest(
                "invalid_value", field="payment_method", value=None, why="no payment method on file"
            )
        current = work.book.collection(number)
        subs = tuple(dict.fromkeys(line.subscription for line in invoice.lines))
        if current is None:
            due = work.billing.outstanding(invoice)  # less any adjustment credit note
            current = Collection(number, invoice.account, subs, due, at)
        elif current.state in ("paid", "void"):
            raise Conflict(
                "invoice_not_open", code="invoice_not_open", invoice=number, status=invoice.status
            )
        # a payment the customer asks for happens now; the dunning schedule is unchanged
        work.book.save_collection(_due_now(current, at))
        return {"tenant": work.principal.tenant_id}

    prepared = run(
        engine,
        principal,
        "invoice.pay",
        {"number": number},
        prepare,
        at=at,
        key=key,
        request_id=request_id,
    )
    claimed = collection_run.claim(engine, at, tenant_id=prepared["tenant"], invoice=number)
    if claimed is None:  # another collector holds it right now
        raise Conflict(
            "invoice_not_open", code="payment_in_progress", invoice=number, status="being collected"
        )
    result = collection_run.call(gateway, claimed)
    outcome = collection_run.record(engine, claimed, result)
    return {
        "invoice": number,
        "outcome": outcome or "already_recorded",
        "reference": result.reference,
    }


def _due_now(c: Collection, at: datetime) -> Collection:
    """``c`` attempted at ``at``; an exhausted one gets the one more try the customer asks
    for (failing again leaves it exhausted)."""
    return replace(c, next_attempt_at=at, state="retrying" if c.state == "exhausted" else c.state)


def collect_issued(engine: Engine, gateway: Gateway, tenant_id: int, result: dict, at) -> dict:
    """After a checkout committed: charge, now, each invoice it issued that waits for
    collection, and add what happened to the response as ``payments``. A change the
    policy holds until payment (``payment.change``) takes effect here if the charge
    succeeds; a declined one leaves the invoice open for dunning or a later payment."""
    numbers = [
        doc["number"]
        for item in result.get("items", [result])
        for doc in item.get("documents", [])
        if doc["type"] == "invoice" and doc["status"] == "open"
    ]
    done = []
    for number in numbers:
        claimed = collection_run.claim(engine, at, tenant_id=tenant_id, invoice=number)
        if claimed is None:
            continue  # not collected by a gateway, or settled already (a replay)
        answer = collection_run.call(gateway, claimed)
        outcome = collection_run.record(engine, claimed, answer)
        done.append({"invoice": number, "outcome": outcome or "already_recorded"})
    return result | {"payments": done}

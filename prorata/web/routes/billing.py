"""Catalog, subscriptions, previews, carts, checkout, cancellation, seats and requests."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from prorata.services import carts, catalog, payments, requests, seats, subscriptions
from prorata.web.deps import Limit, Offset, Read, Support, Write
from prorata.web.routes.payments import gateway
from prorata.web.schemas import (
    CancelBody,
    CartBody,
    ChangeBody,
    CheckoutBody,
    SeatBody,
    SubscribeBody,
)

router = APIRouter()


@router.get("/catalog", tags=["catalog"], summary="Products and plans")
def get_catalog(call: Read) -> dict:
    return catalog.get_catalog(call.engine, call.principal, at=call.at)


@router.get("/subscriptions", tags=["subscriptions"], summary="Subscriptions the caller sees")
def list_subscriptions(
    call: Read,
    account: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    return subscriptions.list_subscriptions(
        call.engine,
        call.principal,
        at=call.at,
        account=account,
        status=status,
        limit=limit,
        offset=offset,
    )


@router.post("/subscriptions", tags=["subscriptions"], status_code=201, summary="Subscribe")
def subscribe(body: SubscribeBody, call: Write) -> dict:
    return subscriptions.subscribe(
        call.engine,
        call.principal,
        account=body.account,
        plan=body.plan,
        quantity=body.quantity,
        billing_day=body.billing_day,
        billing_time=body.billing_time,
        term=body.term.to_spec() if body.term else None,
        subscription=body.id,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.get("/subscriptions/{subscription}", tags=["subscriptions"], summary="Detail")
def get_subscription(subscription: str, call: Read) -> dict:
    return subscriptions.get_subscription(call.engine, call.principal, subscription, at=call.at)


@router.get(
    "/subscriptions/{subscription}/options",
    tags=["subscriptions"],
    summary="Upgrade and downgrade options (the MISE À NIVEAU button)",
)
def upgrade_options(subscription: str, call: Read) -> dict:
    return catalog.upgrade_options(call.engine, call.principal, subscription, at=call.at)


@router.post(
    "/subscriptions/{subscription}/preview",
    tags=["subscriptions"],
    summary="What a change would do now: quote and order summary, or the refusal",
)
def preview(subscription: str, body: ChangeBody, call: Read) -> dict:
    return subscriptions.preview(
        call.engine, call.principal, body.to_input(subscription), at=call.at
    )


@router.post(
    "/subscriptions/{subscription}/cancel",
    tags=["subscriptions"],
    summary="Cancel (at the end of the term by default: access until then)",
)
def cancel(subscription: str, body: CancelBody, call: Write) -> dict:
    return subscriptions.cancel(
        call.engine,
        call.principal,
        subscription,
        timing=body.timing,
        expected_version=body.expected_version,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.post(
    "/subscriptions/{subscription}/undo",
    tags=["subscriptions"],
    summary="Withdraw a scheduled change or cancellation",
)
def undo(subscription: str, call: Write) -> dict:
    return subscriptions.undo(
        call.engine,
        call.principal,
        subscription,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.get("/subscriptions/{subscription}/seats", tags=["seats"], summary="Seat holders")
def list_seats(subscription: str, call: Read) -> dict:
    return seats.list_seats(call.engine, call.principal, subscription, at=call.at)


@router.post(
    "/subscriptions/{subscription}/seats",
    tags=["seats"],
    status_code=201,
    summary="Assign a seat to a user of the account",
)
def assign_seat(subscription: str, body: SeatBody, call: Write) -> dict:
    return seats.assign(
        call.engine, call.principal, subscription, body.user, at=call.at, key=call.key
    )


@router.delete(
    "/subscriptions/{subscription}/seats/{user}", tags=["seats"], summary="Release a seat"
)
def release_seat(subscription: str, user: int, call: Write) -> dict:
    return seats.release(call.engine, call.principal, subscription, user, at=call.at, key=call.key)


@router.post("/checkout", tags=["carts"], summary="Apply several changes at once (one order)")
def checkout(body: CheckoutBody, call: Write) -> dict:
    items = [item.to_input(item.subscription) for item in body.items]
    done = subscriptions.checkout(
        call.engine, call.principal, items, at=call.at, key=call.key, request_id=call.request_id
    )
    return payments.collect_issued(call.engine, gateway(), call.principal.tenant_id, done, call.at)


@router.post("/carts", tags=["carts"], status_code=201, summary="Open a cart for an account")
def create_cart(body: CartBody, call: Write) -> dict:
    return carts.create_cart(
        call.engine, call.principal, account=body.account, at=call.at, key=call.key
    )


@router.get("/carts/{cart}", tags=["carts"], summary="The cart and its order summary")
def get_cart(cart: str, call: Read) -> dict:
    return carts.get_cart(call.engine, call.principal, cart, at=call.at)


@router.put(
    "/carts/{cart}/items/{subscription}",
    tags=["carts"],
    summary="Put a change of a subscription in the cart (replaces an earlier one)",
)
def put_cart_item(cart: str, subscription: str, body: ChangeBody, call: Write) -> dict:
    return carts.put_item(
        call.engine, call.principal, cart, body.to_input(subscription), at=call.at, key=call.key
    )


@router.delete("/carts/{cart}/items/{subscription}", tags=["carts"], summary="Remove a change")
def remove_cart_item(cart: str, subscription: str, call: Write) -> dict:
    return carts.remove_item(
        call.engine, call.principal, cart, subscription, at=call.at, key=call.key
    )


@router.post("/carts/{cart}/checkout", tags=["carts"], summary="Check the cart out")
def checkout_cart(cart: str, call: Write) -> dict:
    done = carts.checkout_cart(
        call.engine, call.principal, cart, at=call.at, key=call.key, request_id=call.request_id
    )
    return payments.collect_issued(call.engine, gateway(), call.principal.tenant_id, done, call.at)


@router.get("/requests", tags=["requests"], summary="Requests waiting for a person, and past ones")
def list_requests(
    call: Read, state: Literal["pending", "approved", "rejected"] | None = None
) -> dict:
    return requests.list_requests(call.engine, call.principal, at=call.at, state=state)


@router.get("/requests/{number}", tags=["requests"], summary="One request")
def get_request(number: int, call: Read) -> dict:
    return requests.get_request(call.engine, call.principal, number, at=call.at)


@router.post(
    "/requests/{number}/{decision}",
    tags=["requests"],
    summary="Approve, reject or fulfil a request (support)",
)
def decide(number: int, decision: Literal["approve", "reject", "fulfil"], call: Support) -> dict:
    return requests.decide(
        call.engine,
        call.principal,
        number,
        decision,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )

"""Carts: changes gathered for one account, reviewed, then checked out together (seed 004).

Invariants:
- a cart belongs to one account and holds at most one change per subscription (adding a
  second change to a subscription replaces the first: "Modifier la commande");
- only a caller who may change the account's subscriptions may create, fill or check out
  its carts; others see nothing (``not_found``) or are refused (``forbidden``);
- reading a cart runs the checkout itself in a transaction that is rolled back, so the
  summary it shows (documents, credit used, total due) is what the checkout would issue
  at that instant; its documents are numbered ``DRAFT``;
- a cart is checked out once: its order is recorded on it and later checkouts with
  another idempotency key are refused (``cart_closed``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from prorata.adapters import schema as t
from prorata.adapters.store import upsert
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from prorata.services.recording import load
from prorata.services.subscriptions import ChangeInput, apply_cart
from prorata.services.transaction import Work, run


def _cart(work: Work, key: str, *, lock: bool = False):
    query = (
        select(t.carts, t.accounts.c.key.label("account_key"))
        .join(t.accounts, t.accounts.c.id == t.carts.c.account_id)
        .where(t.carts.c.tenant_id == work.principal.tenant_id, t.carts.c.key == key)
    )
    if lock and work.connection.dialect.name == "postgresql":
        query = query.with_for_update(of=t.carts)
    row = work.connection.execute(query).one_or_none()
    if row is None:
        raise NotFound(kind="cart", id=key)
    access.actor_for_change(work.principal, row.account_key, "cart", key)
    return row


def _items(work: Work, cart_id: int) -> list[ChangeInput]:
    rows = work.connection.execute(
        select(t.cart_items.c.body)
        .where(t.cart_items.c.cart_id == cart_id)
        .order_by(t.cart_items.c.id)
    ).scalars()
    items = []
    for text in rows:
        body = json.loads(text)
        body["add_products"] = tuple(body.get("add_products") or ())
        items.append(ChangeInput(**body))
    return items


def _open(row) -> None:
    if row.status != "open":
        raise Conflict("cart_closed", code="cart_closed", cart=row.key)


def _view(work: Work, row) -> dict:
    return {
        "id": row.key,
        "account": row.account_key,
        "status": row.status,
        "order": row.order_id,
        "created_at": row.created_at.astimezone(work.at.tzinfo).isoformat(),
        "items": [item.body() for item in _items(work, row.id)],
    }


def create_cart(
    engine: Engine, principal: Principal, *, account: str, at: datetime, key: str | None = None
) -> dict:
    def apply(work: Work) -> dict:
        access.actor_for_change(work.principal, account, "account", account)
        if account not in work.billing.ctx.accounts:
            raise NotFound(kind="account", id=account)
        cart_key = f"cart_{uuid.uuid4().hex[:20]}"
        work.connection.execute(
            insert(t.carts).values(
                tenant_id=work.principal.tenant_id,
                key=cart_key,
                account_id=work.book.accounts.id_of(account),
                created_by=work.principal.user_id,
                status="open",
                created_at=work.at,
            )
        )
        return _view(work, _cart(work, cart_key))

    return run(engine, principal, "cart.create", {"account": account}, apply, at=at, key=key)


def put_item(
    engine: Engine,
    principal: Principal,
    cart: str,
    item: ChangeInput,
    *,
    at: datetime,
    key: str | None = None,
) -> dict:
    """Add ``item`` to the cart, replacing an earlier change of the same subscription."""

    def apply(work: Work) -> dict:
        row = _cart(work, cart, lock=True)
        _open(row)
        sub, _ = load(work, item.subscription)
        if sub.account != row.account_key:
            raise InvalidRequest("mixed_accounts", code="mixed_accounts")
        upsert(
            work.connection,
            t.cart_items,
            {"cart_id": row.id, "subscription_key": sub.id, "body": json.dumps(item.body())},
            ["cart_id", "subscription_key"],
        )
        work.connection.execute(
            update(t.cart_items)
            .where(t.cart_items.c.cart_id == row.id, t.cart_items.c.subscription_key == sub.id)
            .values(body=json.dumps(item.body()))
        )
        return _view(work, row)

    body = {"cart": cart, "item": item.body()}
    return run(engine, principal, "cart.put_item", body, apply, at=at, key=key)


def remove_item(
    engine: Engine,
    principal: Principal,
    cart: str,
    subscription: str,
    *,
    at: datetime,
    key: str | None = None,
) -> dict:
    def apply(work: Work) -> dict:
        row = _cart(work, cart, lock=True)
        _open(row)
        gone = work.connection.execute(
            delete(t.cart_items).where(
                t.cart_items.c.cart_id == row.id, t.cart_items.c.subscription_key == subscription
            )
        ).rowcount
        if not gone:
            raise NotFound(kind="cart_item", id=subscription)
        return _view(work, row)

    body = {"cart": cart, "subscription": subscription}
    return run(engine, principal, "cart.remove_item", body, apply, at=at, key=key)


def get_cart(engine: Engine, principal: Principal, cart: str, *, at: datetime) -> dict:
    """The cart and the order summary its checkout would produce now (or why it would fail)."""

    def read(work: Work) -> dict:
        row = _cart(work, cart)
        view = _view(work, row)
        items = _items(work, row.id)
        if row.status != "open" or not items:
            return view | {"summary": None}
        try:
            result = apply_cart(work, items)
        except ServiceError as exc:
            error = {"code": exc.code, "message": exc.message_in(work.principal.locale or "en")}
            return view | {"summary": {"ready": False, "error": error, "details": exc.params}}
        for item in result["items"]:
            for doc in item["documents"]:
                doc["number"] = "DRAFT"
        return view | {"summary": {"ready": True, "items": result["items"]}}

    return run(engine, principal, "cart.read", {"cart": cart}, read, at=at, write=False)


def checkout_cart(
    engine: Engine,
    principal: Principal,
    cart: str,
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    def apply(work: Work) -> dict:
        row = _cart(work, cart, lock=True)
        _open(row)
        result = apply_cart(work, _items(work, row.id))
        work.connection.execute(
            update(t.carts)
            .where(t.carts.c.id == row.id, t.carts.c.status == "open")
            .values(status="checked_out", order_id=result["order"])
        )
        return result | {"cart": cart}

    body = {"cart": cart}
    return run(
        engine, principal, "cart.checkout", body, apply, at=at, key=key, request_id=request_id
    )

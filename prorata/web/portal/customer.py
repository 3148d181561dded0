"""The customer's pages: products and services (seed 000), the change wizard with its order
summary, checkout and confirmation (seed 004), the cart, cancellation (seed 003), seats
(seed 004), licence orders (seed 001), the billing module and documents (seed 003) and
notifications (seed 000's "you will be told when the service is ready").

Every number on these pages comes from the services (the API's own code paths): the
summary is :func:`subscriptions.preview`, the checkout :func:`subscriptions.checkout`, the
options :func:`catalog.upgrade_options`. Nothing here computes money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import RedirectResponse, Response

from prorata.services import (
    accounts,
    backoffice,
    carts,
    catalog,
    documents,
    renderings,
    requests,
    seats,
    subscriptions,
)
from prorata.services.errors import Forbidden, NotFound, ServiceError
from prorata.services.subscriptions import ChangeInput
from prorata.web.portal.web import PortalRoute, Viewer, new_key, viewer

router = APIRouter(route_class=PortalRoute)
Seen = Annotated[Viewer, Depends(viewer)]
CART_COOKIE = "prorata_cart"


# what the pages share ---------------------------------------------------------------------


@dataclass
class Plans:
    """The tenant's catalog as the viewer reads it."""

    plans: dict[str, dict]
    products: dict[str, dict]

    def name(self, plan_id: str) -> str:
        plan = self.plans.get(plan_id)
        return plan["name"] if plan else plan_id

    def product_name(self, plan_id: str) -> str:
        plan = self.plans.get(plan_id)
        return plan["product_name"] if plan else ""

    def of_product(self, plan_id: str) -> list[dict]:
        product = self.plans[plan_id]["product"]
        return [p for p in self.plans.values() if p["product"] == product]


def plans_of(seen: Viewer) -> Plans:
    found = catalog.get_catalog(seen.engine, seen.principal, at=seen.at)
    return Plans(
        {p["id"]: p for p in found["plans"]},
        {p["id"]: p for p in found["products"]},
    )


def _render(seen: Viewer, template: str, status: int = 200, **context) -> Response:
    context.setdefault("plans", None)
    return seen.render(template, status=status, **context)


def _may_change(seen: Viewer, account: str) -> bool:
    return seen.is_staff or seen.principal.memberships.get(account) in ("owner", "billing_contact")


def _requests_of(seen: Viewer, subscription: str | None = None) -> list[dict]:
    items = requests.list_requests(seen.engine, seen.principal, at=seen.at)["items"]
    if subscription is not None:
        items = [r for r in items if r["subscription"] == subscription]
    return items


def _redirect(url: str, **params: str) -> RedirectResponse:
    if params:
        url += "?" + urlencode(params)
    return RedirectResponse(url, status_code=303)


# home and products ------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def home(seen: Seen) -> Response:
    if seen.is_staff:
        return _redirect("/portal/backoffice")
    return _redirect("/portal/products")


@router.get("/products", include_in_schema=False)
def products(seen: Seen) -> Response:
    """« Mes produits & services »: the recurring subscriptions, then licence orders."""
    plans = plans_of(seen)
    items = subscriptions.list_subscriptions(seen.engine, seen.principal, at=seen.at, limit=200)
    services = [s for s in items["items"] if s["period"] != "one_time"]
    orders = [s for s in items["items"] if s["period"] == "one_time"]
    return _render(seen, "products.html", plans=plans, services=services, orders=orders)


@router.get("/products/{subscription}", include_in_schema=False)
def product(seen: Seen, subscription: str, done: str = "") -> Response:
    """Seed 000's product page: status, the Information panel, « Mise à niveau » when
    the product has options, « Demande d'annulation »."""
    plans = plans_of(seen)
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    may_change = _may_change(seen, sub["account"])
    options = []
    if may_change and sub["status"] == "active":
        options = catalog.upgrade_options(seen.engine, seen.principal, subscription, at=seen.at)[
            "options"
        ]
    plan = plans.plans.get(sub["plan"], {})
    adjustable = bool(options) or plan.get("per_unit") or sub["period"] == "one_time"
    return _render(
        seen,
        "product.html",
        plans=plans,
        sub=sub,
        plan=plan,
        options=options,
        may_change=may_change,
        adjustable=adjustable and may_change and sub["status"] == "active",
        pending=[r for r in _requests_of(seen, subscription) if r["state"] == "pending"],
        done=done,
        key=new_key(),
    )


# the change wizard -------------------------------------------------------------------------


@dataclass
class Choice:
    """What the wizard's form asks for: a tier, seats, a billing frequency (or, for a
    licence order, a target plan and products to add)."""

    tier: int | None = None
    quantity: int | None = None
    period: str | None = None
    plan: str | None = None
    add: tuple[str, ...] = ()

    def query(self) -> dict:
        data = {}
        if self.tier is not None:
            data["tier"] = self.tier
        if self.quantity is not None:
            data["quantity"] = self.quantity
        if self.period:
            data["period"] = self.period
        if self.plan:
            data["plan"] = self.plan
        if self.add:
            data["add"] = list(self.add)
        return data


def _choice(
    tier: int | None, quantity: int | None, period: str | None, plan: str | None, add: list[str]
) -> Choice:
    return Choice(tier, quantity, period or None, plan or None, tuple(a for a in add if a))


def to_change(plans: Plans, sub: dict, choice: Choice, version: int | None = None):
    """The :class:`ChangeInput` a choice asks for (``None``: nothing changes). A new tier
    names the plan of that tier and frequency; the same tier at another frequency is a
    cycle change (``period``)."""
    current = plans.plans[sub["plan"]]
    plan = period = None
    if choice.plan and choice.plan != sub["plan"]:
        plan = choice.plan
    elif choice.tier is not None or choice.period:
        tier = current["tier"] if choice.tier is None else choice.tier
        cycle = choice.period or current["period"]
        if tier == current["tier"]:
            period = cycle if cycle != current["period"] else None
        else:
            target = [
                p
                for p in plans.of_product(sub["plan"])
                if p["tier"] == tier and p["period"] == cycle
            ]
            if not target:
                raise NotFound(kind="route", id=f"tier {tier} {cycle}")
            plan = target[0]["id"]
    quantity = None
    if choice.quantity is not None and choice.quantity != sub["quantity"]:
        quantity = choice.quantity
    add = tuple(a for a in choice.add if a not in {i["plan"] for i in sub["items"]})
    if plan is None and period is None and quantity is None and not add:
        return None
    return ChangeInput(
        subscription=sub["id"],
        plan=plan,
        quantity=quantity,
        period=period,
        add_products=add,
        expected_version=version,
    )


def _wizard_fields(plans: Plans, sub: dict) -> dict:
    """The tiers and frequencies the product offers (recurring), or the licences a
    perpetual order may move to or add (one-time)."""
    current = plans.plans[sub["plan"]]
    if current["period"] == "one_time":
        others = [p for p in plans.plans.values() if p["period"] == "one_time"]
        return {"licence": True, "targets": others, "current": current}
    siblings = plans.of_product(sub["plan"])
    tiers: dict[int, str] = {}
    for p in sorted(siblings, key=lambda p: p["tier"]):
        tiers.setdefault(p["tier"], p["name"])
    periods = sorted({p["period"] for p in siblings}, key=_PERIOD_ORDER.index)
    return {
        "licence": False,
        "tiers": sorted(tiers.items()),
        "periods": periods,
        "current": current,
        "per_unit": current["per_unit"],
        "prices": {(p["tier"], p["period"]): p for p in siblings},
    }


_PERIOD_ORDER = [
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "semiannual",
    "annual",
    "biennial",
    "one_time",
]


def _preview(seen: Viewer, plans: Plans, sub: dict, choice: Choice):
    change = to_change(plans, sub, choice)
    if change is None:
        return None
    return subscriptions.preview(seen.engine, seen.principal, change, at=seen.at)


def _cart_key(seen: Viewer, account: str) -> str | None:
    """The open cart of ``account`` this browser is filling, if any."""
    key = seen.request.cookies.get(CART_COOKIE)
    if not key:
        return None
    try:
        cart = carts.get_cart(seen.engine, seen.principal, key, at=seen.at)
    except ServiceError:
        return None
    if cart["status"] != "open" or cart["account"] != account:
        return None
    return key if cart["items"] else None


@router.get("/products/{subscription}/change", include_in_schema=False)
def change(
    seen: Seen,
    subscription: str,
    tier: Annotated[int | None, Query()] = None,
    quantity: Annotated[int | None, Query(ge=1, le=100000)] = None,
    period: Annotated[str | None, Query(max_length=16)] = None,
    plan: Annotated[str | None, Query(max_length=100)] = None,
    add: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Step 1: choose tier, seats and frequency; the order summary follows the choice
    (htmx swaps it in as the form changes; without script, « Voir le récapitulatif »)."""
    plans = plans_of(seen)
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    if not _may_change(seen, sub["account"]):
        raise Forbidden("role_cannot_change", role="member", account=sub["account"])
    choice = _choice(tier, quantity, period, plan, add or [])
    preview = _preview(seen, plans, sub, choice)
    context = {
        "plans": plans,
        "sub": sub,
        "fields": _wizard_fields(plans, sub),
        "choice": choice,
        "preview": preview,
        "query": urlencode(choice.query(), doseq=True),
        "cart": _cart_key(seen, sub["account"]),
    }
    if seen.request.headers.get("hx-request") == "true":
        return _render(seen, "_summary.html", **context)
    return _render(seen, "change.html", **context)


@router.get("/products/{subscription}/checkout", include_in_schema=False)
def checkout_page(
    seen: Seen,
    subscription: str,
    tier: Annotated[int | None, Query()] = None,
    quantity: Annotated[int | None, Query(ge=1, le=100000)] = None,
    period: Annotated[str | None, Query(max_length=16)] = None,
    plan: Annotated[str | None, Query(max_length=100)] = None,
    add: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Step 2, « Passage à la caisse »: the billing period from today, seats, rate and
    total due again; payment details are asked when the price goes up."""
    return _checkout(seen, subscription, _choice(tier, quantity, period, plan, add or []))


def _billing(seen: Viewer, account: str) -> dict:
    return accounts.get_account(seen.engine, seen.principal, account, at=seen.at)


def _checkout(seen: Viewer, subscription: str, choice: Choice, *, error=None, status=200):
    plans = plans_of(seen)
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    preview = _preview(seen, plans, sub, choice)
    if preview is None:
        return _redirect(f"/portal/products/{subscription}/change")
    pays = bool(preview["allowed"]) and Decimal(preview["summary"]["total_due"]) > 0
    return _render(
        seen,
        "checkout.html",
        status=status,
        plans=plans,
        sub=sub,
        choice=choice,
        preview=preview,
        pays=pays,
        account=_billing(seen, sub["account"]),
        methods=backoffice.PAYMENT_METHODS,
        key=new_key(),
        error=error,
        query=urlencode(choice.query(), doseq=True),
    )


@router.post("/products/{subscription}/checkout", include_in_schema=False)
def place_order(
    seen: Seen,
    subscription: str,
    version: Annotated[int, Form()],
    key: Annotated[str, Form(min_length=1, max_length=200)],
    tier: Annotated[int | None, Form()] = None,
    quantity: Annotated[int | None, Form(ge=1, le=100000)] = None,
    period: Annotated[str | None, Form(max_length=16)] = None,
    plan: Annotated[str | None, Form(max_length=100)] = None,
    add: Annotated[list[str] | None, Form()] = None,
    payment_method: Annotated[str | None, Form(max_length=32)] = None,
    vat_id: Annotated[str | None, Form(max_length=32)] = None,
) -> Response:
    """Step 3, « Passer la commande »: payment details first (when asked), then the
    checkout against the version the summary was computed on."""
    choice = _choice(tier, quantity, period, plan, add or [])
    plans = plans_of(seen)
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    change = to_change(plans, sub, choice, version)
    if change is None:
        return _redirect(f"/portal/products/{subscription}/change")
    try:
        if payment_method or vat_id is not None:
            backoffice.set_billing_details(
                seen.engine,
                seen.principal,
                sub["account"],
                at=seen.at,
                payment_method=payment_method or None,
                vat_id=vat_id,
                request_id=seen.request.state.request_id,
            )
        result = subscriptions.checkout(
            seen.engine,
            seen.principal,
            [change],
            at=seen.at,
            key=key,
            request_id=seen.request.state.request_id,
        )
    except ServiceError as exc:
        if isinstance(exc, NotFound | Forbidden):
            raise
        return _checkout(
            seen,
            subscription,
            choice,
            error=exc.message_in(seen.language),
            status=409 if exc.status == 409 else 422,
        )
    return _confirmation(seen, plans, result)


def _confirmation(seen: Viewer, plans: Plans, result: dict) -> Response:
    return _render(seen, "confirmation.html", plans=plans, result=result)


# the cart ----------------------------------------------------------------------------------


@router.post("/cart/items", include_in_schema=False)
def add_to_cart(
    seen: Seen,
    subscription: Annotated[str, Form(max_length=100)],
    tier: Annotated[int | None, Form()] = None,
    quantity: Annotated[int | None, Form(ge=1, le=100000)] = None,
    period: Annotated[str | None, Form(max_length=16)] = None,
    plan: Annotated[str | None, Form(max_length=100)] = None,
    add: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """« Ajouter au panier »: the change joins the account's open cart (a new one if
    none); a second change of the same subscription replaces the first."""
    plans = plans_of(seen)
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    change = to_change(plans, sub, _choice(tier, quantity, period, plan, add or []))
    if change is None:
        return _redirect(f"/portal/products/{subscription}/change")
    key = _cart_key(seen, sub["account"])
    if key is None:
        key = carts.create_cart(seen.engine, seen.principal, account=sub["account"], at=seen.at)[
            "id"
        ]
    carts.put_item(seen.engine, seen.principal, key, change, at=seen.at)
    response = _redirect("/portal/cart")
    response.set_cookie(CART_COOKIE, key, httponly=True, samesite="lax", path="/portal")
    return response


@router.get("/cart", include_in_schema=False)
def cart(seen: Seen) -> Response:
    key = seen.request.cookies.get(CART_COOKIE)
    found = None
    if key:
        try:
            found = carts.get_cart(seen.engine, seen.principal, key, at=seen.at)
        except ServiceError:
            found = None
    if found is not None and found["status"] != "open":
        found = None
    return _render(seen, "cart.html", plans=plans_of(seen), cart=found, key=new_key())


@router.post("/cart/remove", include_in_schema=False)
def remove_from_cart(seen: Seen, subscription: Annotated[str, Form(max_length=100)]) -> Response:
    key = seen.request.cookies.get(CART_COOKIE)
    if key:
        carts.remove_item(seen.engine, seen.principal, key, subscription, at=seen.at)
    return _redirect("/portal/cart")


@router.post("/cart/checkout", include_in_schema=False)
def checkout_cart(seen: Seen, key: Annotated[str, Form(min_length=1, max_length=200)]) -> Response:
    cart_key = seen.request.cookies.get(CART_COOKIE)
    if not cart_key:
        return _redirect("/portal/cart")
    try:
        result = carts.checkout_cart(
            seen.engine,
            seen.principal,
            cart_key,
            at=seen.at,
            key=key,
            request_id=seen.request.state.request_id,
        )
    except ServiceError as exc:
        if isinstance(exc, NotFound | Forbidden):
            raise
        found = carts.get_cart(seen.engine, seen.principal, cart_key, at=seen.at)
        return _render(
            seen,
            "cart.html",
            status=422,
            plans=plans_of(seen),
            cart=found,
            key=new_key(),
            error=exc.message_in(seen.language),
        )
    response = _confirmation(seen, plans_of(seen), result)
    response.delete_cookie(CART_COOKIE, path="/portal")
    return response


# cancellation ------------------------------------------------------------------------------


@router.get("/products/{subscription}/cancel", include_in_schema=False)
def cancel_page(seen: Seen, subscription: str) -> Response:
    """« Demande d'annulation » / « Se désabonner »: access until the end of the period."""
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    if not _may_change(seen, sub["account"]):
        raise Forbidden("role_cannot_change", role="member", account=sub["account"])
    return _render(seen, "cancel.html", plans=plans_of(seen), sub=sub, key=new_key())


@router.post("/products/{subscription}/cancel", include_in_schema=False)
def cancel(
    seen: Seen,
    subscription: str,
    key: Annotated[str, Form(min_length=1, max_length=200)],
    version: Annotated[int | None, Form()] = None,
) -> Response:
    try:
        subscriptions.cancel(
            seen.engine,
            seen.principal,
            subscription,
            at=seen.at,
            timing="end_of_term",
            expected_version=version,
            key=key,
            request_id=seen.request.state.request_id,
        )
    except ServiceError as exc:
        if isinstance(exc, NotFound | Forbidden):
            raise
        sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
        return _render(
            seen,
            "cancel.html",
            status=422,
            plans=plans_of(seen),
            sub=sub,
            key=new_key(),
            error=exc.message_in(seen.language),
            code=exc.code,
        )
    return _redirect(f"/portal/products/{subscription}", done="cancelled")


@router.post("/products/{subscription}/undo", include_in_schema=False)
def undo(
    seen: Seen, subscription: str, key: Annotated[str, Form(min_length=1, max_length=200)]
) -> Response:
    subscriptions.undo(
        seen.engine,
        seen.principal,
        subscription,
        at=seen.at,
        key=key,
        request_id=seen.request.state.request_id,
    )
    return _redirect(f"/portal/products/{subscription}", done="undone")


# seats -------------------------------------------------------------------------------------


@router.get("/products/{subscription}/seats", include_in_schema=False)
def seats_page(seen: Seen, subscription: str, done: str = "") -> Response:
    """Seed 004: give the seats bought to the account's users."""
    return _seats(seen, subscription, done=done)


def _seats(seen: Viewer, subscription: str, *, done="", error=None, status=200) -> Response:
    sub = subscriptions.get_subscription(seen.engine, seen.principal, subscription, at=seen.at)
    held = seats.list_seats(seen.engine, seen.principal, subscription, at=seen.at)
    members = accounts.get_account(seen.engine, seen.principal, sub["account"], at=seen.at)[
        "members"
    ]
    holders = {h["user"]: h for h in held["assigned"]}
    return _render(
        seen,
        "seats.html",
        status=status,
        plans=plans_of(seen),
        sub=sub,
        held=held,
        members=members,
        holders=holders,
        may_change=_may_change(seen, sub["account"]),
        done=done,
        error=error,
    )


@router.post("/products/{subscription}/seats", include_in_schema=False)
def assign_seat(seen: Seen, subscription: str, user: Annotated[int, Form(ge=1)]) -> Response:
    try:
        seats.assign(seen.engine, seen.principal, subscription, user, at=seen.at)
    except ServiceError as exc:
        if isinstance(exc, NotFound | Forbidden):
            raise
        return _seats(seen, subscription, error=exc.message_in(seen.language), status=422)
    return _redirect(f"/portal/products/{subscription}/seats", done="assigned")


@router.post("/products/{subscription}/seats/release", include_in_schema=False)
def release_seat(seen: Seen, subscription: str, user: Annotated[int, Form(ge=1)]) -> Response:
    seats.release(seen.engine, seen.principal, subscription, user, at=seen.at)
    return _redirect(f"/portal/products/{subscription}/seats", done="released")


# billing and documents ---------------------------------------------------------------------


@router.get("/billing", include_in_schema=False)
def billing(seen: Seen) -> Response:
    """Seed 003's billing module: current plan, payment history, invoices, credit notes,
    receipts, account credit."""
    plans = plans_of(seen)
    subs = subscriptions.list_subscriptions(seen.engine, seen.principal, at=seen.at, limit=200)
    at = seen.at
    engine, who = seen.engine, seen.principal
    listed = [a["id"] for a in seen.me["accounts"]]
    return _render(
        seen,
        "billing.html",
        plans=plans,
        subs=subs["items"],
        invoices=documents.list_documents(engine, who, at=at, type="invoice", limit=200)["items"],
        notes=documents.list_documents(engine, who, at=at, type="credit_note", limit=200)["items"],
        payments=documents.list_payments(engine, who, at=at, limit=200)["items"],
        credits={a: documents.get_credit(engine, who, a, at=at) for a in listed},
        changeable={a for a in listed if _may_change(seen, a)},
    )


def _document(seen: Viewer, kind: str, number: str) -> Response:
    doc = documents.get_document(seen.engine, seen.principal, number, at=seen.at, type=kind)
    return _render(seen, "document.html", plans=plans_of(seen), doc=doc)


@router.get("/invoices/{number}", include_in_schema=False)
def invoice(seen: Seen, number: str) -> Response:
    return _document(seen, "invoice", number)


@router.get("/credit-notes/{number}", include_in_schema=False)
def credit_note(seen: Seen, number: str) -> Response:
    return _document(seen, "credit_note", number)


def _pdf(content: bytes, name: str) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/invoices/{number}/pdf", include_in_schema=False)
def invoice_pdf(seen: Seen, number: str) -> Response:
    content = renderings.document_pdf(
        seen.engine, seen.principal, number, at=seen.at, type="invoice"
    )
    return _pdf(content, number)


@router.get("/credit-notes/{number}/pdf", include_in_schema=False)
def credit_note_pdf(seen: Seen, number: str) -> Response:
    content = renderings.document_pdf(
        seen.engine, seen.principal, number, at=seen.at, type="credit_note"
    )
    return _pdf(content, number)


@router.get("/receipts/{payment}", include_in_schema=False)
def receipt(seen: Seen, payment: int) -> Response:
    found = documents.get_receipt(seen.engine, seen.principal, payment, at=seen.at)
    return _render(seen, "receipt.html", plans=plans_of(seen), receipt=found)


@router.get("/receipts/{payment}/pdf", include_in_schema=False)
def receipt_pdf(seen: Seen, payment: int) -> Response:
    content = renderings.receipt_pdf(seen.engine, seen.principal, payment, at=seen.at)
    return _pdf(content, f"RCT-{payment:06d}")


# notifications -----------------------------------------------------------------------------


@router.get("/notifications", include_in_schema=False)
def notifications(seen: Seen) -> Response:
    """Requests the customer's changes opened: pending ones, and what support decided
    (seed 000: « vous serez averti lorsque le service sera pleinement opérationnel »)."""
    items = sorted(
        _requests_of(seen), key=lambda r: r["decided_at"] or r["created_at"], reverse=True
    )
    return _render(seen, "notifications.html", plans=plans_of(seen), items=items)

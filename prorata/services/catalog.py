"""The catalog as customers read it, and the plans a subscription may move to.

The options are what seed 000's "MISE À NIVEAU" button offers: every other plan of the
subscription's product, each evaluated by the same core function a checkout uses, so an
option marked allowed is one a checkout at the same instant and version would accept with
the same total. Names are in the caller's language (else the account's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from prorata.core.catalog import Plan
from prorata.core.changes import Refusal, evaluate
from prorata.core.model import Change
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.recording import load, reader_locale
from prorata.services.transaction import Work, run
from prorata.services.views import quote_view


def plan_view(work: Work, plan: Plan, locale: str) -> dict[str, Any]:
    catalog = work.billing.ctx.catalog
    product = catalog.products[plan.product]
    return {
        "id": plan.id,
        "product": plan.product,
        "product_name": product.name.get(locale),
        "name": plan.name.get(locale),
        "tier": plan.tier,
        "period": str(plan.period),
        "price": str(plan.price),
        "currency": work.book.config.currency,
        "per_unit": plan.per_unit,
        "pay_in_advance": plan.pay_in_advance,  # false: billed for its use at the period's end
        "fulfillment": plan.fulfillment,
        "maintenance": None
        if plan.maintenance is None
        else {"period": str(plan.maintenance.period), "price": str(plan.maintenance.price)},
    }


def get_catalog(engine: Engine, principal: Principal, *, at: datetime) -> dict:
    def read(work: Work) -> dict:
        locale = work.principal.locale or "en"
        catalog = work.billing.ctx.catalog
        return {
            "currency": work.book.config.currency,
            "products": [
                {
                    "id": product.id,
                    "name": product.name.get(locale),
                    "platform": product.platform,
                    "includes": list(product.includes),
                }
                for product in catalog.products.values()
            ],
            "plans": [plan_view(work, plan, locale) for plan in catalog.plans.values()],
        }

    return run(engine, principal, "catalog.read", {}, read, at=at, write=False)


def upgrade_options(engine: Engine, principal: Principal, subscription: str, *, at: datetime):
    """Every other plan of the subscription's product: allowed or why not, and its quote."""

    def read(work: Work) -> dict:
        sub, version = load(work, subscription)
        by = access.actor_for_change(work.principal, sub.account, "subscription", sub.id)
        locale = reader_locale(work, sub.account)
        catalog = work.billing.ctx.catalog
        current = catalog.plan(sub.plan)
        ctx = work.billing.context_for(sub)
        options = []
        for plan in sorted(catalog.plans.values(), key=lambda p: (p.tier, str(p.period), p.id)):
            if plan.product != current.product or plan.id == current.id:
                continue
            outcome = evaluate(ctx, sub, Change(sub.id, plan=plan.id, by=by), work.at)
            option = {"plan": plan_view(work, plan, locale)}
            if isinstance(outcome, Refusal):
                option |= {
                    "allowed": False,
                    "refusal": {"code": outcome.code, "message": outcome.message},
                }
            else:
                option |= {"allowed": True, "quote": quote_view(outcome)}
            options.append(option)
        return {
            "subscription": sub.id,
            "version": version,
            "current": plan_view(work, current, locale),
            "options": options,
        }

    body = {"subscription": subscription}
    return run(engine, principal, "subscription.options", body, read, at=at, write=False)

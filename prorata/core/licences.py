"""Upgrading a perpetual licence order against its original order (GroupDocs, seed 001).

Rules, in the order they are checked:
- maintenance must be active at the time of the upgrade (``maintenance_expired``);
- every product of the new order is of the order's platform (``cross_product_upgrade``);
- a new main plan is a dearer plan of the same product, or a suite of the same platform that
  includes the product at the same or a higher tier (``not_an_upgrade`` /
  ``cross_product_upgrade``); added products are new to the order;
- the order's full value is credited (``licence.upgrade_credit: full_original``); the
  customer pays the difference, which must be positive.
Maintenance windows: within ``early_days`` after the purchase or last renewal the expiry resets
to a full maintenance period from the upgrade; within ``late_days`` before expiry the
maintenance is renewed too (its price is added) and the expiry resets likewise; otherwise the
expiry does not move. All amounts are exact sums of catalog prices; nothing is prorated.
"""

from __future__ import annotations

from decimal import Decimal

from prorata.core import wording
from prorata.core.calendar import term_end
from prorata.core.documents import Line
from prorata.core.money import Money
from prorata.core.proration import unit_total


def order_value(catalog, items, currency: str) -> Money:
    value = sum((unit_total(catalog.plan(i.plan), i.quantity) for i in items), Decimal(0))
    return Money.of(value, currency)


def maintenance_price(catalog, items) -> Decimal:
    total = Decimal(0)
    for item in items:
        plan = catalog.plan(item.plan)
        if plan.maintenance is not None:
            total += plan.maintenance.price * (item.quantity if plan.per_unit else 1)
    return total


def maintenance_end(catalog, items, start):
    """Expiry of a maintenance period starting at ``start`` (the longest of the items')."""
    ends = [
        term_end(start, catalog.plan(i.plan).maintenance.period)
        for i in items
        if catalog.plan(i.plan).maintenance is not None
    ]
    return max(ends) if ends else None


def maintenance_line(catalog, sub, items, name: str, start, locale: str) -> Line:
    """One maintenance period for ``items`` from ``start``, at the catalog's maintenance price."""
    until = maintenance_end(catalog, items, start)
    price = Money.of(maintenance_price(catalog, items), sub.currency)
    return Line(
        kind="maintenance",
        description=wording.line_description("maintenance", name, 1, locale),
        subscription=sub.id,
        plan=items[0].plan,
        quantity=1,
        amount=price,
        start=start,
        end=until,
        unit_price=price.amount,
    )


def _admissible(ctx, sub, items, refuse, locale):
    catalog = ctx.catalog
    old, new = catalog.plan(sub.plan), catalog.plan(items[0].plan)
    platform = catalog.products[old.product].platform

    def names():
        return {"target": new.name.get(locale), "current": old.name.get(locale)}

    for item in items:
        plan = catalog.plan(item.plan)
        if plan.period.recurring or catalog.products[plan.product].platform != platform:
            return refuse(ctx, sub, "cross_product_upgrade", **names())
    if new.id != old.id:
        if new.product == old.product:
            if new.price <= old.price:
                return refuse(ctx, sub, "not_an_upgrade", **names())
        elif catalog.covers(catalog.products[new.product], old.product):
            if new.tier < old.tier:
                return refuse(ctx, sub, "not_an_upgrade", **names())
        else:
            return refuse(ctx, sub, "cross_product_upgrade", **names())
    owned = {catalog.plan(i.plan).product for i in sub.items}
    for item in items[1:]:
        if item not in sub.items and catalog.plan(item.plan).product in owned:
            return refuse(ctx, sub, "not_an_upgrade", **names())
    return None


def evaluate(ctx, policy, sub, items, change, at, refuse, locale):
    """Quote an upgrade of a licence order, or refuse it."""
    from prorata.core.changes import Quote, decide_timing, route

    if sub.maintenance_until is None or at >= sub.maintenance_until:
        until = sub.maintenance_until.date().isoformat() if sub.maintenance_until else "-"
        return refuse(ctx, sub, "maintenance_expired", until=until)
    if tuple(items) == sub.items:
        return refuse(ctx, sub, "no_change")
    refusal = _admissible(ctx, sub, items, refuse, locale)
    if refusal is not None:
        return refusal
    catalog = ctx.catalog
    kinds = {"upgrade"} if items[0].plan != sub.plan or len(items) > len(sub.items) else set()
    if items[0].quantity != sub.quantity:
        kinds.add("quantity_increase" if items[0].quantity > sub.quantity else "quantity_decrease")
    kind = "upgrade" if "upgrade" in kinds else next(iter(kinds))
    timing = decide_timing(ctx, policy, sub, frozenset(kinds), kind, change, at)
    if not isinstance(timing, str):
        return timing
    new_value = order_value(catalog, items, sub.currency)
    credit = sub.order_value if policy.licence_upgrade_credit == "full_original" else None
    credit = credit or Money.zero(sub.currency)
    difference = new_value - credit
    new_main = catalog.plan(items[0].plan)
    if not difference.is_positive:
        return refuse(
            ctx,
            sub,
            "not_an_upgrade",
            target=new_main.name.get(locale),
            current=catalog.plan(sub.plan).name.get(locale),
        )
    name = catalog.products[new_main.product].name.get(locale) + " " + new_main.name.get(locale)

    lines = [
        Line(
            kind="licence",
            description=wording.line_description("licence", name, items[0].quantity, locale),
            subscription=sub.id,
            plan=new_main.id,
            quantity=items[0].quantity,
            amount=difference,
            unit_price=new_main.price,
            explanation=f"{new_value} − {credit} = {difference} {sub.currency}",
        )
    ]
    start, until = sub.maintenance_start, sub.maintenance_until
    since = (at.date() - sub.maintenance_start.date()).days
    left = (sub.maintenance_until.date() - at.date()).days
    if since <= policy.licence_early_days:
        start, until = at, maintenance_end(catalog, items, at)
    elif left <= policy.licence_late_days:
        start, until = at, maintenance_end(catalog, items, at)
        lines.append(maintenance_line(catalog, sub, items, name, at, locale))
    state = sub.evolve(
        items=tuple(items),
        order_value=new_value,
        maintenance_start=start,
        maintenance_until=until,
    )
    return Quote(
        kind,
        frozenset(kinds),
        "immediate",
        None,
        at,
        lines=tuple(lines),
        routing=route(lines, policy.rule(kind)),
        subscription=state,
        refers_to=None,
    )

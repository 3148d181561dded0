"""Classifying a change: which kinds it is (upgrade, downgrade, seats, cycle, add-ons).

Pure: depends only on the policy's ``classify`` key and catalog prices and tiers.
"""

from __future__ import annotations

from fractions import Fraction

from prorata.core.catalog import Catalog, Plan
from prorata.core.policy import Policy
from prorata.core.subscription import Item


def classify(policy: Policy, catalog: Catalog, old: tuple[Item, ...], new: tuple[Item, ...]):
    """The kinds of change from ``old`` to ``new`` items, and the one whose rule applies.

    Upgrade vs downgrade is by tier rank inside a product (``classify: tier``) or by price per
    year (``classify: price``, Lago); moving to a suite that includes the product is an
    upgrade; adding products is an upgrade. The primary kind decides credit and invoicing:
    a period change first, then an upgrade or downgrade, then a change of quantity.
    """
    before, after = catalog.plan(old[0].plan), catalog.plan(new[0].plan)
    kinds: set[str] = set()
    if before.period != after.period:
        kinds.add("period_change")
    if before.id != after.id:
        direction = _direction(policy, catalog, old[0], new[0], before, after)
        if direction:
            kinds.add(direction)
    if new[0].quantity != old[0].quantity:
        kinds.add("quantity_increase" if new[0].quantity > old[0].quantity else "quantity_decrease")
    if {i.plan for i in new[1:]} - {i.plan for i in old[1:]}:
        kinds.add("upgrade")
    for kind in ("period_change", "upgrade", "downgrade", "quantity_increase", "quantity_decrease"):
        if kind in kinds:
            return frozenset(kinds), kind
    return frozenset(kinds), None


def _direction(policy, catalog, old_item, new_item, before: Plan, after: Plan) -> str | None:
    if policy.classify == "price":
        weeks = Fraction(policy.classify_weeks_per_year)
        old_year = before.yearly_price(weeks) * (old_item.quantity if before.per_unit else 1)
        new_year = after.yearly_price(weeks) * (new_item.quantity if after.per_unit else 1)
        return "upgrade" if new_year >= old_year else "downgrade"
    if before.product != after.product:
        if catalog.covers(catalog.products[after.product], before.product):
            return "upgrade"
        return "upgrade" if after.yearly_price() >= before.yearly_price() else "downgrade"
    if after.tier != before.tier:
        return "upgrade" if after.tier > before.tier else "downgrade"
    if after.period != before.period:
        return None  # the same offer on another billing cycle
    return "upgrade" if after.yearly_price() >= before.yearly_price() else "downgrade"

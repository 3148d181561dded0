"""Products and plans: what can be sold, at what price, per which period.

Invariants: plan ids are unique across the catalog; a plan belongs to exactly one product;
prices are exact decimals per unit and per period; ``tier`` ranks plans inside a product;
a plan is paid in advance (billed when its period starts, the default) unless
``pay_in_advance`` is false (billed for its use when that use ends, see ``arrears``); only
recurring plans may be paid in arrears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from prorata.core.calendar import PeriodUnit


@dataclass(frozen=True)
class LocalText:
    """A name in several languages; falls back to English, then to any language given."""

    texts: Mapping[str, str]

    @classmethod
    def plain(cls, text: str) -> LocalText:
        return cls({"en": text})

    def get(self, locale: str) -> str:
        lang = locale.split("_")[0].split("-")[0]
        if lang in self.texts:
            return self.texts[lang]
        if "en" in self.texts:
            return self.texts["en"]
        return next(iter(self.texts.values()))


@dataclass(frozen=True)
class Maintenance:
    """Support and updates of a perpetual licence, sold per period after the first."""

    period: PeriodUnit
    price: Decimal


@dataclass(frozen=True)
class Plan:
    id: str
    product: str
    name: LocalText
    tier: int
    period: PeriodUnit
    price: Decimal
    per_unit: bool = False
    fulfillment: str = "auto"
    maintenance: Maintenance | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)
    pay_in_advance: bool = True

    @property
    def manual(self) -> bool:
        return self.fulfillment == "manual"

    def yearly_price(self, weeks_per_year: Fraction | None = None) -> Fraction:
        """Price per unit per year: how Lago orders plans of different periods.

        ``weeks_per_year`` replaces the calendar 365/7 for a weekly plan (Lago counts 52)."""
        if weeks_per_year is not None and self.period.days == 7:
            return Fraction(self.price) * weeks_per_year
        return Fraction(self.price) * self.period.per_year


@dataclass(frozen=True)
class Product:
    id: str
    name: LocalText
    includes: tuple[str, ...] = ()
    platform: str | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_suite(self) -> bool:
        return bool(self.includes)


@dataclass(frozen=True)
class Catalog:
    products: Mapping[str, Product]
    plans: Mapping[str, Plan]

    def plan(self, plan_id: str) -> Plan:
        return self.plans[plan_id]

    def product_of(self, plan: Plan) -> Product:
        return self.products[plan.product]

    def sibling(self, plan: Plan, period: PeriodUnit) -> Plan | None:
        """The plan of the same product and tier billed per ``period``, if the catalog has one."""
        for candidate in self.plans.values():
            if (
                candidate.product == plan.product
                and candidate.tier == plan.tier
                and candidate.period == period
            ):
                return candidate
        return None

    def covers(self, suite: Product, product_id: str) -> bool:
        """Whether ``suite`` is ``product_id`` or includes it (directly or through a suite)."""
        if suite.id == product_id:
            return True
        return any(
            inner == product_id
            or (inner in self.products and self.covers(self.products[inner], product_id))
            for inner in suite.includes
        )

"""Section readers for the scenario's ``policy``, ``catalog`` and ``accounts``.

Invariants:
- every policy mapping (scenario, product, plan, change proration) is checked against the
  policy schema; a refusal is an :class:`~prorata.scenario.fields.Invalid` on the line of
  the key the policy error names;
- catalog entries keep their file order; product and plan ids are unique (plan ids across
  the whole catalog), every ``includes`` resolves and no product includes itself; a plan
  paid in arrears (``pay_in_advance: false``) is recurring;
- account ids are unique; tax rates are in 0..100.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from prorata.adapters.gateways import BEHAVIOURS, sandbox_token
from prorata.core.catalog import Catalog, LocalText, Maintenance, Plan, Product
from prorata.core.model import Account
from prorata.core.policy import Policy, PolicyError, build_policy
from prorata.scenario.fields import (
    At,
    Invalid,
    Map,
    as_amount,
    as_flag,
    as_local_text,
    as_locale,
    as_percent,
    as_text,
    describe,
    list_items,
    one_of,
    optional,
    period_unit,
    plain_data,
    whole_number,
)
from prorata.scenario.yamlpos import PosDict

_PRODUCT_KEYS = ("id", "name", "includes", "platform", "policy", "plans")
_PLAN_KEYS = (
    "id",
    "name",
    "tier",
    "period",
    "price",
    "per_unit",
    "fulfillment",
    "maintenance",
    "policy",
    "pay_in_advance",
)
_ACCOUNT_KEYS = ("id", "locale", "auto_pay", "payment_method", "tax")
_PAYMENT_METHODS = ("card", "paypal", "sepa_debit", "bank_transfer")


# policies ----------------------------------------------------------------------------------


def _policy_invalid(exc: PolicyError, root: Any, root_at: At) -> Invalid:
    """``exc`` placed on the line of the key its path names, found by walking from ``root``."""
    line = root_at.line
    node = root
    rest = exc.path.removeprefix(root_at.path).lstrip(".")
    for part in rest.split(".") if rest else ():
        if not isinstance(node, PosDict) or part not in node:
            break
        line = node.key_lines[part]
        node = node[part]
    return Invalid(At(exc.path, line), exc.message)


def scenario_policy(value: Any, at: At) -> tuple[Policy, Any]:
    if not isinstance(value, str | PosDict):
        raise Invalid(at, f"expected a preset name or a mapping, got {describe(value)}")
    spec = plain_data(value)
    try:
        return build_policy(spec, where=at.path), spec
    except PolicyError as exc:
        raise _policy_invalid(exc, value, at) from None


def _check_layer(layer: dict, root: Any, root_at: At, where: str) -> None:
    """Refuse an override layer that the policy schema does not accept."""
    try:
        build_policy(None).with_overrides(layer, where=where)
    except PolicyError as exc:
        raise _policy_invalid(exc, root, root_at) from None


def _policy_override(value: Any, at: At) -> dict:
    """A catalog entry's policy overrides (no preset), as plain data."""
    if not isinstance(value, PosDict):
        raise Invalid(at, f"expected a mapping of policy keys, got {describe(value)}")
    layer = plain_data(value)
    _check_layer(layer, value, at, where=at.path)
    return layer


def proration_override(value: Any, at: At, change_at: At) -> dict:
    """A change's ``proration`` overrides, checked as ``policy.proration``."""
    if not isinstance(value, PosDict):
        raise Invalid(at, f"expected a mapping of proration keys, got {describe(value)}")
    layer = plain_data(value)
    _check_layer({"proration": layer}, value, at, where=change_at.path)
    return layer


# catalog -----------------------------------------------------------------------------------


def _new_id(m: Map, taken: Mapping[str, Any], what: str) -> str:
    """The ``id`` of ``m``, refused when another ``what`` already has it."""
    ident = m.get("id", as_text)
    if ident in taken:
        raise Invalid(m.place("id"), f"duplicate {what} id {ident!r}")
    return ident


class CatalogReader:
    """Reads ``catalog``: plan ids are unique across the catalog, includes resolve, no cycles."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.products: dict[str, Product] = {}
        self.plans: dict[str, Plan] = {}
        self.include_places: dict[str, list[At]] = {}

    def read(self, value: Any, at: At) -> Catalog:
        catalog = Map(value, at, ("products",), required=("products",))
        for item, place in list_items(catalog.data["products"], catalog.place("products")):
            self.product(item, place)
        self.check_includes()
        return Catalog(products=self.products, plans=self.plans)

    def product(self, value: Any, at: At) -> None:
        m = Map(value, at, _PRODUCT_KEYS, required=("id",))
        ident = _new_id(m, self.products, "product")
        includes = m.get("includes", list_items, default=[])
        self.include_places[ident] = [place for _, place in includes]
        self.products[ident] = Product(
            id=ident,
            name=m.get("name", as_local_text, default=LocalText.plain(ident)),
            includes=tuple(as_text(inner, place) for inner, place in includes),
            platform=m.get("platform", optional(as_text)),
            policy=m.get("policy", _policy_override, default={}),
        )
        for item, place in m.get("plans", list_items, default=[]):
            self.plan(item, place, ident)

    def plan(self, value: Any, at: At, product: str) -> None:
        m = Map(value, at, _PLAN_KEYS, required=("id", "period", "price"))
        ident = _new_id(m, self.plans, "plan")
        period = m.get("period", period_unit)
        self.plans[ident] = Plan(
            id=ident,
            product=product,
            name=m.get("name", as_local_text, default=LocalText.plain(ident)),
            tier=m.get("tier", whole_number, 0, default=1),
            period=period,
            price=m.get("price", as_amount, self.currency),
            per_unit=m.get("per_unit", as_flag, default=False),
            fulfillment=m.get("fulfillment", one_of, ("auto", "manual"), default="auto"),
            maintenance=m.get("maintenance", optional(self.maintenance)),
            policy=m.get("policy", _policy_override, default={}),
            pay_in_advance=m.get("pay_in_advance", _pay_in_advance, period, default=True),
        )

    def maintenance(self, value: Any, at: At) -> Maintenance:
        m = Map(value, at, ("period", "price"), required=("period", "price"))
        return Maintenance(
            period=m.get("period", period_unit, True),
            price=m.get("price", as_amount, self.currency),
        )

    def check_includes(self) -> None:
        for ident, places in self.include_places.items():
            for inner, place in zip(self.products[ident].includes, places, strict=True):
                if inner not in self.products:
                    known = ", ".join(self.products)
                    raise Invalid(place, f"unknown product {inner!r} (known: {known})")
        for ident, places in self.include_places.items():
            if places and self.includes_itself(ident):
                raise Invalid(places[0], f"product {ident!r} includes itself through its suites")

    def includes_itself(self, ident: str) -> bool:
        stack, seen = list(self.products[ident].includes), set()
        while stack:
            inner = stack.pop()
            if inner == ident:
                return True
            if inner not in seen:
                seen.add(inner)
                stack.extend(self.products[inner].includes)
        return False


def _pay_in_advance(value: Any, at: At, period) -> bool:
    """``true`` (billed when its period starts) or ``false`` (billed for its use when that
    use ends: at the period's end, a change or a termination); a one-time plan has no
    period to be billed after, so it is paid in advance."""
    if not isinstance(value, bool):
        raise Invalid(
            at,
            f"expected true (billed at the start of each period) or false (billed in arrears,"
            f" at its end), got {describe(value)}",
        )
    if not value and not period.recurring:
        raise Invalid(
            at,
            f"a {period.value} plan has no period to bill in arrears: it is paid when"
            " ordered (leave pay_in_advance out, or make the plan recurring)",
        )
    return value


# accounts ----------------------------------------------------------------------------------


def read_accounts(value: Any, at: At) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for item, place in list_items(value, at):
        m = Map(item, place, _ACCOUNT_KEYS, required=("id",))
        ident = _new_id(m, accounts, "account")
        rate, vat_id = m.get("tax", _tax, default=(Decimal(0), None))
        method, token = m.get("payment_method", payment_method, default=(None, None))
        accounts[ident] = Account(
            id=ident,
            locale=m.get("locale", as_locale, default="en"),
            auto_pay=m.get("auto_pay", as_flag, default=True),
            payment_method=method,
            payment_token=token,
            tax_rate=rate,
            vat_id=vat_id,
        )
    return accounts


def payment_method(value: Any, at: At) -> tuple[str | None, str | None]:
    """``card`` (a label: invoices are paid on issue, as before) or
    ``{type: card, test: declined}`` (a sandbox method the invoices are collected through)."""
    if value is None or isinstance(value, str):
        return optional(one_of)(value, at, _PAYMENT_METHODS), None
    m = Map(value, at, ("type", "test"), required=("type",))
    method = m.get("type", one_of, _PAYMENT_METHODS)
    behaviour = m.get("test", one_of, tuple(BEHAVIOURS), default="succeeds")
    return method, sandbox_token(method, behaviour)


def _tax(value: Any, at: At) -> tuple[Decimal, str | None]:
    m = Map(value, at, ("rate", "vat_id"))
    return m.get("rate", as_percent, default=Decimal(0)), m.get("vat_id", optional(as_text))

"""Scenario files: YAML in, a validated :class:`Scenario` out.

The format is the contract in ``shared/spec/scenarios.md``. Every refusal is a
:class:`ScenarioError` that names the file, the 1-based line, the dotted key path and why
the value is refused.

Invariants of a loaded :class:`Scenario`:
- plan and product ids are unique; every reference (``includes``, a subscribed plan, an
  account, a subscription changed after it was subscribed) resolves;
- amounts are exact ``Decimal`` values with no more digits than the currency allows;
- event times are aware datetimes in the scenario's zone, in non-decreasing order, and
  ``run_until`` (when given) is not before the last event;
- every policy mapping (scenario, product, plan, change proration) passed the policy schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel.core import Locale, UnknownLocaleError

from prorata.core.calendar import PeriodUnit, local_midnight
from prorata.core.catalog import Catalog, LocalText, Maintenance, Plan, Product
from prorata.core.model import (
    Account,
    Action,
    Actor,
    Approve,
    Cancel,
    Change,
    Event,
    Pay,
    Reject,
    Subscribe,
    TermSpec,
    Undo,
)
from prorata.core.money import CurrencyError, currency_digits, minor_unit, parse_decimal
from prorata.core.policy import ROLES, Policy, PolicyError, build_policy
from prorata.scenario import yamlpos
from prorata.scenario.yamlpos import PosDict, PosList

_TOP_KEYS = (
    "name",
    "currency",
    "timezone",
    "policy",
    "catalog",
    "accounts",
    "events",
    "run_until",
    "expect",
)
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
)
_ACCOUNT_KEYS = ("id", "locale", "auto_pay", "payment_method", "tax")
_PAYMENT_METHODS = ("card", "paypal", "sepa_debit", "bank_transfer")
_LANGUAGES = ("fr", "en")
_TIMINGS = ("immediate", "end_of_term")
_CHANGE_ASKS = ("plan", "quantity", "period", "add_products")


class ScenarioError(Exception):
    """An invalid scenario file.

    ``key`` is the dotted path of the offending key, list items by 0-based index as in
    Python (``events[1].change.quantity`` is in the second event); it is empty for a YAML
    syntax error. ``line`` is 1-based, or ``None`` when unknown. ``str(err)`` is
    ``"{filename}:{line}: {key}: {message}"``, without the line or key part when absent.
    """

    def __init__(self, filename: str, line: int | None, key: str, message: str) -> None:
        super().__init__(filename, line, key, message)
        self.filename = filename
        self.line = line
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; ``policy_spec`` and ``expect`` are plain data (dates as text)."""

    name: str
    currency: str
    timezone: ZoneInfo
    policy: Policy
    policy_spec: Any
    catalog: Catalog
    accounts: dict[str, Account]
    events: tuple[Event, ...]
    run_until: datetime | None
    expect: dict | None


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in the file at ``path`` (UTF-8)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), None, "", f"cannot read the file: {exc}") from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """The scenario written in ``text``; ``filename`` only names it in errors."""
    try:
        data = yamlpos.load(text)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, filename) from None
    try:
        return _scenario(data, filename)
    except _Invalid as exc:
        raise ScenarioError(filename, exc.at.line, exc.at.path, exc.message) from None


def _yaml_error(exc: yaml.MarkedYAMLError, filename: str) -> ScenarioError:
    mark = exc.problem_mark or exc.context_mark
    problem = ": ".join(part for part in (exc.context, exc.problem) if part)
    line = mark.line + 1 if mark else None
    return ScenarioError(filename, line, "", f"malformed YAML: {problem}")


# places and checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class _At:
    """Where a value is: its dotted key path and its 1-based line."""

    path: str
    line: int | None

    def key(self, name: object, line: int | None) -> _At:
        return _At(f"{self.path}.{name}" if self.path else str(name), line)

    def item(self, index: int, line: int | None) -> _At:
        return _At(f"{self.path}[{index}]", line)


class _Invalid(Exception):
    """A refused value; :func:`parse_scenario` turns it into a :class:`ScenarioError`."""

    def __init__(self, at: _At, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


class _Map:
    """A mapping under validation: its keys are checked on entry, values read with their place."""

    def __init__(
        self, value: Any, at: _At, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> None:
        if not isinstance(value, PosDict):
            raise _Invalid(at, f"expected a mapping, got {_describe(value)}")
        for key in value:
            if key not in allowed:
                raise _Invalid(
                    at.key(key, value.key_lines[key]),
                    f"unknown key {key!r} (allowed: {', '.join(allowed)})",
                )
        for key in required:
            if key not in value:
                raise _Invalid(at.key(key, value.line), f"missing required key {key!r}")
        self.data = value
        self.at = at

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def place(self, key: str) -> _At:
        return self.at.key(key, self.data.value_lines.get(key, self.data.line))

    def get(self, key: str, check: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``check(value, place, *args)`` for a key that is present, else ``default``."""
        if key not in self.data:
            return default
        return check(self.data[key], self.place(key), *args)


def _items(value: Any, at: _At) -> list[tuple[Any, _At]]:
    if not isinstance(value, PosList):
        raise _Invalid(at, f"expected a list, got {_describe(value)}")
    return [
        (item, at.item(i, line))
        for i, (item, line) in enumerate(zip(value, value.item_lines, strict=True))
    ]


def _optional(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` that lets an explicit null through as ``None``."""

    def check_or_none(value: Any, at: _At, *args: Any) -> Any:
        return None if value is None else check(value, at, *args)

    return check_or_none


def _text(value: Any, at: _At) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(at, f"expected a non-empty string, got {_describe(value)}")
    return value


def _whole(value: Any, at: _At, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(at, f"expected a whole number, got {_describe(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise _Invalid(at, f"{value} is out of range: expected a whole number {bounds}")
    return value


def _flag(value: Any, at: _At) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(at, f"expected true or false, got {_describe(value)}")
    return value


def _choice(value: Any, at: _At, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Invalid(at, f"{_describe(value)} is not one of {', '.join(choices)}")
    return value


def _period(value: Any, at: _At, recurring: bool = False) -> PeriodUnit:
    units = [u.value for u in PeriodUnit if u.recurring or not recurring]
    return PeriodUnit(_choice(value, at, units))


def _decimal(value: Any, at: _At) -> Decimal:
    try:
        return parse_decimal(value)
    except ValueError as exc:
        raise _Invalid(at, str(exc)) from None


def _amount(value: Any, at: _At, currency: str) -> Decimal:
    """A price: >= 0, exact, with no more digits than ``currency`` has (returned quantized)."""
    amount = _decimal(value, at)
    if amount < 0:
        raise _Invalid(at, f"{value!r} is negative: prices are >= 0")
    unit = minor_unit(currency)
    if amount != amount.quantize(unit):
        digits = currency_digits(currency)
        raise _Invalid(at, f"{value!r} has more digits than {currency} allows ({digits})")
    return amount.quantize(unit)


def _percent(value: Any, at: _At) -> Decimal:
    rate = _decimal(value, at)
    if not 0 <= rate <= 100:
        raise _Invalid(at, f"{value!r} is out of range: a rate in percent is in 0..100")
    return rate


def _currency(value: Any, at: _At) -> str:
    code = _text(value, at)
    try:
        currency_digits(code)
    except CurrencyError as exc:
        raise _Invalid(at, str(exc)) from None
    return code


def _zone(value: Any, at: _At) -> ZoneInfo:
    name = _text(value, at)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid(
            at, f"unknown timezone {name!r}: expected a name such as Europe/Paris"
        ) from None


def _locale(value: Any, at: _At) -> str:
    name = _text(value, at)
    try:
        language = Locale.parse(name).language
    except (ValueError, UnknownLocaleError):
        raise _Invalid(at, f"unknown locale {name!r}: expected fr, en or e.g. fr_CA") from None
    if language not in _LANGUAGES:
        raise _Invalid(at, f"locale {name!r} is not supported: its language must be fr or en")
    return name


def _instant(value: Any, at: _At, zone: ZoneInfo) -> datetime:
    """A date (00:00 local), a naive datetime (local) or an aware one (converted), in ``zone``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _Invalid(at, f"{value!r} is not a date or an ISO 8601 datetime") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone)
        return value.astimezone(zone)
    if isinstance(value, date):
        return local_midnight(value, zone)
    raise _Invalid(at, f"expected a date or an ISO 8601 datetime, got {_describe(value)}")


def _local_text(value: Any, at: _At) -> LocalText:
    if isinstance(value, str):
        return LocalText.plain(_text(value, at))
    if not isinstance(value, PosDict) or not value:
        raise _Invalid(at, f"expected a string or a mapping {{lang: text}}, got {_describe(value)}")
    texts = {}
    for lang, text in value.items():
        lang_at = at.key(lang, value.value_lines[lang])
        texts[_text(lang, lang_at)] = _text(text, lang_at)
    return LocalText(texts)


def _plain(value: Any) -> Any:
    """``value`` as plain Python data: dicts, lists and scalars, dates as ISO text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# policies ----------------------------------------------------------------------------------


def _policy_invalid(exc: PolicyError, root: Any, root_at: _At) -> _Invalid:
    """``exc`` placed on the line of the key its path names, found by walking from ``root``."""
    line = root_at.line
    node = root
    rest = exc.path.removeprefix(root_at.path).lstrip(".")
    for part in rest.split(".") if rest else ():
        if not isinstance(node, PosDict) or part not in node:
            break
        line = node.key_lines[part]
        node = node[part]
    return _Invalid(_At(exc.path, line), exc.message)


def _scenario_policy(value: Any, at: _At) -> tuple[Policy, Any]:
    if not isinstance(value, str | PosDict):
        raise _Invalid(at, f"expected a preset name or a mapping, got {_describe(value)}")
    spec = _plain(value)
    try:
        return build_policy(spec, where=at.path), spec
    except PolicyError as exc:
        raise _policy_invalid(exc, value, at) from None


def _check_layer(layer: dict, root: Any, root_at: _At, where: str) -> None:
    """Refuse an override layer that the policy schema does not accept."""
    try:
        build_policy(None).with_overrides(layer, where=where)
    except PolicyError as exc:
        raise _policy_invalid(exc, root, root_at) from None


def _policy_override(value: Any, at: _At) -> dict:
    """A catalog entry's policy overrides (no preset), as plain data."""
    if not isinstance(value, PosDict):
        raise _Invalid(at, f"expected a mapping of policy keys, got {_describe(value)}")
    layer = _plain(value)
    _check_layer(layer, value, at, where=at.path)
    return layer


def _proration_override(value: Any, at: _At, change_at: _At) -> dict:
    """A change's ``proration`` overrides, checked as ``policy.proration``."""
    if not isinstance(value, PosDict):
        raise _Invalid(at, f"expected a mapping of proration keys, got {_describe(value)}")
    layer = _plain(value)
    _check_layer({"proration": layer}, value, at, where=change_at.path)
    return layer


# catalog -----------------------------------------------------------------------------------


def _new_id(m: _Map, taken: Mapping[str, Any], what: str) -> str:
    """The ``id`` of ``m``, refused when another ``what`` already has it."""
    ident = m.get("id", _text)
    if ident in taken:
        raise _Invalid(m.place("id"), f"duplicate {what} id {ident!r}")
    return ident


class _CatalogReader:
    """Reads ``catalog``: plan ids are unique across the catalog, includes resolve, no cycles."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.products: dict[str, Product] = {}
        self.plans: dict[str, Plan] = {}
        self.include_places: dict[str, list[_At]] = {}

    def read(self, value: Any, at: _At) -> Catalog:
        catalog = _Map(value, at, ("products",), required=("products",))
        for item, place in _items(catalog.data["products"], catalog.place("products")):
            self.product(item, place)
        self.check_includes()
        return Catalog(products=self.products, plans=self.plans)

    def product(self, value: Any, at: _At) -> None:
        m = _Map(value, at, _PRODUCT_KEYS, required=("id",))
        ident = _new_id(m, self.products, "product")
        includes = m.get("includes", _items, default=[])
        self.include_places[ident] = [place for _, place in includes]
        self.products[ident] = Product(
            id=ident,
            name=m.get("name", _local_text, default=LocalText.plain(ident)),
            includes=tuple(_text(inner, place) for inner, place in includes),
            platform=m.get("platform", _optional(_text)),
            policy=m.get("policy", _policy_override, default={}),
        )
        for item, place in m.get("plans", _items, default=[]):
            self.plan(item, place, ident)

    def plan(self, value: Any, at: _At, product: str) -> None:
        m = _Map(value, at, _PLAN_KEYS, required=("id", "period", "price"))
        ident = _new_id(m, self.plans, "plan")
        self.plans[ident] = Plan(
            id=ident,
            product=product,
            name=m.get("name", _local_text, default=LocalText.plain(ident)),
            tier=m.get("tier", _whole, 0, default=1),
            period=m.get("period", _period),
            price=m.get("price", _amount, self.currency),
            per_unit=m.get("per_unit", _flag, default=False),
            fulfillment=m.get("fulfillment", _choice, ("auto", "manual"), default="auto"),
            maintenance=m.get("maintenance", _optional(self.maintenance)),
            policy=m.get("policy", _policy_override, default={}),
        )

    def maintenance(self, value: Any, at: _At) -> Maintenance:
        m = _Map(value, at, ("period", "price"), required=("period", "price"))
        return Maintenance(
            period=m.get("period", _period, True), price=m.get("price", _amount, self.currency)
        )

    def check_includes(self) -> None:
        for ident, places in self.include_places.items():
            for inner, place in zip(self.products[ident].includes, places, strict=True):
                if inner not in self.products:
                    known = ", ".join(self.products)
                    raise _Invalid(place, f"unknown product {inner!r} (known: {known})")
        for ident, places in self.include_places.items():
            if places and self.includes_itself(ident):
                raise _Invalid(places[0], f"product {ident!r} includes itself through its suites")

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


# accounts ----------------------------------------------------------------------------------


def _accounts(value: Any, at: _At) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for item, place in _items(value, at):
        m = _Map(item, place, _ACCOUNT_KEYS, required=("id",))
        ident = _new_id(m, accounts, "account")
        rate, vat_id = m.get("tax", _tax, default=(Decimal(0), None))
        accounts[ident] = Account(
            id=ident,
            locale=m.get("locale", _locale, default="en"),
            auto_pay=m.get("auto_pay", _flag, default=True),
            payment_method=m.get("payment_method", _optional(_choice), _PAYMENT_METHODS),
            tax_rate=rate,
            vat_id=vat_id,
        )
    return accounts


def _tax(value: Any, at: _At) -> tuple[Decimal, str | None]:
    m = _Map(value, at, ("rate", "vat_id"))
    return m.get("rate", _percent, default=Decimal(0)), m.get("vat_id", _optional(_text))


# events ------------------------------------------------------------------------------------


class _EventReader:
    """Reads ``events`` in file order: references resolve against the catalog, the accounts
    and the subscriptions created by earlier events."""

    def __init__(self, catalog: Catalog, accounts: Mapping[str, Account], zone: ZoneInfo) -> None:
        self.catalog = catalog
        self.accounts = accounts
        self.zone = zone
        self.subscriptions: set[str] = set()
        self.actions: dict[str, tuple[Callable[[_Map], Action], tuple[str, ...], tuple[str, ...]]]
        self.actions = {
            "subscribe": (
                self.subscribe,
                ("id", "account", "plan", "quantity", "billing_day", "term", "add_products"),
                ("id", "account", "plan"),
            ),
            "change": (
                self.change,
                ("subscription", *_CHANGE_ASKS, "timing", "anchor", "proration", "by"),
                ("subscription",),
            ),
            "cancel": (self.cancel, ("subscription", "timing", "by"), ("subscription",)),
            "undo": (self.undo, ("subscription", "by"), ("subscription",)),
            "approve": (self.approve, ("request", "by"), ("request",)),
            "reject": (self.reject, ("request", "by"), ("request",)),
            "pay": (self.pay, ("invoice",), ("invoice",)),
        }

    def read(self, value: Any, at: _At) -> tuple[Event, ...]:
        events: list[Event] = []
        for index, (item, place) in enumerate(_items(value, at)):
            event = self.event(item, place, index + 1)
            if events and event.at < events[-1].at:
                raise _Invalid(
                    place.key("at", item.value_lines["at"]),
                    f"{event.at.isoformat()} is before the previous event "
                    f"({events[-1].at.isoformat()}): events must be in time order",
                )
            events.append(event)
        return tuple(events)

    def event(self, value: Any, at: _At, index: int) -> Event:
        m = _Map(value, at, ("at", *self.actions), required=("at",))
        names = [name for name in self.actions if name in m]
        if len(names) != 1:
            got = ", ".join(names) or "none"
            raise _Invalid(
                at, f"an event needs exactly one of {', '.join(self.actions)} (got {got})"
            )
        read, allowed, required = self.actions[names[0]]
        when = m.get("at", _instant, self.zone)
        action = read(_Map(m.data[names[0]], m.place(names[0]), allowed, required))
        return Event(index=index, at=when, action=action, line=at.line)

    # references

    def account(self, value: Any, at: _At) -> str:
        ident = _text(value, at)
        if ident not in self.accounts:
            raise _Invalid(at, f"unknown account {ident!r} (known: {', '.join(self.accounts)})")
        return ident

    def plan(self, value: Any, at: _At) -> str:
        ident = _text(value, at)
        if ident not in self.catalog.plans:
            known = ", ".join(self.catalog.plans)
            raise _Invalid(at, f"unknown plan {ident!r} (known: {known})")
        return ident

    def plans(self, value: Any, at: _At) -> tuple[str, ...]:
        return tuple(self.plan(item, place) for item, place in _items(value, at))

    def subscription(self, value: Any, at: _At) -> str:
        ident = _text(value, at)
        if ident not in self.subscriptions:
            raise _Invalid(at, f"unknown subscription {ident!r}: no earlier event subscribes it")
        return ident

    def actor(self, value: Any, at: _At) -> Actor:
        m = _Map(value, at, ("account", "role"))
        return Actor(
            account=m.get("account", self.account),
            role=m.get("role", _choice, ROLES, default="owner"),
        )

    # actions

    def subscribe(self, m: _Map) -> Subscribe:
        ident = m.get("id", _text)
        if ident in self.subscriptions:
            raise _Invalid(m.place("id"), f"duplicate subscription id {ident!r}")
        action = Subscribe(
            id=ident,
            account=m.get("account", self.account),
            plan=m.get("plan", self.plan),
            quantity=m.get("quantity", _whole, 1, default=1),
            billing_day=m.get("billing_day", _whole, 1, 31),
            term=m.get("term", _term),
            add_products=m.get("add_products", self.plans, default=()),
        )
        self.subscriptions.add(ident)
        return action

    def change(self, m: _Map) -> Change:
        action = Change(
            subscription=m.get("subscription", self.subscription),
            plan=m.get("plan", self.plan),
            quantity=m.get("quantity", _whole, 1),
            period=m.get("period", _period),
            add_products=m.get("add_products", self.plans, default=()),
            timing=m.get("timing", _choice, _TIMINGS),
            anchor=m.get("anchor", _choice, ("keep", "reset")),
            proration=m.get("proration", _proration_override, m.at, default={}),
            by=m.get("by", self.actor),
        )
        if all(getattr(action, key) in (None, ()) for key in _CHANGE_ASKS):
            raise _Invalid(m.at, f"a change must ask for something: {', '.join(_CHANGE_ASKS)}")
        return action

    def cancel(self, m: _Map) -> Cancel:
        return Cancel(
            subscription=m.get("subscription", self.subscription),
            timing=m.get("timing", _choice, _TIMINGS),
            by=m.get("by", self.actor),
        )

    def undo(self, m: _Map) -> Undo:
        return Undo(
            subscription=m.get("subscription", self.subscription), by=m.get("by", self.actor)
        )

    def approve(self, m: _Map) -> Approve:
        return Approve(request=m.get("request", _whole, 1), by=m.get("by", self.actor))

    def reject(self, m: _Map) -> Reject:
        return Reject(request=m.get("request", _whole, 1), by=m.get("by", self.actor))

    def pay(self, m: _Map) -> Pay:
        return Pay(invoice=m.get("invoice", _text))


def _term(value: Any, at: _At) -> TermSpec:
    m = _Map(value, at, ("period", "auto_renew"), required=("period",))
    return TermSpec(
        period=m.get("period", _period, True), auto_renew=m.get("auto_renew", _flag, default=True)
    )


# the file ----------------------------------------------------------------------------------


def _scenario(data: Any, filename: str) -> Scenario:
    top = _Map(data, _At("", 1), _TOP_KEYS, required=("currency", "catalog", "accounts", "events"))
    currency = top.get("currency", _currency)
    zone = top.get("timezone", _zone, default=ZoneInfo("UTC"))
    policy, spec = top.get("policy", _scenario_policy, default=(build_policy(None), None))
    catalog = _CatalogReader(currency).read(top.data["catalog"], top.place("catalog"))
    accounts = _accounts(top.data["accounts"], top.place("accounts"))
    events = _EventReader(catalog, accounts, zone).read(top.data["events"], top.place("events"))
    run_until = top.get("run_until", _instant, zone)
    if run_until is not None and events and run_until < events[-1].at:
        raise _Invalid(
            top.place("run_until"),
            f"{run_until.isoformat()} is before the last event ({events[-1].at.isoformat()})",
        )
    return Scenario(
        name=top.get("name", _text, default=Path(filename).stem),
        currency=currency,
        timezone=zone,
        policy=policy,
        policy_spec=spec,
        catalog=catalog,
        accounts=accounts,
        events=events,
        run_until=run_until,
        expect=top.get("expect", _expect),
    )


def _expect(value: Any, at: _At) -> dict:
    if not isinstance(value, PosDict):
        raise _Invalid(at, f"expected a mapping, got {_describe(value)}")
    return _plain(value)

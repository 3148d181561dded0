"""The ``events`` reader: each event checked in file order against what precedes it.

Invariants:
- every reference resolves: accounts and plans against the loaded accounts and catalog, a
  subscription only when an earlier event subscribes it (subscription ids are unique);
- each event has ``at`` and exactly one action; times are aware datetimes in the
  scenario's zone, in non-decreasing order; events are numbered from 1 in file order;
- a change asks for at least one of plan, quantity, period or add_products, and its
  ``proration`` overrides passed the policy schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from prorata.adapters.gateways import BEHAVIOURS, sandbox_token
from prorata.core.calendar import BILLING_TIMES, billing_day_fits
from prorata.core.catalog import Catalog
from prorata.core.model import (
    Account,
    Action,
    Actor,
    Approve,
    Cancel,
    Change,
    Event,
    Fail,
    Pay,
    Reject,
    SetPaymentMethod,
    Subscribe,
    TermSpec,
    Undo,
)
from prorata.core.payments import METHOD_TYPES as PAYMENT_METHODS
from prorata.core.payments import OUTCOMES
from prorata.core.policy import ROLES
from prorata.scenario.fields import (
    At,
    Invalid,
    Map,
    as_flag,
    as_instant,
    as_text,
    list_items,
    one_of,
    period_unit,
    whole_number,
)
from prorata.scenario.sections import proration_override

_TIMINGS = ("immediate", "end_of_term")
_CHANGE_ASKS = ("plan", "quantity", "period", "add_products")


class EventReader:
    """Reads ``events`` in file order: references resolve against the catalog, the accounts
    and the subscriptions created by earlier events."""

    def __init__(self, catalog: Catalog, accounts: Mapping[str, Account], zone: ZoneInfo) -> None:
        self.catalog = catalog
        self.accounts = accounts
        self.zone = zone
        self.subscriptions: set[str] = set()
        self.actions: dict[str, tuple[Callable[[Map], Action], tuple[str, ...], tuple[str, ...]]]
        self.actions = {
            "subscribe": (
                self.subscribe,
                (
                    "id",
                    "account",
                    "plan",
                    "quantity",
                    "billing_day",
                    "billing_time",
                    "term",
                    "add_products",
                ),
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
            "pay": (self.pay, ("invoice", "method"), ("invoice",)),
            "fail": (self.fail, ("invoice", "reason"), ("invoice",)),
            "payment_method": (
                self.set_payment_method,
                ("account", "type", "test"),
                ("account", "type"),
            ),
        }

    def read(self, value: Any, at: At) -> tuple[Event, ...]:
        events: list[Event] = []
        for index, (item, place) in enumerate(list_items(value, at)):
            event = self.event(item, place, index + 1)
            if events and event.at < events[-1].at:
                raise Invalid(
                    place.key("at", item.value_lines["at"]),
                    f"{event.at.isoformat()} is before the previous event "
                    f"({events[-1].at.isoformat()}): events must be in time order",
                )
            events.append(event)
        return tuple(events)

    def event(self, value: Any, at: At, index: int) -> Event:
        m = Map(value, at, ("at", *self.actions), required=("at",))
        names = [name for name in self.actions if name in m]
        if len(names) != 1:
            got = ", ".join(names) or "none"
            raise Invalid(
                at, f"an event needs exactly one of {', '.join(self.actions)} (got {got})"
            )
        read, allowed, required = self.actions[names[0]]
        when = m.get("at", as_instant, self.zone)
        action = read(Map(m.data[names[0]], m.place(names[0]), allowed, required))
        return Event(index=index, at=when, action=action, line=at.line)

    # references

    def account(self, value: Any, at: At) -> str:
        ident = as_text(value, at)
        if ident not in self.accounts:
            raise Invalid(at, f"unknown account {ident!r} (known: {', '.join(self.accounts)})")
        return ident

    def plan(self, value: Any, at: At) -> str:
        ident = as_text(value, at)
        if ident not in self.catalog.plans:
            known = ", ".join(self.catalog.plans)
            raise Invalid(at, f"unknown plan {ident!r} (known: {known})")
        return ident

    def plans(self, value: Any, at: At) -> tuple[str, ...]:
        return tuple(self.plan(item, place) for item, place in list_items(value, at))

    def subscription(self, value: Any, at: At) -> str:
        ident = as_text(value, at)
        if ident not in self.subscriptions:
            raise Invalid(at, f"unknown subscription {ident!r}: no earlier event subscribes it")
        return ident

    def actor(self, value: Any, at: At) -> Actor:
        m = Map(value, at, ("account", "role"))
        return Actor(
            account=m.get("account", self.account),
            role=m.get("role", one_of, ROLES, default="owner"),
        )

    # actions

    def subscribe(self, m: Map) -> Subscribe:
        ident = m.get("id", as_text)
        if ident in self.subscriptions:
            raise Invalid(m.place("id"), f"duplicate subscription id {ident!r}")
        action = Subscribe(
            id=ident,
            account=m.get("account", self.account),
            plan=m.get("plan", self.plan),
            quantity=m.get("quantity", whole_number, 1, default=1),
            billing_day=m.get("billing_day", whole_number, 1, 31),
            term=m.get("term", term_spec),
            add_products=m.get("add_products", self.plans, default=()),
            billing_time=m.get("billing_time", one_of, BILLING_TIMES),
        )
        if not billing_day_fits(action.billing_time, action.billing_day):
            raise Invalid(
                m.place("billing_day"),
                f"{action.billing_day} does not go with billing_time calendar (calendar"
                " periods start on the 1st; use billing_time anniversary to bill on another"
                " day)",
            )
        billing = self.catalog.plans[action.plan].period
        if action.term is not None and not action.term.covers(billing):
            raise Invalid(
                m.place("term"),
                f"a {action.term.period} term is shorter than plan {action.plan}'s"
                f" {billing} billing period: a term lasts at least one billing period",
            )
        self.subscriptions.add(ident)
        return action

    def change(self, m: Map) -> Change:
        action = Change(
            subscription=m.get("subscription", self.subscription),
            plan=m.get("plan", self.plan),
            quantity=m.get("quantity", whole_number, 1),
            period=m.get("period", period_unit),
            add_products=m.get("add_products", self.plans, default=()),
            timing=m.get("timing", one_of, _TIMINGS),
            anchor=m.get("anchor", one_of, ("keep", "reset")),
            proration=m.get("proration", proration_override, m.at, default={}),
            by=m.get("by", self.actor),
        )
        if all(getattr(action, key) in (None, ()) for key in _CHANGE_ASKS):
            raise Invalid(m.at, f"a change must ask for something: {', '.join(_CHANGE_ASKS)}")
        return action

    def cancel(self, m: Map) -> Cancel:
        return Cancel(
            subscription=m.get("subscription", self.subscription),
            timing=m.get("timing", one_of, _TIMINGS),
            by=m.get("by", self.actor),
        )

    def undo(self, m: Map) -> Undo:
        return Undo(
            subscription=m.get("subscription", self.subscription), by=m.get("by", self.actor)
        )

    def approve(self, m: Map) -> Approve:
        return Approve(request=m.get("request", whole_number, 1), by=m.get("by", self.actor))

    def reject(self, m: Map) -> Reject:
        return Reject(request=m.get("request", whole_number, 1), by=m.get("by", self.actor))

    def pay(self, m: Map) -> Pay:
        method = m.get("method", one_of, PAYMENT_METHODS)
        return Pay(invoice=m.get("invoice", as_text), method=method)

    def fail(self, m: Map) -> Fail:
        reasons = tuple(o for o in OUTCOMES if o != "succeeded")
        return Fail(
            invoice=m.get("invoice", as_text),
            reason=m.get("reason", one_of, reasons, default="declined"),
        )

    def set_payment_method(self, m: Map) -> SetPaymentMethod:
        method = m.get("type", one_of, PAYMENT_METHODS)
        behaviour = m.get("test", one_of, tuple(BEHAVIOURS), default="succeeds")
        return SetPaymentMethod(
            account=m.get("account", self.account),
            method=method,
            token=sandbox_token(method, behaviour),
        )


def term_spec(value: Any, at: At) -> TermSpec:
    m = Map(value, at, ("period", "auto_renew"), required=("period",))
    return TermSpec(
        period=m.get("period", period_unit, True),
        auto_renew=m.get("auto_renew", as_flag, default=True),
    )

"""Policy: for each kind of change, when it takes effect and what money moves.

A policy is built from nested mappings merged in order (defaults, preset, scenario,
catalog entry, single change); every key is validated against ``SCHEMA`` and the result is
an immutable :class:`Policy`. Unknown keys and values are refused with the dotted path of
the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prorata.core.calendar import BILLING_TIMES
from prorata.core.payments import Dunning, PaymentChange

CHANGE_KINDS = (
    "upgrade",
    "downgrade",
    "quantity_increase",
    "quantity_decrease",
    "period_change",
    "cancel",
)
TIMINGS = ("immediate", "end_of_term", "approval", "forbidden")
INVOICE_MODES = ("now", "next_invoice")
CREDIT_MODES = ("credit_note", "account_credit", "refund", "none")
ROLES = ("owner", "billing_contact", "member", "support", "account_manager")


class PolicyError(ValueError):
    """A policy key or value that is not allowed; ``path`` is the dotted key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _choice(*values: str):
    def check(path: str, value: Any) -> Any:
        if value not in values:
            raise PolicyError(path, f"{value!r} is not one of {', '.join(values)}")
        return value

    return check


def _int(minimum: int = 0, nullable: bool = False):
    def check(path: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PolicyError(path, f"{value!r} is not a whole number >= {minimum}")
        return value

    return check


def _subset(*values: str):
    def check(path: str, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise PolicyError(path, f"{value!r} is not a list")
        for item in value:
            if item not in values:
                raise PolicyError(path, f"{item!r} is not one of {', '.join(values)}")
        return tuple(value)

    return check


def _day_offsets(path: str, value: Any) -> Any:
    if not isinstance(value, list | tuple) or not value:
        raise PolicyError(path, f"{value!r} is not a non-empty list of days")
    previous = -1
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item <= previous:
            raise PolicyError(
                path, f"{item!r}: days after the first failure must be whole and increasing"
            )
        previous = item
    return tuple(value)


_PRORATION_SCHEMA = {
    "unit": _choice("day", "second", "none"),
    # fixed_30: Kill Bill's org.killbill.invoice.proration.fixed.days = 30 (see calendar.py)
    "basis": _choice("actual", "30/360", "fixed_30"),
    "change_day": _choice("remaining", "used"),
    "credit_from": _choice("price", "billed"),
    "ratio_digits": _int(0, nullable=True),
    # extension: how a prorated change is itemised (see Proration.lines)
    "lines": _choice("separate", "difference"),
    # extension: a change from terms that cost nothing (see Proration.from_free)
    "from_free": _choice("prorate", "new_period"),
    # extension: how a prorated amount is computed (see Proration.arithmetic)
    "arithmetic": _choice("exact", "binary64"),
    # extension: what a change bills when proration is off (see Proration.unprorated)
    "unprorated": _choice("nothing", "full_price"),
}

_RULE_SCHEMA = {
    "timing": _choice(*TIMINGS),
    "invoice": _choice(*INVOICE_MODES),
    "credit": _choice(*CREDIT_MODES),
    # extension: when an approved change takes effect
    "after_approval": _choice("immediate", "end_of_term"),
    # extension: per-kind override of proration.change_day (Lago termination)
    "change_day": _choice("remaining", "used"),
}

SCHEMA: dict[str, Any] = {
    "classify": _choice("tier", "price"),
    # extension: how many weeks make a year when prices of different periods are compared
    # (``365/7`` calendar weeks; ``52``, Lago's Plan#yearly_amount_cents)
    "classify_weeks_per_year": _choice("365/7", "52"),
    "rounding": _choice("half_up", "half_even"),
    "proration": _PRORATION_SCHEMA,
    **{kind: dict(_RULE_SCHEMA) for kind in CHANGE_KINDS},
    "notice": {"days": _int(0), "applies_to": _subset(*CHANGE_KINDS)},
    "licence": {
        "upgrade_credit": _choice("full_original", "none"),
        "early_days": _int(0),
        "late_days": _int(0),
    },
    # extension: who may change a subscription of their account
    "authorized_roles": _subset(*ROLES),
    # extension: roles whose own change or cancellation needs no approval: a change whose
    # timing is `approval`, made by one of them, takes effect as `after_approval` says
    # (GoToAssist: a lower tier is done by customer support, not asked of it)
    "approvers": _subset(*ROLES),
    # extension: when a change whose invoice asks for money takes effect
    "payment": {
        "change": _choice("immediately", "on_payment", "pending_if_incomplete"),
        "pending_hours": _int(1),
    },
    # extension: retries of a failed collection and what follows the last one
    "dunning": {"retry_days": _day_offsets, "final": _choice("suspend", "cancel", "keep")},
    # extension: which invoice bills the lines a change left for later (`invoice:
    # next_invoice`): the next renewal only, or the next invoice issued for the subscription
    # (a change invoiced now, a new billing period, a final invoice), as Stripe does; with
    # `any_invoice`, an immediate cancellation with `cancel.invoice: next_invoice` and a
    # credit (`cancel.credit` other than `none`) leaves them and the credit on the account,
    # for the next invoice issued to it (see lifecycle.evaluate_cancel)
    "pending_lines": _choice("renewal", "any_invoice"),
    # extension: where a new subscription's periods start when its subscribe does not say:
    # `anniversary`, from its start (or billing day); `calendar`, on calendar boundaries
    # (1st of the month, 1 Jan/Apr/Jul/Oct, 1 Jan/Jul, 1 January; weekly on Monday), the
    # first period prorated (Lago's billing_time, whose default is calendar)
    "billing_time": _choice(*BILLING_TIMES),
    # extension: what a credit note (`credit: credit_note`) does when the invoice it refers
    # to is still open: ``account`` credits the account as for a paid one; ``adjustment``
    # (Chargebee) lowers that invoice's amount due instead, up to what it still asks for,
    # and only the rest goes to the account (see documents.issue_adjustment)
    "unpaid_invoice_credit": _choice("account", "adjustment"),
}
# where the periods of a new billing cycle fall: ``reset`` starts one on the change day;
# ``keep`` keeps the billing day; ``due_date`` (WHMCS) keeps the current period's end: the
# rest of the period is charged at the new cycle's price per day (over the new cycle that
# ends there) less the old price per day, and the new cycle starts at that end
SCHEMA["period_change"]["anchor"] = _choice("keep", "reset", "due_date")
# with anchor due_date: ``prorate`` charges the difference as above; ``nothing`` charges and
# credits nothing when the old and new prices per month, each rounded to the cent, are equal
# (WHMCS then prices the new cycle as the old price per day over the new cycle's days)
SCHEMA["period_change"]["equal_monthly"] = _choice("prorate", "nothing")

DEFAULTS: dict[str, Any] = {
    "classify": "tier",
    "classify_weeks_per_year": "365/7",
    "rounding": "half_up",
    "proration": {
        "unit": "day",
        "basis": "actual",
        "change_day": "remaining",
        "credit_from": "price",
        "ratio_digits": None,
        "lines": "separate",
        "from_free": "prorate",
        "arithmetic": "exact",
        "unprorated": "nothing",
    },
    "upgrade": {"timing": "immediate", "invoice": "now", "credit": "account_credit"},
    "downgrade": {"timing": "end_of_term", "invoice": "now", "credit": "none"},
    "quantity_increase": {"timing": "immediate", "invoice": "now", "credit": "account_credit"},
    "quantity_decrease": {"timing": "immediate", "invoice": "now", "credit": "account_credit"},
    "period_change": {
        "timing": "immediate",
        "invoice": "now",
        "credit": "account_credit",
        "anchor": "reset",
    },
    "cancel": {"timing": "end_of_term", "invoice": "now", "credit": "none"},
    "notice": {"days": 0, "applies_to": []},
    "licence": {"upgrade_credit": "full_original", "early_days": 0, "late_days": 0},
    "authorized_roles": ["owner", "billing_contact", "support", "account_manager"],
    "approvers": [],
    "payment": {"change": "immediately", "pending_hours": 23},
    "dunning": {"retry_days": [3, 5, 7], "final": "suspend"},
    "pending_lines": "renewal",
    "billing_time": "anniversary",
    "unpaid_invoice_credit": "account",
}


@dataclass(frozen=True)
class Proration:
    """How unused and new time is measured.

    ``lines``: ``separate`` shows a credit for the old terms and a charge for the new terms
    over the same stretch (each rounded once); ``difference`` shows one line, the difference
    of the two, rounded once (WHMCS, Kajoom, GroupDocs, Aircall).

    ``from_free``: what a change does when the subscription's terms before it cost nothing
    (every item priced 0). ``prorate``: as any change, over the rest of the current period.
    ``new_period``: a new period of the new plan starts on the change day, billed in full,
    and the billing day becomes the change day (WHMCS: an upgrade from a free product sets
    the next due date one billing cycle after the upgrade).

    ``arithmetic``: ``exact`` multiplies the price by the exact time ratio and rounds once.
    ``binary64`` reproduces a system that computes in double precision (Lago: the price in
    minor units divided by the period's days or seconds, times those used, each operation
    rounded to binary64, see :mod:`prorata.core.binary64`), then rounds once to the minor
    unit (``ratio_digits`` does not apply); it differs from ``exact`` only where the exact
    amount is a half minor unit or lies within a double's rounding of one.

    ``unprorated``: what a change within the billing cycle bills when ``unit`` is ``none``.
    ``nothing``: the new terms apply from the next invoice, nothing is credited (Stripe
    ``proration_behavior=none``). ``full_price``: nothing is credited either, but a change
    of plan charges the new plan's full period price at once and a quantity increase the
    added units' full period price; a decrease charges nothing (Chargebee with proration
    disabled).
    """

    unit: str
    basis: str
    change_day: str
    credit_from: str
    ratio_digits: int | None
    lines: str
    from_free: str = "prorate"
    arithmetic: str = "exact"
    unprorated: str = "nothing"


@dataclass(frozen=True)
class ChangeRule:
    timing: str
    invoice: str
    credit: str
    after_approval: str = "immediate"
    change_day: str | None = None
    anchor: str = "reset"
    equal_monthly: str = "prorate"


@dataclass(frozen=True)
class Policy:
    name: str
    classify: str
    rounding: str
    proration: Proration
    rules: Mapping[str, ChangeRule]
    notice_days: int
    notice_applies_to: frozenset[str]
    licence_upgrade_credit: str
    licence_early_days: int
    licence_late_days: int
    authorized_roles: frozenset[str]
    source: Mapping[str, Any]  # the merged mapping, to apply further overrides
    # with defaults: a policy stored before these keys existed still decodes
    payment: PaymentChange = field(default_factory=PaymentChange)
    dunning: Dunning = field(default_factory=Dunning)
    pending_lines: str = "renewal"
    classify_weeks_per_year: str = "365/7"
    approvers: frozenset[str] = frozenset()
    billing_time: str = "anniversary"
    unpaid_invoice_credit: str = "account"

    def approves(self, actor) -> bool:
        """Whether ``actor``'s own change passes the approval gate (``approvers``)."""
        return actor is not None and actor.role in self.approvers

    def rule(self, kind: str) -> ChangeRule:
        return self.rules[kind]

    def change_day(self, kind: str) -> str:
        return self.rules[kind].change_day or self.proration.change_day

    def with_overrides(self, *overrides: Mapping[str, Any] | None, where: str = "policy") -> Policy:
        """This policy with further overrides merged on top (validated the same way)."""
        layers = [o for o in overrides if o]
        if not layers:
            return self
        merged = copy.deepcopy(dict(self.source))
        for layer in layers:
            _merge(merged, layer, SCHEMA, where)
        return _build(self.name, merged)


def _merge(target: dict, layer: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> None:
    if not isinstance(layer, Mapping):
        raise PolicyError(path, f"expected a mapping, got {layer!r}")
    for key, value in layer.items():
        key_path = f"{path}.{key}"
        if key not in schema:
            raise PolicyError(key_path, f"unknown policy key (known: {', '.join(schema)})")
        spec = schema[key]
        if isinstance(spec, dict):
            target.setdefault(key, {})
            _merge(target[key], value, spec, key_path)
        else:
            target[key] = spec(key_path, value)


def _build(name: str, merged: Mapping[str, Any]) -> Policy:
    # a source stored before the payment keys existed lacks them: their defaults apply
    payment = {**DEFAULTS["payment"], **merged.get("payment", {})}
    dunning = {**DEFAULTS["dunning"], **merged.get("dunning", {})}
    rules = {}
    for kind in CHANGE_KINDS:
        raw = merged[kind]
        rules[kind] = ChangeRule(
            timing=raw["timing"],
            invoice=raw["invoice"],
            credit=raw["credit"],
            after_approval=raw.get("after_approval", "immediate"),
            change_day=raw.get("change_day"),
            anchor=raw.get("anchor", "reset"),
            equal_monthly=raw.get("equal_monthly", "prorate"),
        )
    pr = merged["proration"]
    return Policy(
        name=name,
        classify=merged["classify"],
        rounding=merged["rounding"],
        proration=Proration(
            unit=pr["unit"],
            basis=pr["basis"],
            change_day=pr["change_day"],
            credit_from=pr["credit_from"],
            ratio_digits=pr["ratio_digits"],
            lines=pr["lines"],
            # a source stored before this key existed lacks it: the default applies
            from_free=pr.get("from_free", "prorate"),
            arithmetic=pr.get("arithmetic", "exact"),
            unprorated=pr.get("unprorated", "nothing"),
        ),
        rules=rules,
        notice_days=merged["notice"]["days"],
        notice_applies_to=frozenset(merged["notice"]["applies_to"]),
        licence_upgrade_credit=merged["licence"]["upgrade_credit"],
        licence_early_days=merged["licence"]["early_days"],
        licence_late_days=merged["licence"]["late_days"],
        authorized_roles=frozenset(merged["authorized_roles"]),
        approvers=frozenset(merged.get("approvers", ())),
        payment=PaymentChange(payment["change"], payment["pending_hours"]),
        dunning=Dunning(tuple(dunning["retry_days"]), dunning["final"]),
        pending_lines=merged.get("pending_lines", DEFAULTS["pending_lines"]),
        classify_weeks_per_year=merged.get("classify_weeks_per_year", "365/7"),
        billing_time=merged.get("billing_time", DEFAULTS["billing_time"]),
        unpaid_invoice_credit=merged.get(
            "unpaid_invoice_credit", DEFAULTS["unpaid_invoice_credit"]
        ),
        source=merged,
    )


def build_policy(spec: str | Mapping[str, Any] | None, where: str = "policy") -> Policy:
    """A policy from a preset name, or a mapping ``{preset: NAME, key: override, ...}``."""
    from prorata.core.presets import PRESETS  # the presets are data built on this module

    if spec is None:
        spec = {}
    if isinstance(spec, str):
        spec = {"preset": spec}
    if not isinstance(spec, Mapping):
        raise PolicyError(where, f"expected a preset name or a mapping, got {spec!r}")
    overrides = dict(spec)
    preset = overrides.pop("preset", None)
    merged = copy.deepcopy(DEFAULTS)
    name = "default"
    if preset is not None:
        if preset not in PRESETS:
            raise PolicyError(
                f"{where}.preset" if isinstance(spec, Mapping) and len(spec) > 1 else where,
                f"unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})",
            )
        _merge(merged, PRESETS[preset], SCHEMA, where)
        name = preset
    _merge(merged, overrides, SCHEMA, where)
    return _build(name, merged)

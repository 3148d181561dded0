"""Value types shared by the core: who acts, what a change asks for, accounts.

Everything here is immutable and validated by whoever builds it (the scenario loader, the
API); the engine trusts these shapes and checks only business rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from prorata.core.calendar import PeriodUnit


@dataclass(frozen=True)
class Actor:
    """Who performs an action: an account and the role the person holds there.

    ``support`` and ``account_manager`` are the seller's staff acting on the account's behalf.
    """

    account: str | None
    role: str = "owner"

    @property
    def is_staff(self) -> bool:
        return self.role in ("support", "account_manager")


@dataclass(frozen=True)
class Account:
    id: str
    locale: str = "en"
    auto_pay: bool = True
    payment_method: str | None = None  # card | paypal | sepa_debit | bank_transfer
    tax_rate: Decimal = Decimal(0)
    vat_id: str | None = None
    # a gateway's token for the method (never a card number); with ``auto_pay`` the
    # account's invoices are collected through it, else they are paid on issue
    payment_token: str | None = None


@dataclass(frozen=True)
class TermSpec:
    """A contract term: the commitment that renews (or not) at its end.

    A term lasts at least one billing period of a recurring plan (:meth:`covers`): it
    commits to whole periods already paid or owed, and its end (and the notice before it)
    is checked at the period boundaries where a subscription renews."""

    period: PeriodUnit
    auto_renew: bool = True

    def covers(self, billing: PeriodUnit) -> bool:
        """Whether the term lasts at least one ``billing`` period (any term does for a
        one-time plan, whose term is its maintenance)."""
        return not billing.recurring or self.period.per_year <= billing.per_year


@dataclass(frozen=True)
class Subscribe:
    id: str
    account: str
    plan: str
    quantity: int = 1
    billing_day: int | None = None
    term: TermSpec | None = None
    add_products: tuple[str, ...] = ()
    # anniversary | calendar: where periods start; None takes the policy's ``billing_time``
    billing_time: str | None = None


@dataclass(frozen=True)
class Change:
    """A requested change. ``None`` fields keep the current value."""

    subscription: str
    plan: str | None = None
    quantity: int | None = None
    period: PeriodUnit | None = None
    add_products: tuple[str, ...] = ()
    timing: str | None = None  # immediate | end_of_term: overrides the policy's timing
    anchor: str | None = None  # keep | reset: overrides period_change.anchor; reset also
    # restarts the billing period on a change of the same period (Stripe billing_cycle_anchor=now)
    proration: Mapping[str, Any] = field(default_factory=dict)  # overrides policy.proration
    by: Actor | None = None


@dataclass(frozen=True)
class Cancel:
    subscription: str
    timing: str | None = None  # immediate | end_of_term
    by: Actor | None = None


@dataclass(frozen=True)
class Undo:
    """Withdraw a scheduled change or cancellation of a subscription."""

    subscription: str
    by: Actor | None = None


@dataclass(frozen=True)
class Approve:
    request: int
    by: Actor | None = None


@dataclass(frozen=True)
class Reject:
    request: int
    by: Actor | None = None


@dataclass(frozen=True)
class Pay:
    """The invoice is paid (by hand, or by the customer after a failed collection)."""

    invoice: str
    method: str | None = None


@dataclass(frozen=True)
class Fail:
    """A collection of the invoice failed (a debit returned, a card declined)."""

    invoice: str
    reason: str = "declined"


@dataclass(frozen=True)
class SetPaymentMethod:
    """The account's payment method becomes ``method`` with the gateway token ``token``."""

    account: str
    method: str
    token: str | None


Action = Subscribe | Change | Cancel | Undo | Approve | Reject | Pay | Fail | SetPaymentMethod


@dataclass(frozen=True)
class Event:
    index: int  # position in the file, from 1
    at: datetime  # aware, in the scenario's zone
    action: Action
    line: int | None = None

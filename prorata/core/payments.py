"""Collecting invoices: payment attempts, dunning and what they do to a subscription.

Pure functions over values; the gateway call itself happens outside (services).

Invariants:
- A :class:`Collection` follows one invoice from issue to ``paid``, ``void`` or
  ``exhausted``; ``attempts`` counts failed attempts and only grows.
- Retries are measured from the first failure, never from the previous retry:
  retry ``k`` (1-based) falls at ``first_failed_at + retry_days[k-1]`` days, so a late run
  does not push the whole schedule back.
- A subscription with a failed collection is ``past_due``; when the last retry fails it is
  ``suspended``, ``cancelled`` or left ``past_due`` (``Dunning.final``); once none of its
  collections is failing any more it is ``active`` again.
- Amounts are the invoice's ``amount_due``: already rounded, never recomputed here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from prorata.core.money import Money
from prorata.core.values import quick_init

# a gateway's answers, and ``no_payment_method``: a retry found nothing on file to charge
OUTCOMES = (
    "succeeded",
    "declined",
    "insufficient_funds",
    "requires_action",
    "no_payment_method",
)
METHOD_TYPES = ("card", "paypal", "sepa_debit", "bank_transfer")
FINAL_ACTIONS = ("suspend", "cancel", "keep")


@dataclass(frozen=True)
class Dunning:
    """What happens after a failed collection: retries (days after the first failure)
    and the action when the last one fails."""

    retry_days: tuple[int, ...] = (3, 5, 7)
    final: str = "suspend"


@dataclass(frozen=True)
class PaymentChange:
    """When a change whose invoice asks for money takes effect.

    ``immediately``: at once, collected afterwards (failures go to dunning).
    ``on_payment``: once its invoice is paid (WHMCS); until the end of the current period.
    ``pending_if_incomplete``: at once if the first attempt succeeds, otherwise it waits for
    a payment for ``pending_hours`` and is then dropped (Stripe's pending updates).
    """

    mode: str = "immediately"
    pending_hours: int = 23


@dataclass(frozen=True)
class Payment:
    """Money moved through a payment method: a charge of an invoice or a refund.

    ``status`` is ``succeeded`` or the gateway's failure (``declined``,
    ``insufficient_funds``, ``requires_action``); only succeeded payments move money.
    """

    id: int
    kind: str  # charge | refund
    account: str
    amount: Money
    at: datetime
    status: str
    method: str | None = None  # card | paypal | … (shown on receipts)
    document: str | None = None  # the invoice charged, or the credit note refunded
    reference: str | None = None  # the gateway's id
    refunds: int | None = None  # a refund: the charge it returns money from

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@quick_init
@dataclass(frozen=True)
class Collection:
    """The automatic collection of one invoice by the account's payment method."""

    invoice: str
    account: str
    subscriptions: tuple[str, ...]
    amount: Money
    next_attempt_at: datetime | None
    state: str = "due"  # due | retrying | exhausted | paid | void
    attempts: int = 0
    first_failed_at: datetime | None = None
    last_outcome: str | None = None

    @property
    def failing(self) -> bool:
        return self.state in ("retrying", "exhausted")

    @property
    def key(self) -> str:
        """The idempotency key of the next attempt: the same key if a crash repeats it."""
        return f"{self.invoice}:{self.attempts + 1}"


def charged(payments, invoice: str) -> list[Money]:
    """What the succeeded charges of invoice ``invoice`` among ``payments`` took, in order."""
    return [
        p.amount for p in payments if p.kind == "charge" and p.succeeded and p.document == invoice
    ]


def after_attempt(c: Collection, outcome: str, at: datetime, dunning: Dunning) -> Collection:
    """The collection after an attempt at ``at`` that ended in ``outcome``."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown payment outcome {outcome!r}")
    if outcome == "succeeded":
        return replace(c, state="paid", next_attempt_at=None, last_outcome=outcome)
    first = c.first_failed_at or at
    attempts = c.attempts + 1
    retry = attempts - 1  # retries already scheduled before this one
    if retry < len(dunning.retry_days):
        when = first + timedelta(days=dunning.retry_days[retry])
        return replace(
            c,
            state="retrying",
            attempts=attempts,
            first_failed_at=first,
            next_attempt_at=max(when, at),
            last_outcome=outcome,
        )
    return replace(
        c,
        state="exhausted",
        attempts=attempts,
        first_failed_at=first,
        next_attempt_at=None,
        last_outcome=outcome,
    )


def settled(c: Collection, state: str) -> Collection:
    """The collection closed from outside (``paid`` by hand, or ``void``)."""
    return replace(c, state=state, next_attempt_at=None)


def subscription_status(current: str, collections: list[Collection], final: str) -> str:
    """A subscription's status given its collections (``current`` for one not in dunning).

    Ended subscriptions keep their status. Any exhausted collection applies the final
    action; any retrying one makes it past due; none failing makes a past-due or suspended
    subscription active again.
    """
    if current not in ("active", "past_due", "suspended"):
        return current
    if any(c.state == "exhausted" for c in collections):
        return {"suspend": "suspended", "cancel": "cancelled", "keep": "past_due"}[final]
    if any(c.state == "retrying" for c in collections):
        return "suspended" if current == "suspended" else "past_due"
    return "active"


def refund_plan(charges: list[Payment], refunds: list[Payment], amount: Money):
    """How to return ``amount``: ``[(charge, part), …]`` from the latest refundable charge
    backwards, and what cannot be refunded (no charge left) as the second value."""
    refunded: dict[int, Money] = {}
    for r in refunds:
        if r.succeeded and r.refunds is not None:
            refunded[r.refunds] = refunded.get(r.refunds, Money.zero(amount.currency)) + r.amount
    plan = []
    left = amount
    for charge in sorted(charges, key=lambda p: (p.at, p.id), reverse=True):
        if not left.is_positive:
            break
        if not charge.succeeded or charge.reference is None:
            continue
        room = charge.amount - refunded.get(charge.id, Money.zero(amount.currency))
        if room.is_positive:
            part = min(room, left)
            plan.append((charge, part))
            left = left - part
    return plan, left

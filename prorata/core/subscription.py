"""The state of one subscription, as an immutable value.

Invariants:
- ``items[0]`` is the main plan; further items are products added to it (add-ons).
- For a recurring subscription ``period_start < period_end`` and both are boundaries of
  ``schedule`` (except a first, partly covered period, which starts at the subscription's
  start); a one-time order has no schedule and no period.
- ``segments`` list what was charged for the current period, item by item, and how much of
  each has been credited since; a credit never exceeds what remains of its segment.
- ``accrued_from``: where the unbilled use of the items paid in arrears starts (see
  ``arrears``); None when no item is paid in arrears or an ending billed that use.
- Nothing here is edited in place: every change returns a new value (``dataclasses.replace``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prorata.core.calendar import PeriodUnit, Schedule
from prorata.core.model import Change
from prorata.core.money import Money
from prorata.core.values import quick_init, replaced


@quick_init
@dataclass(frozen=True)
class Item:
    plan: str
    quantity: int = 1


@quick_init
@dataclass(frozen=True)
class Term:
    """The contract term: changes with notice are measured against ``end``."""

    unit: PeriodUnit
    start: datetime
    end: datetime
    auto_renew: bool = True


@quick_init
@dataclass(frozen=True)
class Segment:
    """An amount charged for one item over ``[start, end)`` on invoice ``document``."""

    plan: str
    quantity: int
    start: datetime
    end: datetime
    amount: Money
    credited: Money
    document: str | None = None

    @property
    def remaining(self) -> Money:
        return self.amount - self.credited


def charged_segments(lines, currency: str) -> tuple[Segment, ...]:
    """The segments that charge lines (positive, over a span) add, nothing credited yet;
    the invoice number is filled in when the invoice is issued."""
    return tuple(
        Segment(line.plan, line.quantity, line.start, line.end, line.amount, Money.zero(currency))
        for line in lines
        if line.amount.is_positive and line.start is not None
    )


@quick_init
@dataclass(frozen=True)
class Scheduled:
    """A change or cancellation waiting for ``effective_at`` (end of term or of period)."""

    effective_at: datetime
    change: Change | None  # None: a cancellation
    kind: str


@quick_init
@dataclass(frozen=True)
class Awaiting:
    """A change billed on ``invoice`` that takes effect once that invoice is paid: ``target``
    is the subscription it makes (priced when ordered); dropped at ``expires_at``."""

    invoice: str
    target: Subscription
    expires_at: datetime | None
    kind: str


@quick_init
@dataclass(frozen=True)
class Subscription:
    id: str
    account: str
    items: tuple[Item, ...]
    currency: str
    started_at: datetime
    # active | past_due | suspended (dunning) | cancelled | expired
    status: str = "active"
    schedule: Schedule | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    term: Term | None = None
    cancel_at: datetime | None = None
    scheduled: tuple[Scheduled, ...] = ()
    pending_lines: tuple = ()  # documents.Line values waiting for the next invoice
    segments: tuple[Segment, ...] = ()
    maintenance_start: datetime | None = None
    maintenance_until: datetime | None = None
    order_value: Money | None = None  # perpetual licences: what the order is worth
    ended_at: datetime | None = None
    awaiting: Awaiting | None = None
    versions: int = field(default=0)
    # anniversary | calendar (Lago's billing_time): a calendar subscription's schedule is
    # aligned on calendar boundaries, and so is the schedule of a new billing cycle
    billing_time: str = "anniversary"
    # items paid in arrears (``pay_in_advance: false``): their use since this instant is not
    # billed yet; the renewal, an immediate change of them or a termination bills it
    accrued_from: datetime | None = None

    @property
    def plan(self) -> str:
        return self.items[0].plan

    @property
    def quantity(self) -> int:
        return self.items[0].quantity

    @property
    def is_recurring(self) -> bool:
        return self.schedule is not None

    @property
    def active(self) -> bool:
        """Open to changes: in force and not suspended (a past-due one still is)."""
        return self.status in ("active", "past_due")

    @property
    def renews(self) -> bool:
        """Still billed at its period ends: in force, whatever its payments."""
        return self.status in ("active", "past_due", "suspended")

    def evolve(self, **changes) -> Subscription:
        """A new version of this subscription with ``changes`` applied."""
        return replaced(self, versions=self.versions + 1, **changes)

    def billing_period(self) -> tuple[datetime, datetime]:
        """The full billing period the current period belongs to: the denominator of every
        ratio. A first period that starts off the billing day is only part of it."""
        if self.schedule is None:
            return self.period_start, self.period_end
        return self.schedule.period_containing(self.period_start)

    def renewal_date(self) -> datetime | None:
        """The date the commitment renews: the term's end, else the current period's end."""
        if self.term is not None:
            return self.term.end
        return self.period_end

    def last_invoice(self) -> str | None:
        """The latest invoice that billed the current period, for credit notes to refer to."""
        documents = [s.document for s in self.segments if s.document]
        return documents[-1] if documents else None

"""Plans paid in arrears: what the use of a subscription's current terms costs once used.

A plan with ``pay_in_advance: false`` (Lago's default for subscription fees; Kill Bill's
``IN_ARREAR``) is not billed when a period starts: its use accrues from
``Subscription.accrued_from`` and is billed when that use ends, at the period's end (the
renewal), at an immediate change of those items (the old terms' used part, the change day
as the policy's ``change_day`` says) or at termination.

Invariants:
- ``accrued_from`` is set while the subscription has items paid in arrears and is in force,
  and cleared by the termination, cancellation or expiry that bills the rest (a
  cancellation by dunning, ``Billing._restatus``, leaves it and that use unbilled); the use
  from there to the next billing boundary is billed once, never twice, never in advance;
- an accrued span is priced over the full period of the schedule that contains its start,
  as a first partial period in advance is: price × quantity × exact ratio, rounded once;
- one ``accrued_from`` serves every item in arrears: an immediate change that touches any
  of them bills them all up to the change and restarts them there (Lago ends the old
  subscription and starts the new one); a change that touches none leaves them accruing;
- nothing here credits anything: what was not paid in advance is never given back.
"""

from __future__ import annotations

from datetime import datetime

from prorata.core.catalog import Catalog
from prorata.core.documents import Line
from prorata.core.proration import Pricing, period_line
from prorata.core.subscription import Item, Subscription


def in_arrears(catalog: Catalog, item: Item) -> bool:
    """Whether ``item``'s plan is billed after its use rather than before."""
    return not catalog.plan(item.plan).pay_in_advance


def in_advance(catalog: Catalog, items) -> tuple[Item, ...]:
    """The items of ``items`` billed at the start of their period."""
    return tuple(item for item in items if not in_arrears(catalog, item))


def arrears_of(catalog: Catalog, items) -> tuple[Item, ...]:
    """The items of ``items`` billed at the end of their use."""
    return tuple(item for item in items if in_arrears(catalog, item))


def accrual_start(catalog: Catalog, items, at: datetime) -> datetime | None:
    """Where the use of ``items`` starts accruing when they start at ``at``: ``at`` when
    any of them is paid in arrears, else None."""
    return at if arrears_of(catalog, items) else None


def used_lines(sub: Subscription, until: datetime, pricing: Pricing) -> list[Line]:
    """The lines for the use of ``sub``'s items in arrears from ``accrued_from`` to
    ``until``: ``recurring`` when the span is a whole period, ``used_time`` for part of one.
    Zero-amount lines are dropped; nothing when nothing accrues or the span is empty."""
    start = sub.accrued_from
    if start is None or sub.schedule is None or until <= start:
        return []
    period = sub.schedule.period_containing(start)
    span = (start, min(until, period[1]))
    lines = []
    for item in arrears_of(pricing.catalog, sub.items):
        kind = "recurring" if span == period else "used_time"
        line = period_line(kind, sub.id, item, span, period, pricing)
        if line.amount:
            lines.append(line)
    return lines

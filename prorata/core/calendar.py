"""Billing periods, day counts and time ratios.

Invariants:
- Periods are half-open: ``[start, end)``. A renewal falls due at ``end``.
- Boundaries are computed from the anchor, ``anchor + k × length`` with the month clamped to
  its last day (31 Jan → 29 Feb → 31 Mar), never by adding a month to the previous boundary.
- Instants are timezone-aware datetimes; boundaries are wall-clock times in the schedule's
  zone, and elapsed seconds are measured in UTC, so a DST change is counted as it happened.
- Ratios are exact ``fractions.Fraction``; nothing here rounds money.
- A calendar schedule (``billing_time: calendar``) is one whose anchor is a calendar
  boundary (:func:`calendar_period_start`); its later boundaries, ``anchor + k periods``, are
  calendar boundaries too, since each unit's calendar periods are whole multiples of it.
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction


class PeriodUnit(StrEnum):
    """A plan's period. Each unit carries, as plain attributes set once below (read several
    times a renewal: an attribute costs a dictionary lookup, a property a call):

    - ``months``: its length in months for month-based units, 0 for day-based ones;
    - ``days``: its length in days for day-based units, 0 for month-based ones;
    - ``per_year``: how many periods make a year (to compare prices across cycles; 1 for
      ``one_time``);
    - ``recurring``: False only for ``one_time``.
    """

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    ANNUAL = "annual"
    BIENNIAL = "biennial"
    ONE_TIME = "one_time"

    months: int
    days: int
    per_year: Fraction
    recurring: bool


_MONTHS = {
    PeriodUnit.MONTHLY: 1,
    PeriodUnit.QUARTERLY: 3,
    PeriodUnit.SEMIANNUAL: 6,
    PeriodUnit.ANNUAL: 12,
    PeriodUnit.BIENNIAL: 24,
}
_DAYS = {PeriodUnit.DAILY: 1, PeriodUnit.WEEKLY: 7}
for _unit in PeriodUnit:
    _unit.months = _MONTHS.get(_unit, 0)
    _unit.days = _DAYS.get(_unit, 0)
    _unit.recurring = _unit is not PeriodUnit.ONE_TIME
    _unit.per_year = (
        Fraction(12, _unit.months)
        if _unit.months
        else Fraction(365, _unit.days)
        if _unit.days
        else Fraction(1)
    )
del _unit
_WEEKLY, _DAILY = PeriodUnit.WEEKLY, PeriodUnit.DAILY


def clamp_day(year: int, month: int, day: int) -> date:
    """``day`` of that month, or the month's last day when it is shorter."""
    if day <= 28:  # in every month
        return date(year, month, day)
    return date(year, month, min(day, _calendar.monthrange(year, month)[1]))


def on_day(wall: datetime, d: date) -> datetime:
    """``wall``'s time of day, zone and fold on the date ``d`` (``replace(year=…, month=…,
    day=…)``, made without parsing keywords)."""
    return datetime.combine(d, wall.timetz())


def add_months(d: date, months: int, day: int | None = None) -> date:
    """The date ``months`` after ``d`` on ``day`` (default ``d.day``), clamped to month end."""
    index = d.year * 12 + (d.month - 1) + months
    return clamp_day(index // 12, index % 12 + 1, day if day is not None else d.day)


def local_midnight(d: date, zone: tzinfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=zone)


BILLING_TIMES = ("anniversary", "calendar")
"""Where a subscription's periods start: ``anniversary``, from its own start (or billing day);
``calendar``, on the calendar's boundaries (Lago's ``billing_time``)."""


def billing_day_fits(billing_time: str | None, billing_day: int | None) -> bool:
    """Whether a subscription may ask for ``billing_day`` with ``billing_time``: calendar
    periods start on the 1st, so a calendar subscription has no other billing day."""
    return billing_time != "calendar" or billing_day in (None, 1)


def calendar_period_start(d: date, unit: PeriodUnit) -> date:
    """The first day of the calendar period of ``unit`` that contains ``d``.

    Weekly: the Monday on or before ``d`` (Lago's weeks run Monday to Sunday). Month-based
    units: the 1st of a month whose index ``year × 12 + month − 1`` is a multiple of the
    unit's months: every month, 1 Jan/Apr/Jul/Oct, 1 Jan/Jul, 1 January, and (biennial,
    which Lago does not have) 1 January of an even year. Daily: ``d`` itself.
    """
    if unit.months:
        index = d.year * 12 + d.month - 1
        index -= index % unit.months
        return date(index // 12, index % 12 + 1, 1)
    if unit is _WEEKLY:
        return d - timedelta(days=d.weekday())
    if unit is _DAILY:
        return d
    raise ValueError("a one_time plan has no calendar periods")


def is_calendar_boundary(d: date, unit: PeriodUnit) -> bool:
    """Whether a calendar period of ``unit`` starts on ``d``."""
    return calendar_period_start(d, unit) == d


@dataclass(frozen=True)
class Schedule:
    """The boundaries of a recurring plan: ``boundary(k) = anchor + k periods``.

    ``anchor`` is one boundary (aware datetime); ``billing_day`` is the nominal day of month
    that month-based boundaries fall on (clamped per month), so the sequence never drifts.
    """

    anchor: datetime
    unit: PeriodUnit
    billing_day: int

    def __post_init__(self) -> None:
        if not self.unit.recurring:
            raise ValueError("a one_time plan has no schedule")
        if self.anchor.tzinfo is None:
            raise ValueError("a schedule's anchor must be timezone-aware")

    @classmethod
    def starting(
        cls,
        start: datetime,
        unit: PeriodUnit,
        billing_day: int | None,
        billing_time: str = "anniversary",
    ) -> Schedule:
        """The schedule of a subscription starting at ``start`` billed on ``billing_day``.

        Month-based units put a boundary on ``billing_day`` in the start's month, so a start on
        another day lies inside a first period that it only partly covers. Day-based units
        are anchored at the start itself. With ``billing_time`` ``calendar`` the billing day
        is not used: see :meth:`calendar`.
        """
        if billing_time == "calendar":
            return cls.calendar(start, unit)
        if unit.months and billing_day is not None:
            day = clamp_day(start.year, start.month, billing_day)
            anchor = on_day(start, day)
            return cls(anchor, unit, billing_day)
        return cls(start, unit, billing_day or start.day)

    @classmethod
    def calendar(cls, start: datetime, unit: PeriodUnit) -> Schedule:
        """Calendar billing: boundaries at local midnight on the first day of each calendar
        period of ``unit`` (:func:`calendar_period_start`), anchored at the one on or before
        ``start``; a start inside a period lies in a first period it only partly covers."""
        if not unit.recurring:
            raise ValueError("a one_time plan has no schedule")
        first = calendar_period_start(start.date(), unit)
        return cls(local_midnight(first, start.tzinfo), unit, 1)

    def boundary(self, k: int) -> datetime:
        """The anchor's wall time on the date ``k`` periods after its own."""
        anchor = self.anchor
        if self.unit.months:
            d = add_months(anchor.date(), k * self.unit.months, self.billing_day)
        else:
            d = anchor.date() + timedelta(days=k * self.unit.days)
        return on_day(anchor, d)

    def _bracket(self, t: datetime) -> tuple[int, datetime, datetime]:
        """The k with ``boundary(k) <= t < boundary(k + 1)``, and those two boundaries."""
        a = self.anchor
        if self.unit.months:
            months = (t.year - a.year) * 12 + (t.month - a.month)
            k = months // self.unit.months
        else:  # from the dates alone: the loops below correct it by the times of day
            k = (t.date() - a.date()).days // self.unit.days
        start = self.boundary(k)
        while start > t:
            k -= 1
            start = self.boundary(k)
        end = self.boundary(k + 1)
        while end <= t:
            k, start, end = k + 1, end, self.boundary(k + 2)
        return k, start, end

    def index_of(self, t: datetime) -> int:
        """The k with ``boundary(k) <= t < boundary(k + 1)``."""
        return self._bracket(t)[0]

    def period_containing(self, t: datetime) -> tuple[datetime, datetime]:
        _, start, end = self._bracket(t)
        return start, end

    def next_boundary_after(self, t: datetime) -> datetime:
        """The first boundary strictly after ``t``."""
        return self._bracket(t)[2]


def term_end(start: datetime, unit: PeriodUnit, count: int = 1) -> datetime:
    """``start`` plus ``count`` periods, computed from ``start`` (month end clamped)."""
    if unit.months:
        return on_day(start, add_months(start.date(), count * unit.months))
    return on_day(start, start.date() + timedelta(days=count * unit.days))


# day counts -------------------------------------------------------------------


def actual_days(start: date, end: date) -> int:
    return (end - start).days


def days_30_360(start: date, end: date) -> int:
    """Days counted with 30-day months (30E/360).

    Each date is placed at ``year × 360 + (month − 1) × 30 + min(day, 30)`` and the count is
    the difference, so counts of adjacent stretches add up and a whole month is always 30.
    It agrees with Kill Bill's published fixed-days figures (23 May → 15 Jun 2023: 22;
    23 Feb → 15 Mar 2024: 22; 15 → 23 May: 8) but the 31st weighs nothing here, unlike in
    Kill Bill's own rule (:func:`days_fixed_30`, ``basis: fixed_30``).
    """
    return _position_360(end) - _position_360(start)


def _position_360(d: date) -> int:
    return d.year * 360 + (d.month - 1) * 30 + min(d.day, 30)


FIXED_DAYS = 30
"""Month length in Kill Bill's fixed-days mode (org.killbill.invoice.proration.fixed.days)."""


def days_fixed_30(start: date, end: date) -> int:
    """Days of a stretch in Kill Bill's fixed-30-days mode (``proration.basis: fixed_30``).

    Kill Bill (InvoiceDateUtils.daysBetweenWithFixedDaysInMonth) counts the actual days of a
    stretch inside one month as they are; a stretch that ends in another month loses the
    start month's excess over 30 days (or gains its shortfall in February). The period is
    always 30 days (:func:`period_days`). It differs from 30E/360 on the 31st: 31 Jan -> 15 Feb
    counts 14 here and 15 in 30E/360; 15 May -> 31 May counts 16 here and 15 in 30E/360.
    """
    days = (end - start).days
    if (start.year, start.month) == (end.year, end.month):
        return days
    month_length = _calendar.monthrange(start.year, start.month)[1]
    return days - (month_length - FIXED_DAYS)


def day_count(basis: str):
    """The function counting a stretch's days on ``basis``."""
    if basis == "30/360":
        return days_30_360
    if basis == "fixed_30":
        return days_fixed_30
    return actual_days


def period_days(start: date, end: date, basis: str) -> int:
    """Days of a whole period on ``basis``: a fixed 30 in Kill Bill's fixed-days mode."""
    if basis == "fixed_30":
        return FIXED_DAYS if end > start else 0
    return day_count(basis)(start, end)


def elapsed_seconds(start: datetime, end: datetime) -> int:
    """Seconds between two aware instants, measured in UTC (DST-correct)."""
    return int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds())


def span_ratio(
    span: tuple[datetime, datetime],
    period: tuple[datetime, datetime],
    unit: str = "day",
    basis: str = "actual",
) -> Fraction:
    """The exact share of ``period`` that ``span`` covers.

    ``unit`` is ``day`` (local calendar days, end exclusive) or ``second``; ``basis`` is
    ``actual`` (calendar days), ``30/360`` (30-day months) or ``fixed_30`` (Kill Bill's
    fixed-30-days mode). An empty period gives 0.
    """
    if unit == "second":
        num = elapsed_seconds(*span)
        den = elapsed_seconds(*period)
    else:
        num = day_count(basis)(span[0].date(), span[1].date())
        den = period_days(period[0].date(), period[1].date(), basis)
    if den <= 0 or num <= 0:
        return Fraction(0)
    return Fraction(num, den)


def round_ratio(ratio: Fraction, digits: int | None) -> Fraction:
    """The ratio rounded half-up to ``digits`` decimals first (Kill Bill), or unchanged."""
    if digits is None:
        return ratio
    value = (Decimal(ratio.numerator) / Decimal(ratio.denominator)).quantize(
        Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP
    )
    return Fraction(value)


def ratio_text(ratio: Fraction, digits: int = 4) -> str:
    """A ratio as a fixed decimal string (``0.8710``), half-up."""
    value = Decimal(ratio.numerator) / Decimal(ratio.denominator)
    return f"{value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP):f}"

"""Calendar: periods from the anchor, month-end clamping, day counts, ratios."""

from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata.core.calendar import (
    PeriodUnit,
    Schedule,
    calendar_period_start,
    days_30_360,
    round_ratio,
    span_ratio,
    term_end,
)


def at(y, m, d, zone=UTC, hour=0):
    return datetime(y, m, d, hour, tzinfo=zone)


def test_month_end_clamps_from_the_anchor_and_never_drifts():
    schedule = Schedule.starting(at(2024, 1, 31), PeriodUnit.MONTHLY, 31)
    days = [schedule.boundary(k).date() for k in range(4)]
    assert days == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def test_first_period_of_a_start_off_the_billing_day_is_the_one_containing_it():
    schedule = Schedule.starting(at(2024, 1, 20), PeriodUnit.MONTHLY, 1)
    start, end = schedule.period_containing(at(2024, 1, 20))
    assert (start.date(), end.date()) == (date(2024, 1, 1), date(2024, 2, 1))
    annual = Schedule.starting(at(2024, 1, 20), PeriodUnit.ANNUAL, 15)
    start, end = annual.period_containing(at(2024, 1, 20))
    assert (start.date(), end.date()) == (date(2024, 1, 15), date(2025, 1, 15))


def test_day_based_units_and_next_boundary():
    weekly = Schedule.starting(at(2024, 3, 4), PeriodUnit.WEEKLY, None)
    assert weekly.next_boundary_after(at(2024, 3, 4)).date() == date(2024, 3, 11)
    assert weekly.index_of(at(2024, 3, 20)) == 2


@pytest.mark.parametrize(
    ("day", "unit", "first"),
    [
        (date(2024, 4, 10), PeriodUnit.WEEKLY, date(2024, 4, 8)),  # a Wednesday: its Monday
        (date(2024, 4, 8), PeriodUnit.WEEKLY, date(2024, 4, 8)),
        (date(2024, 1, 3), PeriodUnit.WEEKLY, date(2024, 1, 1)),
        (date(2023, 1, 1), PeriodUnit.WEEKLY, date(2022, 12, 26)),  # a Sunday: last year's
        (date(2024, 2, 29), PeriodUnit.MONTHLY, date(2024, 2, 1)),
        (date(2024, 5, 20), PeriodUnit.QUARTERLY, date(2024, 4, 1)),
        (date(2024, 12, 31), PeriodUnit.QUARTERLY, date(2024, 10, 1)),
        (date(2024, 6, 30), PeriodUnit.SEMIANNUAL, date(2024, 1, 1)),
        (date(2024, 7, 1), PeriodUnit.SEMIANNUAL, date(2024, 7, 1)),
        (date(2024, 4, 10), PeriodUnit.ANNUAL, date(2024, 1, 1)),
        (date(2025, 3, 1), PeriodUnit.BIENNIAL, date(2024, 1, 1)),
        (date(2024, 4, 10), PeriodUnit.DAILY, date(2024, 4, 10)),
    ],
)
def test_calendar_period_start(day, unit, first):
    assert calendar_period_start(day, unit) == first


def test_calendar_schedule_anchors_at_local_midnight_of_the_calendar_start():
    paris = ZoneInfo("Europe/Paris")
    schedule = Schedule.calendar(at(2024, 4, 10, paris, hour=15), PeriodUnit.QUARTERLY)
    assert schedule.anchor == at(2024, 4, 1, paris)
    assert [schedule.boundary(k).date() for k in range(-1, 4)] == [
        date(2024, 1, 1),
        date(2024, 4, 1),
        date(2024, 7, 1),
        date(2024, 10, 1),
        date(2025, 1, 1),
    ]
    weekly = Schedule.starting(at(2024, 4, 10, paris), PeriodUnit.WEEKLY, 10, "calendar")
    # 31 March 2024 is the day clocks go forward: the boundaries stay at local midnight
    assert weekly.boundary(-2) == at(2024, 3, 25, paris)
    assert weekly.period_containing(at(2024, 4, 14, paris, hour=23)) == (
        at(2024, 4, 8, paris),
        at(2024, 4, 15, paris),
    )


def test_aircall_ratio_is_27_of_31_days():
    ratio = span_ratio((at(2024, 7, 10), at(2024, 8, 6)), (at(2024, 7, 6), at(2024, 8, 6)))
    assert ratio == Fraction(27, 31)


def test_seconds_are_measured_in_utc_across_dst():
    paris = ZoneInfo("Europe/Paris")
    period = (at(2024, 3, 1, paris), at(2024, 4, 1, paris))
    span = (at(2024, 3, 31, paris), at(2024, 4, 1, paris))  # the day clocks go forward
    assert span_ratio(span, period, unit="second") == Fraction(23 * 3600, (31 * 24 - 1) * 3600)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [  # Kill Bill's fixed-30-days examples (TestInvoiceDateUtilsWithFixedProration)
        (date(2023, 5, 15), date(2023, 5, 23), 8),
        (date(2024, 2, 15), date(2024, 2, 23), 8),
        (date(2023, 5, 23), date(2023, 6, 15), 22),
        (date(2023, 6, 23), date(2023, 7, 15), 22),
        (date(2023, 2, 23), date(2023, 3, 15), 22),
        (date(2024, 2, 23), date(2024, 3, 15), 22),
        (date(2024, 2, 1), date(2024, 3, 1), 30),
        (date(2024, 1, 15), date(2025, 1, 15), 360),
    ],
)
def test_30_360_counts_thirty_day_months(start, end, days):
    assert days_30_360(start, end) == days


def test_30_360_ratio_over_a_month():
    period = (at(2023, 5, 15), at(2023, 6, 15))
    ratio = span_ratio((at(2023, 5, 23), at(2023, 6, 15)), period, basis="30/360")
    assert ratio == Fraction(22, 30)


def test_ratio_rounding_to_nine_digits_half_up():
    assert round_ratio(Fraction(355, 365), 9) == Fraction("0.972602740")
    assert round_ratio(Fraction(2, 3), None) == Fraction(2, 3)


def test_term_end_is_computed_from_the_start():
    assert term_end(at(2024, 2, 29), PeriodUnit.ANNUAL).date() == date(2025, 2, 28)
    assert term_end(at(2024, 1, 31), PeriodUnit.BIENNIAL).date() == date(2026, 1, 31)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2050, 1, 1)),
    st.sampled_from([u for u in PeriodUnit if u.recurring]),
    st.integers(min_value=1, max_value=31),
    st.sampled_from([UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")]),
)
def test_the_period_containing_an_instant_is_the_bracket_of_its_index(
    anchor, moment, unit, day, zone
):
    """``boundary(k) <= t < boundary(k + 1)`` for ``k = index_of(t)``; the period containing
    ``t`` is that pair and the next boundary after ``t`` its end."""
    schedule = Schedule.starting(anchor.replace(tzinfo=zone), unit, day)
    t = moment.replace(tzinfo=UTC)
    k = schedule.index_of(t)
    start, end = schedule.period_containing(t)
    assert (start, end) == (schedule.boundary(k), schedule.boundary(k + 1))
    assert start <= t < end
    assert schedule.next_boundary_after(t) == end

"""binary64 emulation: the hardware's doubles are the oracle (tests only; the core builds none)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata.core import binary64
from prorata.core.money import Money, round_minor

_integers = st.integers(min_value=-(10**30), max_value=10**30)
_positive = st.integers(min_value=1, max_value=10**30)


@given(_integers, _positive)
def test_nearest_is_the_double_the_hardware_rounds_to(n, d):
    value = Fraction(n, d)
    assert binary64.nearest(value) == Fraction(n / d)  # int / int: correctly rounded


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=366))
def test_day_price_times_days_is_rubys_float_arithmetic(cents, days):
    for used in (0, 1, days // 3, days // 2, days - 1, days):
        emulated = binary64.multiply(binary64.divide(Fraction(cents), Fraction(days)), used)
        assert emulated == Fraction(cents / days * used)


def test_ties_go_to_the_even_significand():
    ulp = Fraction(1, 2**52)  # of numbers in [1, 2)
    assert binary64.nearest(1 + ulp / 2) == 1  # halfway, 1 is even
    assert binary64.nearest(1 + ulp + ulp / 2) == 1 + 2 * ulp  # halfway, 1 + ulp is odd
    assert binary64.nearest(1 + ulp / 2 + Fraction(1, 2**80)) == 1 + ulp  # past halfway
    assert binary64.nearest(Fraction(2**53 + 1)) == 2**53  # integers lose their last bit
    assert binary64.nearest(Fraction(2**54 - 1)) == 2**54  # carries into a new bit


def test_lagos_half_cent_is_below_half():
    # 999 cents over a 30-day period, 15 days credited (Lago's "rounding at max precision")
    value = binary64.multiply(binary64.divide(Fraction(999), Fraction(30)), Fraction(15))
    assert value < Fraction(999, 2)
    assert value == Fraction(Decimal("499.49999999999994315658113919198513031005859375"))
    assert round_minor(value, "EUR") == Money.of("4.99", "EUR")
    assert round_minor(Fraction(999, 2), "EUR") == Money.of("5.00", "EUR")  # exact: half up


def test_outside_the_normal_range_is_refused():
    with pytest.raises(ValueError, match="normal range"):
        binary64.nearest(Fraction(1, 2**1030))
    with pytest.raises(ValueError, match="normal range"):
        binary64.nearest(Fraction(2**1030))
    assert binary64.nearest(Fraction(0)) == 0


@pytest.mark.parametrize(
    ("value", "half_up", "half_even"),
    [
        (Fraction(5, 2), 3, 2),
        (Fraction(-5, 2), -3, -2),
        (Fraction(7, 2), 4, 4),
        (Fraction(249, 100), 2, 2),
        (Fraction(-251, 100), -3, -3),
        (Fraction(0), 0, 0),
    ],
)
def test_round_minor_rounds_a_fraction_of_cents_once(value, half_up, half_even):
    assert round_minor(value, "EUR", "half_up") == Money.from_minor(half_up, "EUR")
    assert round_minor(value, "EUR", "half_even") == Money.from_minor(half_even, "EUR")
    assert round_minor(value, "JPY") == Money.from_minor(half_up, "JPY")


def test_round_minor_refuses_an_unknown_rounding():
    with pytest.raises(ValueError, match="unknown rounding 'down'"):
        round_minor(Fraction(1, 2), "EUR", "down")

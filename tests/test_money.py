"""Money: ISO digits, one rounding, exact arithmetic, allocation without loss."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata.core.money import (
    CurrencyError,
    Money,
    allocate,
    currency_digits,
    parse_decimal,
    round_amount,
)


@pytest.mark.parametrize(("code", "digits"), [("JPY", 0), ("EUR", 2), ("USD", 2), ("KWD", 3)])
def test_currency_digits_follow_iso_4217(code, digits):
    assert currency_digits(code) == digits


def test_unknown_currency_is_refused_with_its_code():
    with pytest.raises(CurrencyError, match="'XYZ'"):
        currency_digits("XYZ")


def test_money_refuses_floats_and_excess_digits():
    with pytest.raises(TypeError):
        Money(1.5, "EUR")
    with pytest.raises(ValueError, match="more digits than EUR"):
        Money(Decimal("1.005"), "EUR")
    with pytest.raises(ValueError, match="exact decimal"):
        parse_decimal(1.5)


def test_money_keeps_the_currency_digits_in_text():
    assert str(Money.of("300", "EUR")) == "300.00"
    assert str(Money.of("300", "JPY")) == "300"
    assert str(Money.of("1.5", "KWD")) == "1.500"
    assert Money.of("104.52", "EUR").minor == 10452
    assert Money.from_minor(-1, "KWD").amount == Decimal("-0.001")


def test_zero_has_no_sign():
    assert str(round_amount(Decimal("-0.001"), "EUR")) == "0.00"
    assert str(-Money.zero("EUR")) == "0.00"


def test_rounding_modes_differ_only_on_ties():
    assert str(round_amount(Decimal("0.125"), "EUR", "half_up")) == "0.13"
    assert str(round_amount(Decimal("0.125"), "EUR", "half_even")) == "0.12"
    assert str(round_amount(Decimal("-0.125"), "EUR", "half_up")) == "-0.13"
    assert str(round_amount(Decimal("2.5"), "JPY", "half_even")) == "2"
    with pytest.raises(ValueError, match="unknown rounding"):
        round_amount(Decimal(1), "EUR", "down")


def test_mixing_currencies_is_an_error():
    with pytest.raises(CurrencyError):
        Money.of("1", "EUR") + Money.of("1", "USD")


def test_allocate_never_loses_a_minor_unit():
    parts = allocate(Money.of("100.00", "EUR"), [1, 1, 1])
    assert [str(p) for p in parts] == ["33.34", "33.33", "33.33"]
    parts = allocate(Money.of("-0.05", "EUR"), [1, 3])
    assert sum(p.minor for p in parts) == -5
    assert [str(p) for p in allocate(Money.of("7", "JPY"), [2, 1])] == ["5", "2"]


def test_format_follows_the_locale():
    assert Money.of("150", "CAD").format("fr_CA") == "150,00\u00a0$"
    assert Money.of("150", "USD").format("en_US") == "$150.00"


def test_sums_and_differences_are_exact_and_built_as_checked_money_is():
    a, b = Money.of("104.52", "EUR"), Money.of("-0.52", "EUR")
    for result, expected in (
        (a + b, "104.00"),
        (a - b, "105.04"),
        (-a, "-104.52"),
        (abs(b), "0.52"),
        (b - b, "0.00"),
        (-(b - b), "0.00"),
    ):
        assert result == Money.of(expected, "EUR")
        assert str(result) == expected
        assert result.amount.as_tuple() == Money.of(expected, "EUR").amount.as_tuple()
    assert Money.zero("JPY") is Money.zero("JPY")
    assert str(Money.of("1", "KWD") + Money.of("0.001", "KWD")) == "1.001"


def test_a_sum_beyond_28_digits_is_refused_not_rounded():
    from decimal import DecimalException

    big = Money.of("9" * 26 + ".00", "EUR")
    with pytest.raises(DecimalException):
        big + big
    with pytest.raises(DecimalException):
        big - (-big)


@given(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from(["EUR", "JPY", "BHD", "CLF", "USD"]),
)
def test_minor_units_and_text_are_those_of_the_amount(units, currency):
    """``minor`` and ``str`` read the amount's digits as they are, in plain notation."""
    money = Money.from_minor(units, currency)
    assert money.minor == units == int(money.amount.scaleb(currency_digits(currency)))
    assert str(money) == f"{money.amount:f}"
    assert Money.of(str(money), currency) == money

"""Currency-aware amounts.

Invariants:
- An amount is never a float. ``Money`` holds a ``Decimal`` that is always an exact
  multiple of the currency's minor unit (ISO 4217 digits: JPY 0, EUR 2, KWD 3).
- Arithmetic between ``Money`` values is exact. Anything that can produce a fraction of a
  minor unit (a price times a time ratio) is done on plain ``Decimal`` and rounded exactly
  once, by :func:`round_amount`, with the rounding mode the policy names.
- :func:`allocate` splits an amount into parts that always add back to the whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)
from fractions import Fraction
from functools import cache

from babel.core import Locale
from babel.numbers import format_currency, get_currency_precision, list_currencies

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}

# Sums and differences of amounts: exact, or an error (never rounded to fit 28 digits).
_EXACT = Context(prec=28, traps=[InvalidOperation, Overflow, Inexact, Rounded])


class CurrencyError(ValueError):
    """An unknown currency code, or amounts of two currencies mixed."""


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def currency_digits(code: str) -> int:
    """Minor digits of an ISO 4217 currency (from CLDR through Babel)."""
    if code not in _known_currencies():
        raise CurrencyError(f"unknown currency {code!r}: expected an ISO 4217 code such as EUR")
    return get_currency_precision(code)


@cache
def minor_unit(code: str) -> Decimal:
    """The smallest amount of the currency, as an exponent for ``quantize`` (0.01 for EUR)."""
    return Decimal(1).scaleb(-currency_digits(code))


def parse_decimal(text: str | int | Decimal) -> Decimal:
    """Parse a decimal written as a string or an int; floats are refused on purpose."""
    if isinstance(text, bool | float):
        raise ValueError(f"{text!r} is not an exact decimal: write amounts as strings")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal number") from exc
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return value


def round_amount(value: Decimal, currency: str, rounding: str = "half_up") -> Money:
    """The one rounding of a line: ``value`` to the currency's minor unit."""
    try:
        mode = ROUNDING_MODES[rounding]
    except KeyError as exc:
        raise ValueError(f"unknown rounding {rounding!r}: expected half_up or half_even") from exc
    amount = value.quantize(minor_unit(currency), rounding=mode)
    if not amount.is_finite():
        return Money(amount, currency)  # refused there
    return Money._exact(amount, currency)  # quantized: the currency's digits already


def round_minor(value: Fraction, currency: str, rounding: str = "half_up") -> Money:
    """The one rounding of a line computed as an exact fraction of minor units (cents):
    ``value`` to whole minor units, ``half_up`` rounding halves away from zero."""
    if rounding == "half_even":
        units = round(value)  # Fraction rounds exactly, halves to even
    elif rounding == "half_up":
        units = math.floor(abs(value) + Fraction(1, 2))
        units = units if value >= 0 else -units
    else:
        raise ValueError(f"unknown rounding {rounding!r}: expected half_up or half_even")
    return Money.from_minor(units, currency)


@dataclass(frozen=True, order=False)
class Money:
    """An exact amount in one currency; ``amount`` always has the currency's digits."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money needs a Decimal amount, not {type(self.amount).__name__}")
        amount = self.amount.quantize(minor_unit(self.currency))
        if amount != self.amount:
            raise ValueError(
                f"{self.amount} has more digits than {self.currency} allows "
                f"({currency_digits(self.currency)}); round it first"
            )
        object.__setattr__(self, "amount", amount.copy_abs() if amount.is_zero() else amount)

    # construction -------------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        zero = _ZEROS.get(currency)
        if zero is None:
            zero = cls(Decimal(0), currency)
            if len(_ZEROS) < 512:  # one per currency met; codes are few
                _ZEROS[currency] = zero
        return zero

    @classmethod
    def _exact(cls, amount: Decimal, currency: str) -> Money:
        """``amount`` as it is, for an exact result of amounts with the currency's digits
        (computed in ``_EXACT``): it has those digits too, so no quantize is needed; a
        zero still loses its sign."""
        if amount.is_zero():
            amount = amount.copy_abs()
        money = object.__new__(cls)
        fields = money.__dict__
        fields["amount"] = amount
        fields["currency"] = currency
        return money

    @classmethod
    def of(cls, text: str | int | Decimal, currency: str) -> Money:
        """An exact amount from text; refuses values finer than the minor unit."""
        return cls(parse_decimal(text), currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        return cls(Decimal(units).scaleb(-currency_digits(currency)), currency)

    # views ----------------------------------------------------------------
    @property
    def minor(self) -> int:
        """The amount in minor units (cents): exact, the amount having the currency's
        digits."""
        return int(self.amount * _SCALES[currency_digits(self.currency)])

    def __str__(self) -> str:
        text = str(self.amount)  # plain notation for every amount with a currency's digits
        return f"{self.amount:f}" if "E" in text else text

    def format(self, locale: str) -> str:
        """The amount as a person of ``locale`` reads it (``150,00 $ CA``, ``$150.00``)."""
        return format_currency(self.amount, self.currency, locale=Locale.parse(locale))

    # arithmetic -----------------------------------------------------------
    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        if type(other) is not Money or other.currency != self.currency:
            self._check(other)
        return Money._exact(_EXACT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        if type(other) is not Money or other.currency != self.currency:
            self._check(other)
        return Money._exact(_EXACT.subtract(self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money._exact(_EXACT.minus(self.amount), self.currency)

    def __abs__(self) -> Money:
        return Money._exact(_EXACT.abs(self.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._check(other)
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return self.amount != _DECIMAL_ZERO

    @property
    def is_negative(self) -> bool:
        return self.amount < _DECIMAL_ZERO

    @property
    def is_positive(self) -> bool:
        return self.amount > _DECIMAL_ZERO


_ZEROS: dict[str, Money] = {}
_DECIMAL_ZERO = Decimal(0)  # compared with as it is (an int is converted at every compare)
_SCALES = tuple(Decimal(10) ** digits for digits in range(10))  # 10 ** the currency's digits


def total(amounts: Iterable[Money], currency: str) -> Money:
    """Exact sum; the empty sum is zero in ``currency``."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result


def allocate(whole: Money, weights: Sequence[int | Decimal]) -> list[Money]:
    """Split ``whole`` in proportion to ``weights`` without losing a minor unit.

    Largest-remainder method on minor units: every part is floor(share), then the units
    left over go one each to the parts with the largest remainders (earliest first on
    ties). ``sum(parts) == whole`` always holds, also for negative amounts.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    weights = [Decimal(w) for w in weights]
    if any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("allocate needs non-negative weights with a positive sum")
    sign = -1 if whole.is_negative else 1
    units = abs(whole.minor)
    weight_sum = sum(weights)
    shares = [units * w / weight_sum for w in weights]
    floors = [int(s) for s in shares]
    left = units - sum(floors)
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Money.from_minor(sign * f, whole.currency) for f in floors]

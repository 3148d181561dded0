"""Another system's double-precision arithmetic, reproduced exactly on integers.

Some billing systems compute a prorated amount in IEEE 754 binary64 (Lago: the price in
cents divided by the period's days, times the days billed, each a Ruby Float operation) and
round the result to the cent. Their figures then differ from exact arithmetic when the
exact amount is a half cent: 999 / 30 × 15 is 499.5 exactly, but 499.49999999999994 in
binary64, which rounds to 499. To give their numbers, prorata performs the same operations
here, each followed by the rounding binary64 applies, on exact fractions.

Invariants:
- :func:`nearest` is IEEE 754's round-to-nearest, ties-to-even, of an exact fraction to a
  53-bit significand (normal range; money never approaches the subnormal or overflow ends,
  which are refused). Every value returned is exactly a binary64 number.
- No float is ever built: the operations are exact fractions rounded by :func:`nearest`,
  as the hardware does for one division or one product of two doubles.
"""

from __future__ import annotations

from fractions import Fraction

_SIGNIFICAND_BITS = 53
_MIN_EXPONENT = -1022  # of a normal number's leading bit
_MAX_EXPONENT = 1023


def nearest(value: Fraction) -> Fraction:
    """The binary64 number nearest to ``value`` (ties to the even significand)."""
    if value == 0:
        return Fraction(0)
    sign = -1 if value < 0 else 1
    n, d = abs(value.numerator), value.denominator
    # shift so that the integer part of n / d / 2**shift has 53 bits
    shift = n.bit_length() - d.bit_length() - _SIGNIFICAND_BITS
    significand, remainder, scale = _divide(n, d, shift)
    if significand >> _SIGNIFICAND_BITS:  # 54 bits: one more to the right
        shift += 1
        significand, remainder, scale = _divide(n, d, shift)
    twice = 2 * remainder
    if twice > scale or (twice == scale and significand & 1):
        significand += 1  # may carry to 2**53: still exact, one bit wider
    leading = shift + _SIGNIFICAND_BITS - 1
    if significand >> _SIGNIFICAND_BITS:
        leading += 1
    if not _MIN_EXPONENT <= leading <= _MAX_EXPONENT:
        raise ValueError(f"{value} is outside binary64's normal range")
    exact = Fraction(significand << shift) if shift >= 0 else Fraction(significand, 1 << -shift)
    return exact if sign > 0 else -exact


def _divide(n: int, d: int, shift: int) -> tuple[int, int, int]:
    """``n / (d * 2**shift)`` as (quotient, remainder, divisor), all integers."""
    if shift >= 0:
        divisor = d << shift
        return n // divisor, n % divisor, divisor
    numerator = n << -shift
    return numerator // d, numerator % d, d


def divide(a: Fraction, b: Fraction) -> Fraction:
    """``a / b`` as one binary64 division of the doubles nearest ``a`` and ``b``."""
    return nearest(nearest(a) / nearest(b))


def multiply(a: Fraction, b: Fraction) -> Fraction:
    """``a * b`` as one binary64 product of the doubles nearest ``a`` and ``b``."""
    return nearest(nearest(a) * nearest(b))

"""Places and checks: the primitives every scenario reader is built from.

Invariants:
- an :class:`At` names a value by its dotted key path (list items by 0-based index) and its
  1-based line, or ``None`` when unknown;
- every check has the shape ``check(value, at, *args)``: it returns the value converted
  (never mutating its input) or raises :class:`Invalid` placed at ``at``, whose message
  says why the value is refused; nothing here raises anything else for bad input;
- a :class:`Map` refuses non-mappings, unknown keys and missing required keys on entry;
- amounts are exact ``Decimal`` values quantized to their currency's minor unit; instants
  are aware datetimes in the scenario's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale, UnknownLocaleError

from prorata.core.calendar import PeriodUnit, local_midnight
from prorata.core.catalog import LocalText
from prorata.core.money import CurrencyError, currency_digits, minor_unit, parse_decimal
from prorata.scenario.yamlpos import PosDict, PosList

_LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class At:
    """Where a value is: its dotted key path and its 1-based line."""

    path: str
    line: int | None

    def key(self, name: object, line: int | None) -> At:
        return At(f"{self.path}.{name}" if self.path else str(name), line)

    def item(self, index: int, line: int | None) -> At:
        return At(f"{self.path}[{index}]", line)


class Invalid(Exception):
    """A refused value; ``loader.parse_scenario`` turns it into a ``ScenarioError``."""

    def __init__(self, at: At, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


class Map:
    """A mapping under validation: its keys are checked on entry, values read with their place."""

    def __init__(
        self, value: Any, at: At, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> None:
        if not isinstance(value, PosDict):
            raise Invalid(at, f"expected a mapping, got {describe(value)}")
        for key in value:
            if key not in allowed:
                raise Invalid(
                    at.key(key, value.key_lines[key]),
                    f"unknown key {key!r} (allowed: {', '.join(allowed)})",
                )
        for key in required:
            if key not in value:
                raise Invalid(at.key(key, value.line), f"missing required key {key!r}")
        self.data = value
        self.at = at

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def place(self, key: str) -> At:
        return self.at.key(key, self.data.value_lines.get(key, self.data.line))

    def get(self, key: str, check: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``check(value, place, *args)`` for a key that is present, else ``default``."""
        if key not in self.data:
            return default
        return check(self.data[key], self.place(key), *args)


def list_items(value: Any, at: At) -> list[tuple[Any, At]]:
    if not isinstance(value, PosList):
        raise Invalid(at, f"expected a list, got {describe(value)}")
    return [
        (item, at.item(i, line))
        for i, (item, line) in enumerate(zip(value, value.item_lines, strict=True))
    ]


def optional(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` that lets an explicit null through as ``None``."""

    def check_or_none(value: Any, at: At, *args: Any) -> Any:
        return None if value is None else check(value, at, *args)

    return check_or_none


def as_text(value: Any, at: At) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(at, f"expected a non-empty string, got {describe(value)}")
    return value


def whole_number(value: Any, at: At, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(at, f"expected a whole number, got {describe(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise Invalid(at, f"{value} is out of range: expected a whole number {bounds}")
    return value


def as_flag(value: Any, at: At) -> bool:
    if not isinstance(value, bool):
        raise Invalid(at, f"expected true or false, got {describe(value)}")
    return value


def one_of(value: Any, at: At, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise Invalid(at, f"{describe(value)} is not one of {', '.join(choices)}")
    return value


def period_unit(value: Any, at: At, recurring: bool = False) -> PeriodUnit:
    units = [u.value for u in PeriodUnit if u.recurring or not recurring]
    return PeriodUnit(one_of(value, at, units))


def as_decimal(value: Any, at: At) -> Decimal:
    try:
        return parse_decimal(value)
    except ValueError as exc:
        raise Invalid(at, str(exc)) from None


def as_amount(value: Any, at: At, currency: str) -> Decimal:
    """A price: >= 0, exact, with no more digits than ``currency`` has (returned quantized)."""
    amount = as_decimal(value, at)
    if amount < 0:
        raise Invalid(at, f"{value!r} is negative: prices are >= 0")
    unit = minor_unit(currency)
    if amount != amount.quantize(unit):
        digits = currency_digits(currency)
        raise Invalid(at, f"{value!r} has more digits than {currency} allows ({digits})")
    return amount.quantize(unit)


def as_percent(value: Any, at: At) -> Decimal:
    rate = as_decimal(value, at)
    if not 0 <= rate <= 100:
        raise Invalid(at, f"{value!r} is out of range: a rate in percent is in 0..100")
    return rate


def as_currency(value: Any, at: At) -> str:
    code = as_text(value, at)
    try:
        currency_digits(code)
    except CurrencyError as exc:
        raise Invalid(at, str(exc)) from None
    return code


def as_zone(value: Any, at: At) -> ZoneInfo:
    name = as_text(value, at)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            at, f"unknown timezone {name!r}: expected a name such as Europe/Paris"
        ) from None


def as_locale(value: Any, at: At) -> str:
    name = as_text(value, at)
    try:
        language = Locale.parse(name).language
    except (ValueError, UnknownLocaleError):
        raise Invalid(at, f"unknown locale {name!r}: expected fr, en or e.g. fr_CA") from None
    if language not in _LANGUAGES:
        raise Invalid(at, f"locale {name!r} is not supported: its language must be fr or en")
    return name


def as_instant(value: Any, at: At, zone: ZoneInfo) -> datetime:
    """A date (00:00 local), a naive datetime (local) or an aware one (converted), in ``zone``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(at, f"{value!r} is not a date or an ISO 8601 datetime") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone)
        return value.astimezone(zone)
    if isinstance(value, date):
        return local_midnight(value, zone)
    raise Invalid(at, f"expected a date or an ISO 8601 datetime, got {describe(value)}")


def as_local_text(value: Any, at: At) -> LocalText:
    if isinstance(value, str):
        return LocalText.plain(as_text(value, at))
    if not isinstance(value, PosDict) or not value:
        raise Invalid(at, f"expected a string or a mapping {{lang: text}}, got {describe(value)}")
    texts = {}
    for lang, text in value.items():
        lang_at = at.key(lang, value.value_lines[lang])
        texts[as_text(lang, lang_at)] = as_text(text, lang_at)
    return LocalText(texts)


def plain_data(value: Any) -> Any:
    """``value`` as plain Python data: dicts, lists and scalars, dates as ISO text."""
    if isinstance(value, dict):
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_data(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value

"""The portal's languages: Babel catalogues (``prorata/locale/<lang>/LC_MESSAGES/``), and
amounts and dates formatted the way a reader of the page's locale writes them.

The ``.po`` files are the source; they are compiled in memory when this module is imported
(so a fresh clone works without a build step), and ``python -m prorata.web.portal.i18n``
writes the ``.mo`` files beside them for tools that want them.

A page is in French or English (:data:`LANGUAGES`); its *format locale* adds the seller's
country when Babel knows the pair (``fr_CA``: ``150,00 $``; ``en_US``: ``$150.00``).
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
LANGUAGES = ("fr", "en")
DOMAIN = "messages"


def _catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (English text is the message ids)."""
    path = _catalog_path(language)
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def format_locale(language: str, country: str | None) -> str:
    """``language`` with ``country`` when Babel knows that locale, else ``language``."""
    if country:
        candidate = f"{language}_{country.upper()}"
        try:
            Locale.parse(candidate)
            return candidate
        except (UnknownLocaleError, ValueError):
            pass
    return language


def money(amount: str | Decimal | None, currency: str, locale: str) -> str:
    if amount is None or amount == "":
        return ""
    return format_currency(Decimal(str(amount)), currency, locale=locale)


def _moment(value: str | datetime | date) -> datetime | date:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def day(value: str | datetime | date | None, locale: str, form: str = "medium") -> str:
    """A date as the locale writes it (``1 nov. 2022``, ``Nov 1, 2022``); an instant is
    read in its own offset (the tenant's zone)."""
    if value is None or value == "":
        return ""
    moment = _moment(value)
    if isinstance(moment, datetime):
        moment = moment.date()
    return format_date(moment, form, locale=locale)


def last_day(value: str | datetime | None, locale: str, form: str = "medium") -> str:
    """The last day a period covers: its end instant is the next period's start, so the
    day before it when the end falls at midnight."""
    if value is None or value == "":
        return ""
    moment = _moment(value)
    if isinstance(moment, datetime) and moment.time() == datetime.min.time():
        from datetime import timedelta

        moment = moment - timedelta(days=1)
    return day(moment, locale, form)


def instant(value: str | datetime | None, locale: str) -> str:
    if value is None or value == "":
        return ""
    return format_datetime(_moment(value), "medium", locale=locale)


def compile_catalogs() -> list[Path]:
    """Write ``messages.mo`` beside each ``messages.po``; returns the files written."""
    written = []
    for language in LANGUAGES:
        source = _catalog_path(language)
        if not source.exists():
            continue
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        target = source.with_suffix(".mo")
        with target.open("wb") as handle:
            write_mo(handle, catalog)
        written.append(target)
    return written


if __name__ == "__main__":  # pragma: no cover
    for path in compile_catalogs():
        print(path)

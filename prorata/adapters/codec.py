"""JSON for the core's values, so the store can keep them and give back equal values.

Invariants:
- ``decode(encode(v)) == v`` for every value built from the registered dataclasses and
  None, bool, int, str, Decimal, Fraction, Money, PeriodUnit, date, aware datetime, tuple,
  list, frozenset and str-keyed mappings. Datetimes keep their wall time, fold and zone
  (an IANA key, UTC, or a fixed offset), so a decoded schedule yields the same boundaries.
- The text is deterministic: the same value always gives the same bytes (frozensets and
  mapping keys are written in sorted order, dataclass fields in declaration order).
- Only registered dataclasses are decoded; any other type name is refused, so stored text
  can never construct arbitrary objects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from prorata.core import catalog, changes, documents, model, payments, policy, subscription
from prorata.core.calendar import PeriodUnit, Schedule
from prorata.core.money import Money

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Schedule,
        catalog.LocalText,
        catalog.Maintenance,
        catalog.Plan,
        catalog.Product,
        catalog.Catalog,
        model.Actor,
        model.Account,
        model.TermSpec,
        model.Change,
        model.Cancel,
        policy.Proration,
        policy.ChangeRule,
        policy.Policy,
        payments.PaymentChange,
        payments.Dunning,
        subscription.Item,
        subscription.Term,
        subscription.Segment,
        subscription.Scheduled,
        subscription.Subscription,
        subscription.Awaiting,
        documents.Line,
        documents.Invoice,
        documents.CreditNote,
        documents.LedgerEntry,
        changes.Routing,
    )
}


class CodecError(ValueError):
    """Stored text that does not describe a value this codec writes."""


def _zone(tz: Any) -> str:
    if isinstance(tz, ZoneInfo):
        return tz.key
    if tz is UTC:
        return "UTC"
    offset = tz.utcoffset(None)
    if offset is None:
        raise CodecError(f"cannot store the time zone {tz!r}")
    return f"{int(offset.total_seconds())}s"


def _tz(text: str) -> Any:
    if text.endswith("s") and text[:-1].lstrip("-").isdigit():
        return timezone(timedelta(seconds=int(text[:-1])))
    return UTC if text == "UTC" else ZoneInfo(text)


def _datetime(value: datetime) -> Any:
    if value.tzinfo is None:
        raise CodecError(f"naive datetime {value.isoformat()}: the store keeps aware times")
    return {"$t": [value.replace(tzinfo=None).isoformat(), value.fold, _zone(value.tzinfo)]}


def _dataclass_encoder(cls: type):
    names = tuple(f.name for f in dataclasses.fields(cls))
    tag = cls.__name__

    def encode(value: Any) -> Any:
        data: dict[str, Any] = {"$": tag}
        for name in names:
            data[name] = to_plain(getattr(value, name))
        return data

    return encode


# Exact types first (one dictionary lookup); subclasses fall through to the checks below.
_ENCODERS: dict[type, Any] = {
    PeriodUnit: lambda value: {"$p": value.value},
    Money: lambda value: {"$m": [str(value), value.currency]},
    Decimal: lambda value: {"$d": str(value)},
    Fraction: lambda value: {"$f": [value.numerator, value.denominator]},
    datetime: _datetime,
    tuple: lambda value: {"$tuple": [to_plain(v) for v in value]},
    list: lambda value: [to_plain(v) for v in value],
}


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready data (dicts, lists, strings, numbers)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None and kind.__name__ in _TYPES and _TYPES[kind.__name__] is kind:
        encoder = _ENCODERS[kind] = _dataclass_encoder(kind)
    if encoder is not None:
        return encoder(value)
    return _to_plain_slow(value)


def _to_plain_slow(value: Any) -> Any:
    if isinstance(value, PeriodUnit):  # a str subclass: tag it before plain text
        return {"$p": value.value}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Money):
        return {"$m": [str(value), value.currency]}
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, Fraction):
        return {"$f": [value.numerator, value.denominator]}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CodecError(f"naive datetime {value.isoformat()}: the store keeps aware times")
        wall = value.replace(tzinfo=None).isoformat()
        return {"$t": [wall, value.fold, _zone(value.tzinfo)]}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        data: dict[str, Any] = {"$": type(value).__name__}
        for f in dataclasses.fields(value):
            data[f.name] = to_plain(getattr(value, f.name))
        return data
    if isinstance(value, tuple):
        return {"$tuple": [to_plain(v) for v in value]}
    if isinstance(value, frozenset):
        return {"$set": sorted(to_plain(v) for v in value)}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise CodecError("only mappings with text keys can be stored")
        if any(k.startswith("$") for k in value):
            return {"$map": {k: to_plain(v) for k, v in value.items()}}
        return {k: to_plain(v) for k, v in value.items()}
    raise CodecError(f"cannot store a {type(value).__name__}")


def from_plain(data: Any) -> Any:
    """The value that :func:`to_plain` turned into ``data``."""
    if data is None or isinstance(data, bool | int | str):
        return data
    if isinstance(data, list):
        return [from_plain(v) for v in data]
    if not isinstance(data, dict):
        raise CodecError(f"unexpected {type(data).__name__} in stored data")
    if "$" in data:
        cls = _TYPES.get(data["$"])
        if cls is None:
            raise CodecError(f"unknown stored type {data['$']!r}")
        kwargs = {k: from_plain(v) for k, v in data.items() if k != "$"}
        return cls(**kwargs)
    if len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "$p":
            return PeriodUnit(body)
        if tag == "$m":
            return Money(Decimal(body[0]), body[1])
        if tag == "$d":
            return Decimal(body)
        if tag == "$f":
            return Fraction(body[0], body[1])
        if tag == "$t":
            wall, fold, zone = body
            return datetime.fromisoformat(wall).replace(tzinfo=_tz(zone), fold=fold)
        if tag == "$date":
            return date.fromisoformat(body)
        if tag == "$tuple":
            return tuple(from_plain(v) for v in body)
        if tag == "$set":
            return frozenset(from_plain(v) for v in body)
        if tag == "$map":
            return {k: from_plain(v) for k, v in body.items()}
    return {k: from_plain(v) for k, v in data.items()}


def encode(value: Any) -> str:
    """Compact, deterministic JSON text for ``value``."""
    return json.dumps(to_plain(value), separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> Any:
    try:
        return from_plain(json.loads(text))
    except (TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"stored value cannot be read: {exc}") from exc

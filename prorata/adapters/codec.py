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

import orjson

from prorata.adapters import codec_fields
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
    zone = _ZONES.get(text)
    if zone is None:
        if text.endswith("s") and text[:-1].lstrip("-").isdigit():
            zone = timezone(timedelta(seconds=int(text[:-1])))
        else:
            zone = UTC if text == "UTC" else ZoneInfo(text)
        if len(_ZONES) < _SEEN_LIMIT:
            _ZONES[text] = zone
    return zone


def _wall(value: datetime) -> str:
    """The wall time of ``value`` as ISO text (``value.replace(tzinfo=None).isoformat()``)."""
    return f"{value.date().isoformat()}T{value.time().isoformat()}"


def _datetime(value: datetime) -> Any:
    seen = _INSTANT_TEXTS.get(id(value))
    if seen is not None and seen[0] is value:  # the very object: its text is known
        return {"$t": [seen[1], seen[2], seen[3]]}
    if value.tzinfo is None:
        raise CodecError(f"naive datetime {value.isoformat()}: the store keeps aware times")
    wall, zone = _wall(value), _zone(value.tzinfo)
    _remember_text(value, wall, zone)
    return {"$t": [wall, value.fold, zone]}


def _remember_text(value: datetime, wall: str, zone: str) -> None:
    """Keep the text of ``value`` (held, so its id is not reused while kept)."""
    if len(_INSTANT_TEXTS) > _SEEN_LIMIT:
        _INSTANT_TEXTS.clear()
    _INSTANT_TEXTS[id(value)] = (value, wall, value.fold, zone)


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
    encoder = _ENCODERS.get(kind)  # every registered dataclass has its own (codec_fields)
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


def _money(body: list) -> Money:
    key = (body[0], body[1])
    value = _MONEY_SEEN.get(key)
    if value is None:
        if type(body[0]) is not str:
            raise CodecError(f"an amount is stored as text, not {body[0]!r}")
        if len(_MONEY_SEEN) > _SEEN_LIMIT:
            _MONEY_SEEN.clear()
        value = _MONEY_SEEN[key] = Money(Decimal(body[0]), body[1])
    return value


def _instant(body: list) -> datetime:
    wall, fold, zone = body
    key = (wall, fold, zone)
    value = _INSTANTS_SEEN.get(key)
    if value is None:
        if len(_INSTANTS_SEEN) > _SEEN_LIMIT:
            _INSTANTS_SEEN.clear()
        naive = datetime.fromisoformat(wall)
        value = datetime.combine(naive.date(), naive.time(), _tz(zone))
        if fold:
            value = value.replace(fold=fold)
        _INSTANTS_SEEN[key] = value
        if naive.isoformat() == wall and _zone(value.tzinfo) == zone:
            _remember_text(value, wall, zone)  # the text it is written as (canonical)
    return value


def _integer(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is float:  # orjson reads an integer beyond 64 bits as a float
        raise _WideInteger
    raise CodecError(f"expected an integer, not {value!r}")


# Decoded amounts and instants are immutable, so equal texts may share one value: a state
# repeats its period boundaries, and a batch of states repeats amounts. Bounded caches.
_SEEN_LIMIT = 20_000
_MONEY_SEEN: dict[tuple, Money] = {}
_INSTANTS_SEEN: dict[tuple, datetime] = {}
# The other way, for the instants met (decoded, or encoded once): id → (the instant, its
# wall text, fold, zone). A state is mostly written back with the instants it was read with.
_INSTANT_TEXTS: dict[int, tuple[datetime, str, int, str]] = {}
_ZONES: dict[str, Any] = {}

_UNITS = {unit.value: unit for unit in PeriodUnit}


def _unit(text: str) -> PeriodUnit:
    unit = _UNITS.get(text) if type(text) is str else None
    return PeriodUnit(text) if unit is None else unit


_TAGGED: dict[str, Any] = {
    "$p": _unit,
    "$m": _money,
    "$d": Decimal,
    "$f": lambda body: Fraction(_integer(body[0]), _integer(body[1])),
    "$t": _instant,
    "$date": date.fromisoformat,
    "$tuple": lambda body: tuple([from_plain(v) for v in body]),
    "$set": lambda body: frozenset(from_plain(v) for v in body),
    "$map": lambda body: {k: from_plain(v) for k, v in body.items()},
}


def _other_layout(cls: type, data: dict) -> Any:
    """A dataclass stored with other fields than it has now (one added since the text was
    stored, an unknown key): ``cls(**fields)`` applies defaults and refuses strangers."""
    return cls(**{k: from_plain(v) for k, v in data.items() if k != "$"})


def from_plain(data: Any) -> Any:
    """The value that :func:`to_plain` turned into ``data``."""
    kind = type(data)
    if kind is dict:
        tag = data.get("$")
        if tag is not None:
            decoder = _DECODERS.get(tag)
            if decoder is None:
                raise CodecError(f"unknown stored type {tag!r}")
            return decoder(data)
        if len(data) == 1:
            for tag, body in data.items():
                decoder = _TAGGED.get(tag)
                if decoder is not None:
                    return decoder(body)
        return {k: from_plain(v) for k, v in data.items()}
    if kind is list:
        return [from_plain(v) for v in data]
    if data is None or kind is str or kind is int or kind is bool:
        return data
    if kind is float:
        raise _WideInteger
    raise CodecError(f"unexpected {kind.__name__} in stored data")


# every registered dataclass's own encoder and decoder, written from its annotations, with
# the leaves' own writers and readers above
_LEAF_TAGS = {datetime: "$t", Money: "$m", Decimal: "$d", PeriodUnit: "$p"}
_DECODERS: dict[str, Any] = codec_fields.decoders(
    _TYPES,
    from_plain=from_plain,
    readers={kind: (tag, _TAGGED[tag]) for kind, tag in _LEAF_TAGS.items()},
    other_layout=_other_layout,
)
_ENCODERS.update(
    codec_fields.encoders(
        _TYPES, to_plain=to_plain, writers={kind: _ENCODERS[kind] for kind in _LEAF_TAGS}
    )
)


class _WideInteger(CodecError):
    """A float in parsed text: never written, but orjson reads an integer beyond 64 bits as
    one, so the text is read again with ``json``, which refuses real fractions."""


def encode(value: Any) -> str:
    """Compact, deterministic JSON text for ``value`` (orjson writes what ``json.dumps``
    with ``separators=(",", ":")`` and ``ensure_ascii=False`` writes; integers beyond 64
    bits, which orjson refuses, go through ``json``)."""
    plain = to_plain(value)
    try:
        return orjson.dumps(plain).decode()
    except orjson.JSONEncodeError:
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False)


def _refuse_float(text: str) -> Any:
    raise CodecError(f"a number with a fraction ({text}) in stored data")


def decode(text: str) -> Any:
    try:
        try:
            return from_plain(orjson.loads(text))
        except _WideInteger:
            return from_plain(json.loads(text, parse_float=_refuse_float))
    except (TypeError, KeyError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"stored value cannot be read: {exc}") from exc

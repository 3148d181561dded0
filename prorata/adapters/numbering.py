"""Document numbers: one gapless series per tenant and name (``INV``, ``CN``, ``REQ``…),
each a row of ``number_series`` holding its last number.

Invariants: a number is taken by incrementing that row inside the caller's transaction,
so a rolled-back transaction gives its numbers back and committed ones never skip or
repeat; on PostgreSQL the row stays locked until the commit (SQLite serialises writers
with ``BEGIN IMMEDIATE``). A series starts at 1 the first time it is asked for.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from prorata.adapters import schema as t

_P = bindparam
_SERIES_START = {
    name: dialect(t.number_series)
    .values(tenant_id=_P("tenant"), series=_P("series_name"), last=0)
    .on_conflict_do_nothing(index_elements=["tenant_id", "series"])
    for name, dialect in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_SERIES_NEXT = (
    update(t.number_series)
    .where(
        t.number_series.c.tenant_id == _P("tenant"),
        t.number_series.c.series == _P("series_name"),
    )
    .values(last=t.number_series.c.last + _P("count"))
    .returning(t.number_series.c.last)
)
_SERIES_LOCK = (
    select(t.number_series.c.last)
    .where(
        t.number_series.c.tenant_id == _P("tenant"),
        t.number_series.c.series == _P("series_name"),
    )
    .with_for_update()
)


def next_in_series(connection: Connection, tenant_id: int, series: str) -> int:
    """The next number of ``series``: gapless, since the increment lives in the caller's
    transaction and the row stays locked (PostgreSQL) or the database is (SQLite)."""
    return take_numbers(connection, tenant_id, series, 1)


def take_numbers(connection: Connection, tenant_id: int, series: str, count: int) -> int:
    """Take the next ``count`` numbers of ``series`` in one update; the first of them."""
    params = {"tenant": tenant_id, "series_name": series, "count": count}
    last = connection.execute(_SERIES_NEXT, params).scalar_one_or_none()
    if last is None:  # the series' first number: create it, then take it
        start = {"tenant": tenant_id, "series_name": series}
        connection.execute(_SERIES_START[connection.dialect.name], start)
        last = connection.execute(_SERIES_NEXT, params).scalar_one()
    return last - count + 1


def document_number(series: str, number: int) -> str:
    """How number ``number`` of ``series`` is written: ``INV-0001``."""
    return f"{series}-{number:04d}"


def lock_series(connection: Connection, tenant_id: int, series: str) -> None:
    """Take the lock of ``series`` now (PostgreSQL), before any account lock, so that a
    transaction numbering many documents never waits for it while holding accounts."""
    if connection.dialect.name == "postgresql":
        connection.execute(_SERIES_LOCK, {"tenant": tenant_id, "series_name": series})

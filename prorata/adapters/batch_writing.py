"""Writing a batch's kept rows below SQLAlchemy, each statement's rows at once: binary COPY
on PostgreSQL, inserts of up to 64 rows a statement on SQLite, the heads' compare-and-set
moves as one ``UPDATE … FROM unnest(…)`` on PostgreSQL (``executemany`` on SQLite).

The rows are those :class:`~prorata.adapters.renewal_batch.Recorder` kept: parameter
dictionaries of the store's own statements. Each value is converted as SQLAlchemy would
have converted it for that statement (its bind processors, compiled once per statement
and set of keys, :class:`_Plan`), after two replacements: a :class:`Deferred` row id by
the id taken for it (:func:`new_ids`), and a text holding a number placeholder (between
:data:`OPEN` and :data:`CLOSE`) by ``numbered(text)``. Converting is done in two steps:
:func:`prepare_rows` converts every column without such values before the ids and
numbers exist (on SQLite, before the write lock is taken), :func:`write_prepared` the
rest, then writes. A driver error is raised as SQLAlchemy would have raised it
(``IntegrityError`` and so on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError

from prorata.adapters import schema as t
from prorata.adapters.batch_reading import SlowPath, StaleBatch
from prorata.adapters.store import _MOVE_HEAD

# A placeholder is ``⟦<batch token>.<n>⟧``: the codec and the journal write ⟦ and ⟧ as
# they are, so a placeholder reads the same in every row, state and payload.
OPEN, CLOSE = "\u27e6", "\u27e7"


class Deferred:
    """The row id a kept insert returns, known once the batch is written."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int | None = None


def new_ids(connection: Connection, table, count: int) -> list[int]:
    """``count`` new row ids of ``table``, ascending: from its sequence (PostgreSQL), or
    after its largest (SQLite, where the batch holds the database's write lock)."""
    if connection.dialect.name == "postgresql":
        # the sequence looked up once, not once a row
        ids = connection.execute(
            text(
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(:table, 'id')::regclass"
                " AS seq) SELECT nextval(s.seq) FROM s, generate_series(1, :n)"
            ),
            {"table": table.name, "n": count},
        ).scalars()
        return sorted(ids)
    last = connection.execute(select(func.max(table.c.id))).scalar_one() or 0
    return list(range(last + 1, last + count + 1))


class _Plan:
    """How rows with ``keys`` are written with ``statement``, below SQLAlchemy: the driver's
    SQL, the parameter order and SQLAlchemy's own conversions of each value."""

    def __init__(self, statement, keys: tuple[str, ...], dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        processors = compiled._bind_processors
        order = compiled.positiontup or list(keys)
        self.usable = set(compiled.binds) == set(keys) and not compiled.escaped_bind_names
        self.sql = compiled.string
        # an instant's value depends on nothing else: one conversion per instant and batch
        self.order = [
            (key, processors.get(key), isinstance(compiled.binds[key].type, t.Instant))
            for key in order
            if key in compiled.binds
        ]
        self.names = [key for key, _, _ in self.order]
        self._get = _getter(self.names)
        quote = dialect.identifier_preparer.quote
        # PostgreSQL: COPY in binary, each column sent as its own type: no text to format
        # here and parse in the server (200,000 terms rows: 0.2 s of the client's CPU
        # against 1.05 s in text, 1.2-1.4 s in all against 1.8-2.1 s)
        self.copy = (
            f"COPY {quote(statement.table.name)} ({', '.join(map(quote, self.names))}) "
            "FROM STDIN (FORMAT BINARY)"
        )
        self.copy_types = (
            [_type_name(statement.table.c[key].type, dialect) for key in self.names]
            if dialect.name == "postgresql" and statement.is_insert and self.usable
            else []
        )
        # the integer columns' bounds: a binary COPY would wrap a value out of them
        self.int_bounds = [
            (index, *_INT_BOUNDS[name])
            for index, name in enumerate(self.copy_types)
            if name in _INT_BOUNDS
        ]
        # SQLite: an insert of several rows, ``INSERT … VALUES (…), (…)`` (see chunks)
        self._into = (
            f"INSERT INTO {quote(statement.table.name)} ({', '.join(map(quote, self.names))}) "
            "VALUES "
        )
        self._texts: dict[tuple[int, frozenset[int]], str] = {}

    def chunks(self, columns: list) -> Iterator[tuple[str, list]]:
        """SQLite: the rows of ``columns`` (:meth:`columns`), in order, as inserts of several
        rows each, with their parameters. A column that is None in every row is written as
        ``NULL`` in the text, not bound (the driver adapts every None it binds, through
        a lookup of adapters and two of attributes). Sizes of :data:`_CHUNKS` only, so
        that the driver's statement cache keeps the few texts; none has more than
        :data:`_MAX_PARAMETERS` parameters."""
        count = len(columns[0]) if columns else 0
        nulls = frozenset(n for n, column in enumerate(columns) if column.count(None) == count)
        if len(nulls) == len(columns):
            nulls = frozenset()
        bound = [column for n, column in enumerate(columns) if n not in nulls]
        values = list(zip(*bound, strict=True))
        width = max(len(columns) - len(nulls), 1)
        start = 0
        for size in _CHUNKS:
            size = max(1, min(size, _MAX_PARAMETERS // width))
            while count - start >= size:
                sql = self._texts.get((size, nulls))
                if sql is None:
                    row = ", ".join("NULL" if n in nulls else "?" for n in range(len(columns)))
                    sql = self._texts[size, nulls] = self._into + ", ".join([f"({row})"] * size)
                yield sql, list(chain.from_iterable(values[start : start + size]))
                start += size

    def convert(self, rows: list[dict], instants: dict) -> tuple[list, list[int]]:
        """The rows' values as the driver takes them, one sequence per column (in
        ``names``' order), and the indexes of the columns left as kept (``late``): those
        holding a deferred row id or a number placeholder, which :meth:`finish` converts
        once the ids and numbers are taken. Column by column: a column's types are looked
        at once, and only the kinds of value it holds are visited again; an instant's value
        depends on nothing else, so each instant is converted once (``instants``: instant
        → value). Needs neither the connection nor the write lock."""
        columns: list = list(zip(*map(self._get, rows), strict=True))
        late = []
        for index, (_, process, instant) in enumerate(self.order):
            column = columns[index]
            kinds = set(map(type, column))
            if Deferred in kinds or (str in kinds and _holds_placeholder(column, kinds)):
                late.append(index)
                continue
            columns[index] = _processed(column, process, instant, instants)
        return columns, late

    def finish(self, columns: list, late: list[int], numbered, instants: dict) -> list:
        """``columns`` (see :meth:`convert`) with the ``late`` ones converted: deferred ids
        and placeholders replaced, then as SQLAlchemy would."""
        for index in late:
            key, process, instant = self.order[index]
            column = columns[index]
            kinds = set(map(type, column))
            if Deferred in kinds:
                column = [
                    _row_id(key, value) if type(value) is Deferred else value for value in column
                ]
            if str in kinds:
                column = [
                    numbered(value) if type(value) is str and OPEN in value else value
                    for value in column
                ]
            columns[index] = _processed(column, process, instant, instants)
        return columns


_INT_BOUNDS = {"bigint": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1)}


def _check_for_binary(plan: _Plan, columns: list) -> None:
    """Refuse what a binary COPY would not refuse itself: an integer out of its column's
    range is wrapped by the driver's binary dumper (a text COPY has the server refuse it)."""
    for index, low, high in plan.int_bounds:
        values = [value for value in columns[index] if value is not None]
        if values and (min(values) < low or max(values) > high):
            raise ValueError(f"{plan.names[index]}: an integer out of its column's range")


def _type_name(column_type, dialect) -> str:
    """The name PostgreSQL gives ``column_type`` without its modifier (``varchar`` for
    ``VARCHAR(32)``): a binary COPY sends each value in its column's own type."""
    return column_type.compile(dialect=dialect).split("(")[0].lower()


def _holds_placeholder(column, kinds: set) -> bool:
    """Whether a text of ``column`` (whose value types are ``kinds``) holds a placeholder."""
    texts = column if kinds == {str} else [v for v in column if type(v) is str]
    return OPEN in "".join(texts)


def _processed(column, process, instant: bool, instants: dict) -> list:
    """``column``'s values converted by ``process`` (an instant's once per batch)."""
    if process is None:
        return column
    if instant:
        for value in set(column).difference(instants):
            instants[value] = process(value)
        return list(map(instants.__getitem__, column))
    return list(map(process, column))


def _getter(keys: list[str]) -> Callable[[dict], tuple]:
    """A row's values of ``keys``, as a tuple in that order."""
    if len(keys) == 1:
        key = keys[0]
        return lambda row: (row[key],)
    return itemgetter(*keys)


def _row_id(key: str, value: Deferred) -> int:
    if value.value is None:
        raise StaleBatch(f"{key}: a row id not yet known")
    return value.value


_PLANS: dict[tuple, _Plan] = {}
_CHUNKS = (64, 16, 4, 1)  # rows an insert on SQLite (Plan.chunks), largest first
_MAX_PARAMETERS = 32_700  # an SQLite statement's (SQLAlchemy's insertmanyvalues keeps to it)


class Prepared:
    """Rows of one statement and one set of keys, converted as far as they can be before
    the write lock is taken (:func:`prepare_rows`); :func:`write_prepared` writes them."""

    __slots__ = ("columns", "late", "plan", "rows", "statement")

    def __init__(self, statement, plan: _Plan | None, rows: list[dict], instants: dict) -> None:
        self.statement, self.plan, self.rows = statement, plan, rows
        self.columns, self.late = plan.convert(rows, instants) if plan else ([], [])


def prepare_rows(dialect, statement, rows: list[dict], instants: dict) -> list[Prepared]:
    """``rows`` of ``statement`` (an insert, or the heads' move) grouped by their keys
    (nearly always one set) and converted but for their deferred ids and placeholders. A
    statement that adds values of its own is left to SQLAlchemy (``plan`` None)."""
    shapes = set(map(tuple, rows))
    by_keys: dict[tuple[str, ...], list[dict]] = {}
    if len(shapes) == 1:
        by_keys[shapes.pop()] = rows
    else:
        for row in rows:
            by_keys.setdefault(tuple(row), []).append(row)
    prepared = []
    for keys, same in by_keys.items():
        plan = _PLANS.get((dialect.name, statement, keys))
        if plan is None:
            if len(_PLANS) >= 256:
                _PLANS.clear()
            plan = _PLANS[dialect.name, statement, keys] = _Plan(statement, keys, dialect)
        prepared.append(Prepared(statement, plan if plan.usable else None, same, instants))
    return prepared


def write_prepared(connection: Connection, prepared: Prepared, numbered, instants: dict) -> int:
    """Write ``prepared``'s rows in one go: COPY (inserts on PostgreSQL), inserts of many
    rows each (SQLite, :meth:`_Plan.chunks`) or the driver's ``executemany``; how many rows
    it changed."""
    statement, plan = prepared.statement, prepared.plan
    if plan is None:  # a statement that adds values of its own: SQLAlchemy writes it
        same = [_resolved(row, numbered) for row in prepared.rows]
        return connection.execute(statement, same).rowcount
    columns = plan.finish(prepared.columns, prepared.late, numbered, instants)
    dialect = connection.dialect
    cursor = connection.connection.driver_connection.cursor()
    error = dialect.loaded_dbapi.Error
    try:
        if dialect.name == "postgresql" and statement.is_insert:
            try:
                _check_for_binary(plan, columns)
                with cursor.copy(plan.copy) as copy:
                    copy.set_types(plan.copy_types)
                    for values in zip(*columns, strict=True):
                        copy.write_row(values)
            except (TypeError, ValueError, OverflowError) as exc:
                # a value not of its column's type (the binary dumpers take no other): as
                # SQLAlchemy raises a statement's bad parameter, so that the batch is
                # rolled back and renewed one subscription at a time
                raise DBAPIError.instance(plan.copy, None, exc, error, dialect=dialect) from exc
            return len(prepared.rows)
        if dialect.name == "postgresql" and statement is _MOVE_HEAD:
            cursor.execute(_moves_sql(tuple(plan.names)), [list(column) for column in columns])
            return cursor.rowcount
        if dialect.name == "postgresql":
            rows = zip(*columns, strict=True)
            named = [dict(zip(plan.names, values, strict=True)) for values in rows]
            cursor.executemany(plan.sql, named)
            return cursor.rowcount
        if statement.is_insert:
            for sql, parameters in plan.chunks(columns):
                cursor.execute(sql, parameters)
            return len(prepared.rows)
        cursor.executemany(plan.sql, list(zip(*columns, strict=True)))
        return cursor.rowcount
    except error as exc:  # as SQLAlchemy would have raised it (IntegrityError, …)
        raise DBAPIError.instance(plan.sql, None, exc, error, dialect=dialect) from exc
    finally:
        cursor.close()


# the heads' move on PostgreSQL: one UPDATE over arrays, one per parameter of _MOVE_HEAD
_MOVE_COLUMNS = {
    "row": ("bigint", None),
    "expected": ("integer", None),
    "next_version": ("integer", "version"),
    "new_status": ("text", "status"),
    "new_plan": ("text", "plan"),
    "new_quantity": ("integer", "quantity"),
    "new_due_at": ("timestamptz", "due_at"),
}


@cache
def _moves_sql(names: tuple[str, ...]) -> str:
    """``UPDATE subscriptions … FROM unnest(…)``: every head of the batch moved, each only
    from the version it was read at (as ``_MOVE_HEAD`` one by one); its row count is the
    number moved."""
    if set(names) != set(_MOVE_COLUMNS):
        raise SlowPath(f"a head move with other parameters: {names}")
    arrays = ", ".join(f"%s::{_MOVE_COLUMNS[name][0]}[]" for name in names)
    sets = ", ".join(
        f"{column} = m.{name}" for name, (_, column) in _MOVE_COLUMNS.items() if column
    )
    return (
        f"UPDATE subscriptions AS s SET {sets} "
        f"FROM unnest({arrays}) AS m({', '.join(names)}) "
        "WHERE s.id = m.row AND s.version = m.expected"
    )


def _resolved(row: dict, numbered: Callable[[str], str]) -> dict:
    """``row`` with deferred ids and placeholders replaced."""
    out = None
    for key, value in row.items():
        kind = type(value)
        if kind is Deferred:
            if value.value is None:
                raise StaleBatch(f"{key}: a row id not yet known")
            fixed: Any = value.value
        elif kind is str and OPEN in value:
            fixed = numbered(value)
        else:
            continue
        if out is None:
            out = dict(row)
        out[key] = fixed
    return row if out is None else out

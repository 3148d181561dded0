"""Copies of a generated bench tenant, so that a million subscriptions need not all be
generated through :class:`~prorata.services.billing.Billing` (about 600 a second here).

:func:`replicate` copies every row the generation wrote (accounts, subscriptions, their
terms, documents and lines, ledger entries, payments, collections, outbox events)
``copies`` times into the same tenant, each copy in its own key space:

- row ids: copy ``k`` adds ``k`` times the table's largest id, and so does every column
  that refers to a copied table (``account_id``, ``subscription_id``, ``document_id``, …);
- keys: subscription ``s<i>`` becomes ``s<i + k·S>`` and account ``a<j>`` becomes
  ``a<j + k·A>`` (S subscriptions, A accounts in the base), as whole column values and as
  JSON strings inside stored states and event payloads;
- document numbers: ``INV-<m>`` becomes number ``m + k·M`` of its series (M: the series'
  last number in the base), wherever it is written; the series then ends at ``(k+1)·M``.

A copy is thus the base with other names: it renews to the same amounts, and the whole
reads as one company whose subscriptions fall due at the same instants as the base's. Rows
are copied as the driver reads them (no type conversion): ``executemany`` on SQLite,
``COPY`` on PostgreSQL, whose id sequences are then moved past the copies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from sqlalchemy import Engine, Table, func, select, text

from prorata.adapters import schema as t
from prorata.adapters.numbering import document_number

# in dependency order: a table's references are copied before it
TABLES = (
    t.accounts,
    t.subscriptions,
    t.subscription_terms,
    t.documents,
    t.document_lines,
    t.ledger_entries,
    t.payments,
    t.collections,
    t.outbox,
)
_KEY = re.compile(r"([sa])(\d+)")
_QUOTED_KEY = re.compile(r'(?<=")([sa])(\d+)(?=")')
ROWS_PER_WRITE = 20_000


def _offsets(connection) -> dict[str, int]:
    """Each copied table's largest id (a copy's ids are shifted by a multiple of it)."""
    return {
        table.name: connection.execute(select(func.max(table.c.id))).scalar_one() or 0
        for table in TABLES
    }


def _renamer(
    k: int, subscriptions: int, accounts: int, series: dict[str, int]
) -> Callable[[str], str]:
    """Copy ``k``'s names: keys and document numbers in a text (see the module)."""
    shift = {"s": k * subscriptions, "a": k * accounts}
    number = re.compile(r"\b(" + "|".join(map(re.escape, series)) + r")-(\d+)\b")

    def key(match: re.Match) -> str:
        return f"{match.group(1)}{int(match.group(2)) + shift[match.group(1)]}"

    def renumber(match: re.Match) -> str:
        name = match.group(1)
        return document_number(name, int(match.group(2)) + k * series[name])

    def rename(value: str) -> str:
        whole = _KEY.fullmatch(value)
        if whole is not None:
            return key(whole)
        if '"' in value:
            value = _QUOTED_KEY.sub(key, value)
        if "-" in value and series:
            value = number.sub(renumber, value)
        return value

    return rename


def _copy_rows(
    table: Table, rows: list[tuple], names: list[str], k: int, offsets: dict[str, int], rename
) -> Iterator[tuple]:
    shifts = []
    for name in names:
        column = table.c[name]
        if column.primary_key:
            shifts.append(k * offsets[table.name])
            continue
        targets = [fk.column.table.name for fk in column.foreign_keys]
        shifts.append(k * offsets[targets[0]] if targets and targets[0] in offsets else 0)
    for row in rows:
        out = []
        for value, shift in zip(row, shifts, strict=True):
            if value is None:
                out.append(None)
            elif shift:
                out.append(value + shift)
            elif type(value) is str:
                out.append(rename(value))
            else:
                out.append(value)
        yield tuple(out)


def replicate(engine: Engine, tenant: int, copies: int) -> None:
    """Add ``copies`` copies of everything the tenant has (see the module)."""
    if copies < 1:
        return
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        offsets = _offsets(connection)
        subscriptions = connection.execute(
            select(func.count()).where(t.subscriptions.c.tenant_id == tenant)
        ).scalar_one()
        accounts = connection.execute(
            select(func.count()).where(t.accounts.c.tenant_id == tenant)
        ).scalar_one()
        series = dict(
            connection.execute(
                select(t.number_series.c.series, t.number_series.c.last).where(
                    t.number_series.c.tenant_id == tenant
                )
            ).all()
        )
        driver = connection.connection.driver_connection
        for table in TABLES:
            cursor = driver.cursor()
            cursor.execute(f"SELECT * FROM {table.name} ORDER BY id")
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            cursor.close()
            for k in range(1, copies + 1):
                rename = _renamer(k, subscriptions, accounts, series)
                copied = _copy_rows(table, rows, names, k, offsets, rename)
                _write(driver, table.name, names, copied, postgres)
        for name, last in series.items():
            connection.execute(
                t.number_series.update()
                .where(t.number_series.c.tenant_id == tenant, t.number_series.c.series == name)
                .values(last=last * (copies + 1))
            )
        if postgres:
            for table in TABLES:
                connection.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    ),
                    {"table": table.name},
                )


def _write(driver, table: str, names: list[str], rows: Iterator[tuple], postgres: bool) -> None:
    columns = ", ".join(f'"{name}"' for name in names)
    cursor = driver.cursor()
    try:
        if postgres:
            with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" for _ in names)})'
        chunk: list[tuple] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= ROWS_PER_WRITE:
                cursor.executemany(sql, chunk)
                chunk = []
        if chunk:
            cursor.executemany(sql, chunk)
    finally:
        cursor.close()

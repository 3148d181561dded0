"""Reading a batch of renewals at once: the subscriptions with their current terms, their
accounts (locked on PostgreSQL, in id order: the lock order of every change) and the
accounts' credit balances, in three queries (:func:`read_batch`); and, before a batch
computed outside the write lock is written, the check that what it read has not moved
(:meth:`Batch.check_unchanged`). :mod:`prorata.adapters.renewal_batch` renews and writes
the batch; the two exceptions below are the batch path's ways out.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable
from functools import cache, partial
from typing import Any

import orjson
from sqlalchemy import ARRAY, BigInteger, Connection, any_, bindparam, func, literal_column, select

from prorata.adapters import schema as t
from prorata.adapters.store_accounts import ACCOUNT_COLUMNS


class SlowPath(Exception):
    """A renewal needs something the batch does not provide: renew it on its own."""


class StaleBatch(Exception):
    """Writing the batch found the database other than it was read (a head that moved)."""


_S, _T, _A, _L = (
    t.subscriptions.c,
    t.subscription_terms.c,
    t.accounts.c,
    t.ledger_entries.c,
)


def _in_ids(column, dialect: str):
    """``column`` among the row ids bound as one parameter ``ids`` (see :func:`_ids`): a
    JSON array read by ``json_each`` on SQLite, an array on PostgreSQL. One statement text
    whatever the number of ids (compiled once), nothing rendered or bound per id."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(BigInteger)))
    return column.in_(select(literal_column("value")).select_from(func.json_each(bindparam("ids"))))


def _ids(connection: Connection, ids: Iterable[int]) -> Any:
    """The ``ids`` parameter of :func:`_in_ids` for ``connection``'s database."""
    ids = [int(i) for i in ids]
    return ids if connection.dialect.name == "postgresql" else orjson.dumps(ids).decode()


@cache
def _queries(dialect: str) -> tuple[Any, Any, Any, Any]:
    """The batch's queries for ``dialect``: states, accounts, accounts locked (PostgreSQL),
    credit balances."""
    states = (
        select(_S.id, _S.tenant_id, _S.key, _S.version, _S.account_id, _T.state)
        .join(t.subscription_terms, (_T.subscription_id == _S.id) & (_T.version == _S.version))
        .where(_in_ids(_S.id, dialect))
    )
    accounts = select(*ACCOUNT_COLUMNS).where(_in_ids(_A.id, dialect)).order_by(_A.id)
    balances = (
        select(_L.account_id, _L.currency, func.sum(_L.amount_minor).label("units"))
        .where(_in_ids(_L.account_id, dialect))
        .group_by(_L.account_id, _L.currency)
    )
    return states, accounts, accounts.with_for_update(), balances


# the largest ids of account changes and ledger entries in a reader's snapshot (0: none)
_MARKS = select(
    select(func.coalesce(func.max(t.account_changes.c.id), 0)).scalar_subquery(),
    select(func.coalesce(func.max(_L.id), 0)).scalar_subquery(),
)
_ACCOUNTS_CHANGED = select(t.account_changes.c.account_id).where(
    t.account_changes.c.id > bindparam("mark")
)
# not DISTINCT: SQLite would then scan the whole (account, currency) index for it instead
# of the rows past the mark
_CREDIT_MOVED = select(_L.account_id).where(_L.id > bindparam("mark"))

_RECORDS: dict[tuple[str, ...], type] = {}


def records(result) -> list[Any]:
    """The rows of ``result`` as named tuples (equal to the rows, field by field): reading a
    field of a SQLAlchemy ``Row`` by name costs about twenty times more, and a batch reads
    each of its rows' fields several times."""
    keys = tuple(result.keys())
    record = _RECORDS.get(keys)
    if record is None:
        record = _RECORDS[keys] = namedtuple("Record", keys)
    # what ``record._make`` does, without its Python frame a row (a row has every field)
    return list(map(partial(tuple.__new__, record), result.all()))


class Batch:
    """What a batch of renewals reads, read at once: each subscription's row and current
    state (``states``: row id → row), the accounts (``accounts``: row id → row, locked on
    PostgreSQL, in id order: the lock order of every change), and their credit
    (``balances``: (account row id, currency) → minor units; an account read here has 0 in
    every currency it has no entry in). :func:`read_batch` reads it."""

    def __init__(self, states: dict[int, Any], accounts: dict[int, Any]) -> None:
        self.states = states
        self.accounts = accounts
        self.balances: dict[tuple[int, str], int] = {}
        self.loaded: set[int] = set()
        self.marks: tuple[int, int] | None = None  # see mark()

    def read_balances(self, connection: Connection, account_ids: list[int]) -> None:
        balances = _queries(connection.dialect.name)[3]
        for row in records(connection.execute(balances, {"ids": _ids(connection, account_ids)})):
            self.balances[row.account_id, row.currency] = int(row.units)
        self.loaded.update(account_ids)

    def mark(self, connection: Connection) -> None:
        """SQLite, in the transaction that read the batch: note the largest ids of account
        changes and ledger entries it sees, for :meth:`check_unchanged`. Not on PostgreSQL,
        where ids follow the sequences, not the commits (and batches lock their accounts)."""
        if connection.dialect.name != "sqlite":
            raise ValueError("a batch's marks are SQLite's: ids there follow the commits")
        self.marks = tuple(connection.execute(_MARKS).one())

    def check_unchanged(self, connection: Connection) -> None:
        """Raise :class:`StaleBatch` unless the batch's accounts and the credit it read are
        as they were read (a batch computed before the write lock was taken).

        Stale when an account of the batch has a change, or an account whose credit it
        read a ledger entry, above the marks. On SQLite ids follow the commit order and
        ledger entries are only ever added (the store never gives their ids; only the
        bench's copies do, offline, above the largest), so these rows are
        exactly what was committed since the batch was read: the check reads the few rows
        other writers added meanwhile, not the batch's accounts and balances again. It is
        stricter than comparing them: an update that changed nothing, or credit that moved
        and came back, also makes the batch stale (it is then renewed under the lock)."""
        if self.marks is None:
            raise ValueError("check_unchanged needs the marks of the batch's read: mark()")
        accounts_mark, ledger_mark = self.marks
        changed = connection.execute(_ACCOUNTS_CHANGED, {"mark": accounts_mark}).scalars()
        if not self.accounts.keys().isdisjoint(changed):
            raise StaleBatch("an account of the batch changed meanwhile")
        moved = connection.execute(_CREDIT_MOVED, {"mark": ledger_mark}).scalars()
        if not self.loaded.isdisjoint(moved):
            raise StaleBatch("the credit of an account of the batch moved meanwhile")

    def units(self, connection: Connection, account_id: int, currency: str) -> int:
        """The account's credit in ``currency`` now (minor units)."""
        if account_id not in self.loaded:
            if account_id not in self.accounts:  # not locked by this batch
                raise SlowPath("credit of an account outside the batch")
            self.read_balances(connection, [account_id])
        # what is read is true whatever happens to the renewal being computed: not undone
        return self.balances.setdefault((account_id, currency), 0)

    def forget(self, account_id: int) -> None:
        """The account's credit moved outside the batch (a renewal made the usual way): read
        it again when next needed."""
        for key in [key for key in self.balances if key[0] == account_id]:
            del self.balances[key]
        self.loaded.discard(account_id)


def read_batch(connection: Connection, subscription_ids: Iterable[int]) -> Batch:
    """Three queries: the subscriptions with their current terms, their accounts (locked
    on PostgreSQL), the accounts' credit balances."""
    ids = list(subscription_ids)
    states_query, accounts_query, locked, _ = _queries(connection.dialect.name)
    rows = records(connection.execute(states_query, {"ids": _ids(connection, ids)}))
    states = {row.id: row for row in rows}
    account_ids = sorted({row.account_id for row in states.values()})
    if connection.dialect.name == "postgresql":
        accounts_query = locked
    accounts = records(connection.execute(accounts_query, {"ids": _ids(connection, account_ids)}))
    batch = Batch(states, {row.id: row for row in accounts})
    batch.read_balances(connection, account_ids)
    return batch

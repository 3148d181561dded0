"""Renewals in batches: the store's own writes, kept while a batch is computed, then
written with one COPY (PostgreSQL) or a few inserts of many rows each (SQLite) per
statement.

The bill run renews a batch of subscriptions with the same code as one subscription at a
time (:class:`~prorata.services.billing.Billing` over a
:class:`~prorata.adapters.store.StoreBook`), but :class:`BatchBook` is a ``StoreBook``
whose connection is a :class:`Recorder`:

- what a renewal reads was read for the whole batch beforehand, in a few queries
  (:func:`~prorata.adapters.batch_reading.read_batch`: the subscriptions' current terms,
  their accounts, locked on PostgreSQL in id order, and the accounts' credit balances),
  and is kept up to date in
  memory as the batch goes on (every ledger entry kept moves its account's balance, so the
  credit one renewal consumes or adds is seen by the next renewal of the same account);
- what it writes (terms, head moves, documents, lines, ledger entries, payments, the
  collections of invoices it issued, renewal keys, outbox events: whatever ``StoreBook`` and
  the journal execute) is kept, in order;
  :meth:`Recorder.prepare` converts them for the driver, with SQLAlchemy's own
  conversions of each value, before the write lock is taken
  (:func:`~prorata.adapters.batch_writing.prepare_rows`), and :meth:`Recorder.write` then
  writes each statement's rows at once, below SQLAlchemy
  (:func:`~prorata.adapters.batch_writing.write_prepared`). A document's row id, which its insert
  returns, is a :class:`Deferred` until the batch takes the ids of all its documents at
  once (from the table's sequence on PostgreSQL, after the largest on SQLite, where the
  batch holds the write lock) and writes them with the rows; a head's compare-and-set
  move is checked for every subscription (:class:`StaleBatch` otherwise);
- numbers are taken when the batch is written, one ``UPDATE`` per series and tenant for
  all its documents, in the order the renewals asked for them: while the batch is computed
  ``next_number`` hands out placeholders, replaced in every row written (the documents,
  the ledger, the renewal keys, the stored states and the events' payloads) by the real
  numbers. The numbers are those the renewals would have taken one by one, and on
  PostgreSQL the series row is locked only while the batch is written, so workers compute
  their batches side by side;
- anything else a renewal would do (read something not loaded here, update a row other
  than its subscription's head, an insert with inline values or a RETURNING this module
  cannot defer) raises :class:`SlowPath` before it happens: the caller then renews that
  subscription the usual way.

:meth:`Recorder.mark` and :meth:`Recorder.discard` drop what one subscription did (its
rows, numbers and credit moves) when it fails: nothing was written, so no savepoint is
needed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from prorata.adapters import codec
from prorata.adapters import schema as t
from prorata.adapters.batch_reading import Batch, SlowPath, StaleBatch
from prorata.adapters.batch_writing import (
    CLOSE,
    OPEN,
    Deferred,
    new_ids,
    prepare_rows,
    write_prepared,
)
from prorata.adapters.numbering import document_number, take_numbers
from prorata.adapters.store import _MOVE_HEAD, StoreBook, TenantConfig
from prorata.adapters.store_accounts import AccountDirectory
from prorata.adapters.store_payments import INSERT_COLLECTION, new_collection
from prorata.core.documents import CreditNote, Document, LedgerEntry
from prorata.core.money import Money
from prorata.core.payments import Collection
from prorata.core.subscription import Subscription


class _Kept:
    """The result of a kept statement: the deferred id it returns, one row changed."""

    rowcount = 1

    def __init__(self, deferred: Deferred | None) -> None:
        self._deferred = deferred

    def scalar_one(self) -> Deferred:
        if self._deferred is None:
            raise SlowPath("a result the batch cannot defer")
        return self._deferred

    scalar_one_or_none = scalar = scalar_one


# a number placeholder, ``⟦<batch token>.<n>⟧`` (OPEN and CLOSE: see batch_writing)
_PLACEHOLDER = re.compile(f"{OPEN}([0-9a-f]{{12}})\\.(\\d+){CLOSE}")


class Recorder:
    """Stands for the connection while a batch is computed: keeps inserts (and the heads'
    compare-and-set moves) in order, refuses everything else with :class:`SlowPath`."""

    def __init__(self, connection: Connection, batch: Batch) -> None:
        self.dialect = connection.dialect
        self.engine = connection.engine
        self.batch = batch
        self._reads = connection  # for credit balances only (Batch.units)
        self._written: tuple | None = None  # the rows last written (see write)
        self._discards = 0  # discards so far: with the calls kept, what prepare saw
        self._reset()

    def _reset(self) -> None:
        self._token = uuid.uuid4().hex[:12]
        # each statement's rows kept, statements in the order their first row kept came: a
        # row, or (row, its deferred id) for an insert that returns its row id
        self.kept: dict[Any, list] = {}
        self.calls: list = []  # the statement of each row kept, in order (see discard)
        self.numbers: list[tuple[int, str]] = []  # (tenant, series) of each placeholder
        self._undo: list[tuple[dict, Any, Any]] = []  # (mapping, key, previous value)
        self._prepared: list | None = None  # see prepare
        self._prepared_at: tuple[int, int] | None = None  # (calls, discards) it saw
        self._instants: dict = {}  # each instant converted once (see _Plan)

    # computing ---------------------------------------------------------------------------
    def execute(self, statement, parameters: dict | list[dict] | None = None) -> _Kept:
        kind = _KINDS.get(statement)
        if kind is None:
            kind = _kind(statement)
        if parameters is None:
            raise SlowPath("a statement without parameters")
        if kind is _ROWS and type(parameters) is dict:  # the most common: one row kept
            kept = self.kept.get(statement)
            if kept is None:
                kept = self.kept[statement] = []
            kept.append(parameters)
            self.calls.append(statement)
            return _KEPT
        rows = [parameters] if type(parameters) is dict else parameters
        if kind is _LEDGER:  # the credit the next renewals of these accounts see
            for row in rows:
                self._credit(row["account_id"], row["currency"], row["amount_minor"])
        if kind is not _RETURNS:
            self.kept.setdefault(statement, []).extend(rows)
            self.calls.extend([statement] * len(rows))
            return _KEPT
        if len(rows) != 1:
            raise SlowPath("an insert of many rows with RETURNING")
        deferred = Deferred()
        self.kept.setdefault(statement, []).append((rows[0], deferred))
        self.calls.append(statement)
        return _Kept(deferred)

    def _credit(self, account_id: int, currency: str, minor: int) -> None:
        balances = self.batch.balances
        units = self.batch.units(self._reads, account_id, currency) + minor
        self.set(balances, (account_id, currency), units)

    def placeholder(self, tenant: int, series: str) -> str:
        """A stand-in for the next number of ``series``, replaced when the batch is written."""
        self.numbers.append((tenant, series))
        return f"{OPEN}{self._token}.{len(self.numbers) - 1}{CLOSE}"  # see write

    def set(self, mapping: dict, key, value) -> None:
        """``mapping[key] = value``, undone if the subscription being renewed fails."""
        self._undo.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def mark(self) -> tuple[int, int, int]:
        return len(self.calls), len(self.numbers), len(self._undo)

    def discard(self, mark: tuple[int, int, int]) -> None:
        """Forget everything kept since ``mark``."""
        calls, numbers, undo = mark
        self._discards += 1
        for statement in self.calls[calls:]:
            self.kept[statement].pop()
        del self.calls[calls:]
        for statement in [statement for statement, kept in self.kept.items() if not kept]:
            del self.kept[statement]  # its first row kept comes later, if any
        del self.numbers[numbers:]
        while len(self._undo) > undo:
            mapping, key, previous = self._undo.pop()
            if previous is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = previous

    # writing -----------------------------------------------------------------------------
    def write(self, connection: Connection) -> Callable[[str], str]:
        """Take the numbers, write every kept row (each statement's rows at once, statements
        in the order they first appeared), start afresh; returns the function that turns a
        text with placeholders into the text written. The rows are converted first
        (:meth:`prepare`, unless that was done since the last row was kept), then the
        numbers taken: on PostgreSQL a series stays locked from then to the commit."""
        prepared = self._prepared
        if prepared is None or self._prepared_at != (len(self.calls), self._discards):
            prepared = self.prepare()
        final = self._take_numbers(connection)
        token = self._token

        def number(match: re.Match) -> str:
            if match.group(1) != token:
                raise StaleBatch(f"a placeholder of another batch: {match.group(0)}")
            return final[int(match.group(2))]

        # each placeholder of this batch → its number
        numbers = {f"{OPEN}{token}.{n}{CLOSE}": value for n, value in enumerate(final)}

        def numbered(text: str) -> str:
            # the common cases at once: a text that is one placeholder of this batch, or
            # holds one (and no other ⟦); anything else through the pattern
            whole = numbers.get(text)
            if whole is not None:
                return whole
            start = text.find(OPEN)
            if start < 0:
                return text
            end = text.find(CLOSE, start) + 1
            value = numbers.get(text[start:end])
            if value is None or OPEN in text[end:]:
                return _PLACEHOLDER.sub(number, text)
            return text[:start] + value + text[end:]

        instants = self._instants
        for statement, deferreds, parts in prepared:
            if deferreds:  # the row ids are taken first, and written with the rows
                ids = new_ids(connection, statement.table, len(deferreds))
                for deferred, row_id in zip(deferreds, ids, strict=True):
                    deferred.value = row_id
            changed = sum(write_prepared(connection, part, numbered, instants) for part in parts)
            if statement is _MOVE_HEAD:
                expected = sum(len(part.rows) for part in parts)
                if changed != expected:
                    raise StaleBatch(f"{expected - changed} subscription heads moved meanwhile")
        # the rows written are released with the recorder or at its next write: after the
        # commit, not while the write lock is held
        self._written = (self.kept, prepared)
        self._reset()
        return lambda text: numbered(text) if OPEN in text else text

    def prepare(self) -> list:
        """Convert the kept rows for the driver as far as they can be before the ids and
        numbers are taken (:func:`~prorata.adapters.batch_writing.prepare_rows`): called
        before the write transaction begins, it leaves the write lock only the ids, the
        numbers and the writing. Anything kept afterwards is not prepared: :meth:`write`
        prepares again if called so."""
        prepared = []
        for statement, kept in self.kept.items():
            if not kept:  # an empty list of rows was kept
                continue
            deferreds: list = []
            if statement._returning:  # the row id goes in as a deferred one (see write)
                deferreds = [deferred for _, deferred in kept]
                rows = [{**row, "id": deferred} for row, deferred in kept]
            elif statement is _MOVE_HEAD:
                rows = _moves(kept)
            else:
                rows = kept
            parts = prepare_rows(self.dialect, statement, rows, self._instants)
            prepared.append((statement, deferreds, parts))
        self._prepared = prepared
        self._prepared_at = (len(self.calls), self._discards)
        return prepared

    def _take_numbers(self, connection: Connection) -> list[str]:
        """The numbers of the placeholders, in order; one update per (tenant, series),
        taken in (tenant, series) order: batches that number in several series lock them
        in the same order."""
        counts: dict[tuple[int, str], int] = {}
        for key in self.numbers:
            counts[key] = counts.get(key, 0) + 1
        following = {}
        for tenant, series in sorted(counts):
            following[tenant, series] = take_numbers(
                connection, tenant, series, counts[tenant, series]
            )
        final = []
        for tenant, series in self.numbers:
            number = following[tenant, series]
            following[tenant, series] = number + 1
            final.append(document_number(series, number))
        return final


_MISSING = object()
_KEPT = _Kept(None)  # what a kept statement without RETURNING gives (immutable)
_ROWS, _RETURNS, _LEDGER = "rows", "returns its row id", "ledger entries"
_KINDS: dict[Any, str] = {_MOVE_HEAD: _ROWS}  # the statements kept so far, by kind


def _kind(statement) -> str:
    """What a statement the :class:`Recorder` may keep is; raises :class:`SlowPath` for one
    it may not keep."""
    if statement is _MOVE_HEAD:
        return _ROWS
    if not getattr(statement, "is_insert", False):
        raise SlowPath(f"a statement the batch cannot keep: {type(statement).__name__}")
    if statement._values or statement._multi_values:
        raise SlowPath("an insert with inline values")
    table = statement.table
    kind = _LEDGER if table is t.ledger_entries else _ROWS
    if statement._returning:
        if list(statement._returning) != [table.c.get("id")] or not table.c.id.primary_key:
            raise SlowPath("an insert returning something else than its row id")
        if kind is _LEDGER:
            raise SlowPath("a ledger entry whose id is asked for")
        kind = _RETURNS
    if len(_KINDS) >= 256:
        _KINDS.clear()
        _KINDS[_MOVE_HEAD] = _ROWS
    _KINDS[statement] = kind
    return kind


def _moves(rows: list[dict]) -> list[dict]:
    """One head move per subscription: from the version it had to the last one written
    (a subscription renewed twice in a batch moves its head twice)."""
    moves: dict[Any, dict] = {}
    for row in rows:
        first = moves.get(row["row"])
        moves[row["row"]] = row if first is None else {**row, "expected": first["expected"]}
    return list(moves.values())


def numbered_document(doc: Document, numbered: Callable[[str], str]) -> Document:
    """``doc`` as written (its placeholders replaced by the numbers taken)."""
    doc = replace(doc, number=numbered(doc.number))
    if isinstance(doc, CreditNote) and doc.refers_to is not None:
        doc = replace(doc, refers_to=numbered(doc.refers_to))
    return doc


class _ReadOnly:
    """The connection for reads only: a write raises :class:`SlowPath` (it would not be
    taken back if the renewal failed)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect

    def execute(self, statement, parameters=None):
        if getattr(statement, "is_dml", False):
            raise SlowPath("a write outside the batch's rows")
        return self._connection.execute(statement, parameters)


class BatchBook(StoreBook):
    """A tenant's :class:`StoreBook` for a batch: reads come from the :class:`Batch`, writes
    go to the :class:`Recorder`, numbers are placeholders (see the module's docstring)."""

    def __init__(self, connection: Connection, recorder: Recorder, config: TenantConfig) -> None:
        super().__init__(connection, config)
        self.accounts = AccountDirectory(_ReadOnly(connection), config.tenant_id)
        self._reads = connection
        self.connection = recorder
        self.recorder = recorder
        self._batch = recorder.batch
        for row in self._batch.accounts.values():
            if row.tenant_id == self.tenant_id:
                self.accounts.remember(row)
        self._states = {
            row.key: row for row in self._batch.states.values() if row.tenant_id == self.tenant_id
        }
        self._issued: dict[str, Any] = {}  # document number (placeholder) → deferred id

    def subscription(self, sub_id: str) -> Subscription | None:
        kept = self._subs.get(sub_id)  # (row id, version, subscription)
        if kept is not None:
            return kept[2]
        row = self._states.pop(sub_id, None)
        if row is not None:
            self._subs[sub_id] = (row.id, row.version, codec.decode(row.state))
        return super().subscription(sub_id)  # one not in the batch: SlowPath

    def next_number(self, series: str) -> str:
        return self.recorder.placeholder(self.tenant_id, series)

    def record(
        self, doc: Document, entries: Iterable[LedgerEntry], method: str | None = None
    ) -> Any:
        doc_id = super().record(doc, entries, method)
        self._issued[doc.number] = doc_id  # a placeholder's deferred row id
        return doc_id

    def save_collection(self, c: Collection) -> None:
        """The collection of an invoice this batch issued (auto-pay through a gateway
        token): kept as a new row pointing at the invoice's deferred row id. Any other
        collection is saved the usual way (:class:`SlowPath`)."""
        doc_id = self._issued.get(c.invoice)
        if doc_id is None:
            raise SlowPath("a collection of an invoice issued before the batch")
        self.connection.execute(INSERT_COLLECTION, new_collection(self.tenant_id, doc_id, c))

    def credit(self, account: str, currency: str) -> Money:
        # the batch's accounts are locked already (read_batch); the entries kept so far are
        # in the balance (Recorder)
        return self.balance(account, currency)

    def balance(self, account: str, currency: str) -> Money:
        units = self._batch.units(self._reads, self.accounts.id_of(account), currency)
        return Money.from_minor(units, currency)

"""One service call = one transaction, optionally idempotent.

:func:`run` opens a transaction on the tenant's store, gives the operation a
:class:`Work` (connection, book, billing, principal, the instant in the tenant's zone),
commits what it did together with its idempotency record, or rolls everything back when it
raises.

Idempotency: with a key, the first call that commits stores its response; later calls with
the same key and the same fingerprint (caller, operation, body) return that response
without doing anything; a different fingerprint raises :class:`IdempotencyMismatch`. The key
row is inserted first, so concurrent calls with one key queue behind the first (a unique
index on PostgreSQL, the write lock on SQLite) and then read its response. A call that
fails stores nothing: its key is free to be used again.

PostgreSQL deadlocks and serialization failures are retried a few times; the operation
must therefore be a function of the database state only, which every service is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import DBAPIError

from prorata.adapters import schema as t
from prorata.adapters.store import StoreBook, load_config, upsert
from prorata.core.changes import Context
from prorata.services.access import Principal
from prorata.services.billing import Billing
from prorata.services.errors import IdempotencyMismatch, InvalidRequest

_RETRIED_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
_ATTEMPTS = 5


@dataclass
class Work:
    connection: Connection
    book: StoreBook
    billing: Billing
    principal: Principal
    at: datetime
    request_id: str | None = None


def fingerprint(principal: Principal, operation: str, body: Any) -> str:
    text = json.dumps(
        {"who": principal.identity, "operation": operation, "body": body},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _claim(work: Work, key: str, operation: str, digest: str) -> Any | None:
    """Claim ``key``; the stored response if a committed call already used it."""
    upsert(
        work.connection,
        t.idempotency_keys,
        {
            "tenant_id": work.principal.tenant_id,
            "key": key,
            "operation": operation,
            "request_hash": digest,
            "response": "",
            "created_at": t.now_utc(),
        },
        ["tenant_id", "key"],
    )
    row = work.connection.execute(
        select(t.idempotency_keys.c.request_hash, t.idempotency_keys.c.response).where(
            t.idempotency_keys.c.tenant_id == work.principal.tenant_id,
            t.idempotency_keys.c.key == key,
        )
    ).one()
    if row.request_hash != digest:
        raise IdempotencyMismatch(key=key)
    return json.loads(row.response) if row.response else None


def _remember(work: Work, key: str, response: Any) -> None:
    work.connection.execute(
        update(t.idempotency_keys)
        .where(
            t.idempotency_keys.c.tenant_id == work.principal.tenant_id,
            t.idempotency_keys.c.key == key,
        )
        .values(response=json.dumps(response, sort_keys=True))
    )


def _sqlite_busy(exc: DBAPIError) -> bool:
    return "database is locked" in str(exc.orig) or "SQLITE_BUSY" in str(exc.orig)


def retryable(exc: DBAPIError) -> bool:
    """A PostgreSQL deadlock or serialization failure: the transaction may be run again."""
    return getattr(exc.orig, "sqlstate", None) in _RETRIED_SQLSTATES


def run(
    engine: Engine,
    principal: Principal,
    operation: str,
    body: Any,
    action: Callable[[Work], Any],
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
    write: bool = True,
    binary: bool = False,
) -> Any:
    """Run ``action`` in one transaction and return its (JSON-ready) response.

    ``binary=True``: the response is returned as the action made it (bytes, say), not
    normalised through JSON; such calls take no idempotency key.

    ``write=False`` (reads and previews) rolls the transaction back at the end, so what the
    action computed on the way (renewals caught up, say) is shown but never kept.
    """
    if at.tzinfo is None:
        raise InvalidRequest("naive_instant")
    if binary and key is not None:
        raise ValueError("binary responses are not stored under idempotency keys")
    if key is not None and not (0 < len(key) <= 200):
        raise InvalidRequest("key_length", code="invalid_idempotency_key", field="key")
    digest = fingerprint(principal, operation, body)
    deferred = not write and key is None
    for attempt in range(_ATTEMPTS):
        try:
            with engine.connect() as connection:
                if deferred:
                    connection.execution_options(sqlite_begin="DEFERRED")
                transaction = connection.begin()
                config = load_config(connection, principal.tenant_id)
                book = StoreBook(connection, config)
                ctx = Context(
                    config.catalog, config.policy, book.accounts, reader_locale=principal.locale
                )
                billing = Billing(ctx, book, config.policy.rounding)
                work = Work(
                    connection, book, billing, principal, at.astimezone(config.zone), request_id
                )
                if key is not None:
                    stored = _claim(work, key, operation, digest)
                    if stored is not None:
                        return stored
                try:
                    response = action(work)
                    if not binary:
                        response = json.loads(json.dumps(response, sort_keys=True, default=str))
                    if key is not None:
                        _remember(work, key, response)
                except BaseException:
                    transaction.rollback()
                    raise
                if write:
                    transaction.commit()
                else:
                    transaction.rollback()
                return response
        except DBAPIError as exc:
            if deferred and _sqlite_busy(exc):
                # A read that had to write (a renewal caught up, then rolled back) found
                # another writer first: redo it holding the write lock from the start.
                deferred = False
                continue
            if attempt + 1 < _ATTEMPTS and retryable(exc):
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover

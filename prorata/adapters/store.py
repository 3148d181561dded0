"""The ledger in the database: one :class:`StoreBook` per transaction and tenant.

:class:`StoreBook` implements :class:`prorata.services.book.Ledger` over a SQLAlchemy
connection whose transaction the caller owns; it never commits. It turns rows into the
core's values and back, so billing over the store records exactly what it records in
memory (the scenario tests compare the two byte for byte). Its accounts come from
:mod:`~prorata.adapters.store_accounts`, its document numbers from
:mod:`~prorata.adapters.numbering`, its payments and collections from
:mod:`~prorata.adapters.store_payments`.

Invariants:
- reads and writes are confined to ``tenant_id``; external keys are resolved within it;
- ``save`` appends a terms row (version + 1) and moves the subscription's head with a
  compare-and-set on the previous version: a concurrent writer that got there first makes
  it raise :class:`StaleVersion` instead of overwriting;
- on PostgreSQL the subscription and account rows are locked (``FOR UPDATE``) before they
  are read for a change, and numbers come from a locked series row, so concurrent
  transactions queue instead of interleaving (SQLite serialises with ``BEGIN IMMEDIATE``);
- instants go in as UTC and come back in the tenant's zone, equal to what was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from prorata.adapters import codec
from prorata.adapters import schema as t
from prorata.adapters.numbering import document_number, next_in_series
from prorata.adapters.store_accounts import AccountDirectory
from prorata.adapters.store_payments import PaymentRecords
from prorata.core.catalog import Catalog
from prorata.core.documents import CreditNote, Document, Invoice, LedgerEntry, Line
from prorata.core.lifecycle import due_at
from prorata.core.model import Cancel, Change
from prorata.core.money import Money
from prorata.core.policy import Policy
from prorata.core.subscription import Subscription
from prorata.services.book import Book, Request, split_pending


class StaleVersion(Exception):
    """The subscription changed since it was read (another transaction committed first)."""

    def __init__(self, key: str, expected: int, found: int | None) -> None:
        super().__init__(key, expected, found)
        self.key, self.expected, self.found = key, expected, found


class UnknownKey(LookupError):
    """An external key that does not exist in this tenant."""


def upsert(connection: Connection, table, values: dict, keys: list[str]) -> None:
    """Insert ``values`` unless a row with the same ``keys`` exists (no error, no change)."""
    dialect = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(dialect(table).values(**values).on_conflict_do_nothing(index_elements=keys))


# Statements run for every change and renewal, built once: SQLAlchemy then skips building
# and keying them on each call (most of a renewal's time was spent there).
_P = bindparam
_HEAD = select(t.subscriptions.c.id, t.subscriptions.c.version).where(
    t.subscriptions.c.tenant_id == _P("tenant"), t.subscriptions.c.key == _P("key")
)
_HEAD_LOCKED = _HEAD.with_for_update()
_ACCOUNT_OF = select(t.subscriptions.c.account_id).where(
    t.subscriptions.c.tenant_id == _P("tenant"), t.subscriptions.c.key == _P("key")
)
_LOCK_ACCOUNT = select(t.accounts.c.id).where(t.accounts.c.id == _P("account")).with_for_update()
_STATE = select(t.subscription_terms.c.state).where(
    t.subscription_terms.c.subscription_id == _P("row"),
    t.subscription_terms.c.version == _P("version"),
)
_MOVE_HEAD = (
    update(t.subscriptions)
    .where(t.subscriptions.c.id == _P("row"), t.subscriptions.c.version == _P("expected"))
    .values(
        version=_P("next_version"),
        status=_P("new_status"),
        plan=_P("new_plan"),
        quantity=_P("new_quantity"),
        due_at=_P("new_due_at"),
    )
)
_INSERT_TERMS = insert(t.subscription_terms)
_INSERT_DOCUMENT = insert(t.documents).returning(t.documents.c.id)
_INSERT_LINES = insert(t.document_lines)
_INSERT_LEDGER = insert(t.ledger_entries)
_INSERT_RENEWAL = insert(t.renewals)
_INSERT_PAYMENT = insert(t.payments)
_PENDING = select(t.accounts.c.pending_lines).where(t.accounts.c.id == _P("account"))
_PENDING_LOCKED = _PENDING.with_for_update()
_SET_PENDING = (
    update(t.accounts).where(t.accounts.c.id == _P("account")).values(pending_lines=_P("lines"))
)
_BALANCE = select(func.coalesce(func.sum(t.ledger_entries.c.amount_minor), 0)).where(
    t.ledger_entries.c.account_id == _P("account"), t.ledger_entries.c.currency == _P("currency")
)


# tenant configuration --------------------------------------------------------------------


class TenantConfig:
    """A tenant's currency, zone, catalog and policy (its newest catalog version)."""

    def __init__(
        self, tenant_id: int, currency: str, zone: ZoneInfo, catalog: Catalog, policy: Policy
    ) -> None:
        self.tenant_id = tenant_id
        self.currency = currency
        self.zone = zone
        self.catalog = catalog
        self.policy = policy


# Catalog versions are immutable, so their decoded values can be kept, keyed by database,
# row id and creation instant (SQLite may reuse the id of a row whose insert rolled back).
_VERSIONS: dict[tuple[str, int, datetime], tuple[Catalog, Policy]] = {}


def load_config(connection: Connection, tenant_id: int) -> TenantConfig:
    """The tenant's settings and its newest catalog version."""
    tenant = connection.execute(
        select(t.tenants.c.currency, t.tenants.c.timezone).where(t.tenants.c.id == tenant_id)
    ).one()
    version = connection.execute(
        select(t.catalog_versions.c.id, t.catalog_versions.c.created_at)
        .where(t.catalog_versions.c.tenant_id == tenant_id)
        .order_by(t.catalog_versions.c.version.desc())
        .limit(1)
    ).one()
    catalog, policy = _decoded(connection, version.id, version.created_at)
    return TenantConfig(tenant_id, tenant.currency, ZoneInfo(tenant.timezone), catalog, policy)


def _decoded(connection: Connection, version_id: int, created: datetime):
    key = (connection.engine.url.render_as_string(), version_id, created)
    cached = _VERSIONS.get(key)
    if cached is None:
        row = connection.execute(
            select(t.catalog_versions.c.catalog, t.catalog_versions.c.policy).where(
                t.catalog_versions.c.id == version_id
            )
        ).one()
        cached = (codec.decode(row.catalog), codec.decode(row.policy))
        if len(_VERSIONS) >= 256:
            _VERSIONS.clear()
        _VERSIONS[key] = cached
    return cached


# documents -------------------------------------------------------------------------------


def _fraction(text: str | None) -> Fraction | None:
    if text is None:
        return None
    numerator, denominator = text.split("/")
    return Fraction(int(numerator), int(denominator))


def _line_row(document_id: int, position: int, line: Line) -> dict[str, Any]:
    fraction = line.fraction
    return {
        "document_id": document_id,
        "position": position,
        "kind": line.kind,
        "description": line.description,
        "subscription_key": line.subscription,
        "plan": line.plan,
        "quantity": line.quantity,
        "amount_minor": line.amount.minor,
        "period_start": line.start,
        "period_end": line.end,
        "fraction": None if fraction is None else f"{fraction.numerator}/{fraction.denominator}",
        "unit_price": None if line.unit_price is None else str(line.unit_price),
        "explanation": line.explanation,
    }


class StoreBook(PaymentRecords):
    """The :class:`~prorata.services.book.Ledger` of one tenant, inside one transaction
    (payments and collections: :mod:`prorata.adapters.store_payments`)."""

    def __init__(self, connection: Connection, config: TenantConfig) -> None:
        self.connection = connection
        self.config = config
        self.tenant_id = config.tenant_id
        self.zone = config.zone
        self.accounts = AccountDirectory(connection, config.tenant_id)
        self.locking = connection.dialect.name == "postgresql"
        self._subs: dict[str, tuple[int, int, Subscription]] = {}  # key -> (id, version, sub)
        self._locked: set[int] = set()
        self.order_id: int | None = None  # stamped on the documents recorded
        self.acting_user: int | None = None  # stamped on requests opened and decided
        self.bill_run: str | None = None  # stamped on the renewals a bill run makes

    # subscriptions ---------------------------------------------------------------------
    def _head(self, key: str, lock: bool) -> tuple[int, int] | None:
        params = {"tenant": self.tenant_id, "key": key}
        query = _HEAD
        if lock and self.locking:
            # Lock order everywhere: the account, then its subscriptions. Credit is
            # consumed under the account lock, so changes of one account queue there.
            account_id = self.connection.execute(_ACCOUNT_OF, params).scalar_one_or_none()
            if account_id is None:
                return None
            self._lock_account(account_id)
            query = _HEAD_LOCKED
        row = self.connection.execute(query, params).one_or_none()
        return None if row is None else (row.id, row.version)

    def _lock_account(self, account_id: int) -> None:
        if self.locking and account_id not in self._locked:
            self.connection.execute(_LOCK_ACCOUNT, {"account": account_id})
            self._locked.add(account_id)

    def subscription(self, sub_id: str) -> Subscription | None:
        if sub_id in self._subs:
            return self._subs[sub_id][2]
        head = self._head(sub_id, lock=True)
        if head is None:
            return None
        row_id, version = head
        state = self.connection.execute(_STATE, {"row": row_id, "version": version}).scalar_one()
        sub = codec.decode(state)
        self._subs[sub_id] = (row_id, version, sub)
        return sub

    def version_of(self, sub_id: str) -> int:
        """The stored version of ``sub_id`` as this transaction sees it (loads it)."""
        if self.subscription(sub_id) is None:
            raise UnknownKey(sub_id)
        return self._subs[sub_id][1]

    def row_id(self, sub_id: str) -> int:
        if self.subscription(sub_id) is None:
            raise UnknownKey(sub_id)
        return self._subs[sub_id][0]

    def _head_values(self, sub: Subscription) -> dict[str, Any]:
        return {
            "status": sub.status,
            "plan": sub.plan,
            "quantity": sub.quantity,
            "due_at": due_at(sub),
        }

    def _terms(self, row_id: int, version: int, sub: Subscription, at, reason) -> None:
        self.connection.execute(
            _INSERT_TERMS,
            {
                "subscription_id": row_id,
                "version": version,
                "valid_from": at,
                "reason": reason,
                "plan": sub.plan,
                "quantity": sub.quantity,
                "status": sub.status,
                "period_start": sub.period_start,
                "period_end": sub.period_end,
                "state": codec.encode(sub),
                "created_at": t.now_utc(),
            },
        )

    def add(self, sub: Subscription, at: datetime) -> None:
        row_id = self.connection.execute(
            insert(t.subscriptions)
            .values(
                tenant_id=self.tenant_id,
                key=sub.id,
                account_id=self.accounts.id_of(sub.account),
                version=1,
                created_at=t.now_utc(),
                **self._head_values(sub),
            )
            .returning(t.subscriptions.c.id)
        ).scalar_one()
        self._terms(row_id, 1, sub, at, "subscribe")
        self._subs[sub.id] = (row_id, 1, sub)

    def save(self, sub: Subscription, at: datetime, reason: str) -> None:
        if self.subscription(sub.id) is None:
            raise UnknownKey(sub.id)
        row_id, version, _ = self._subs[sub.id]
        head = self._head_values(sub)
        moved = self.connection.execute(
            _MOVE_HEAD,
            {
                "row": row_id,
                "expected": version,
                "next_version": version + 1,
                "new_status": head["status"],
                "new_plan": head["plan"],
                "new_quantity": head["quantity"],
                "new_due_at": head["due_at"],
            },
        ).rowcount
        if moved != 1:
            found = self._head(sub.id, lock=False)
            raise StaleVersion(sub.id, version, found[1] if found else None)
        self._terms(row_id, version + 1, sub, at, reason)
        self._subs[sub.id] = (row_id, version + 1, sub)

    def next_due(self, until: datetime, inclusive: bool) -> tuple[datetime, str] | None:
        due = t.subscriptions.c.due_at
        query = (
            select(t.subscriptions.c.key)
            .where(
                t.subscriptions.c.tenant_id == self.tenant_id,
                due <= until if inclusive else due < until,
            )
            .order_by(due, t.subscriptions.c.id)
            .limit(1)
        )
        key = self.connection.execute(query).scalar_one_or_none()
        if key is None:
            return None
        self._subs.pop(key, None)  # read it afresh, locked
        sub = self.subscription(key)
        return due_at(sub), key

    def subscription_keys(self) -> list[str]:
        rows = self.connection.execute(
            select(t.subscriptions.c.key)
            .where(t.subscriptions.c.tenant_id == self.tenant_id)
            .order_by(t.subscriptions.c.id)
        )
        return [row.key for row in rows]

    # lines waiting on an account ----------------------------------------------------------
    def pending_of(self, account: str) -> tuple[Line, ...]:
        if not self.accounts.holds_pending(account):
            return ()
        return codec.decode(self.accounts.pending[account])

    def _pending(self, account: str) -> tuple[int, tuple[Line, ...]]:
        """The account's row id and the lines waiting on it, read now (locked on
        PostgreSQL, so that two transactions never both take or extend them)."""
        account_id = self.accounts.id_of(account)
        query = _PENDING_LOCKED if self.locking else _PENDING
        text = self.connection.execute(query, {"account": account_id}).scalar_one()
        return account_id, () if text is None else codec.decode(text)

    def _keep_pending(self, account: str, account_id: int, lines: tuple[Line, ...]) -> None:
        text = codec.encode(lines) if lines else None
        self.connection.execute(_SET_PENDING, {"account": account_id, "lines": text})
        self.accounts.pending[account] = text

    def add_pending(self, account: str, lines: tuple[Line, ...]) -> None:
        if lines:
            account_id, held = self._pending(account)
            self._keep_pending(account, account_id, (*held, *lines))

    def take_pending(self, account: str, currency: str) -> tuple[Line, ...]:
        # the account's row, read in this transaction, says whether to look: an invoice of
        # an account with nothing waiting costs no query (a bill run's batch reads the rows
        # beforehand; one that has lines waiting is renewed on its own, as it writes here)
        if not self.accounts.holds_pending(account):
            return ()
        account_id, held = self._pending(account)
        taken, kept = split_pending(held, currency)
        if taken:
            self._keep_pending(account, account_id, kept)
        return taken

    # numbers, documents and credit -------------------------------------------------------
    def next_number(self, series: str) -> str:
        return document_number(series, next_in_series(self.connection, self.tenant_id, series))

    def record(
        self, doc: Document, entries: Iterable[LedgerEntry], method: str | None = None
    ) -> int:
        account_id = self.accounts.id_of(doc.account)
        is_invoice = isinstance(doc, Invoice)
        zero = Money.zero(doc.currency)
        doc_id = self.connection.execute(
            _INSERT_DOCUMENT,
            {
                "tenant_id": self.tenant_id,
                "number": doc.number,
                "type": "invoice" if is_invoice else "credit_note",
                "account_id": account_id,
                "currency": doc.currency,
                "issued_at": doc.issued_at,
                "subtotal_minor": doc.subtotal.minor,
                "tax_minor": doc.tax.minor,
                "total_minor": doc.total.minor,
                "credit_applied_minor": (doc.credit_applied if is_invoice else zero).minor,
                "credit_added_minor": (doc.credit_added if is_invoice else zero).minor,
                "amount_due_minor": (doc.amount_due if is_invoice else zero).minor,
                "tax_rate": str(doc.tax_rate),
                "status": doc.status if is_invoice else None,
                # as issued, for its PDF: the status changes, this never does
                "paid_on_issue": is_invoice and doc.status == "paid",
                "refers_to": None if is_invoice else doc.refers_to,
                "credited_to": None if is_invoice else doc.credited_to,
                "order_id": self.order_id,
            },
        ).scalar_one()
        if doc.lines:
            self.connection.execute(
                _INSERT_LINES, [_line_row(doc_id, n, line) for n, line in enumerate(doc.lines)]
            )
        rows = [self._entry_row(e) for e in entries]
        if rows:
            self.connection.execute(_INSERT_LEDGER, rows)
        if is_invoice and doc.status == "paid" and doc.amount_due.is_positive:
            # collected on issue (auto-pay): the payment is recorded, so it has a receipt
            self._payment(doc_id, doc.amount_due, doc.account, doc.issued_at, method)
        return doc_id

    def _payment(
        self,
        doc_id: int,
        amount: Money,
        account: str,
        at: datetime,
        method: str | None = None,
        reference: str | None = None,
    ) -> None:
        """A succeeded charge of document ``doc_id``."""
        self.connection.execute(
            _INSERT_PAYMENT,
            {
                "tenant_id": self.tenant_id,
                "document_id": doc_id,
                "amount_minor": amount.minor,
                "currency": amount.currency,
                "method": method or self.accounts[account].payment_method,
                "paid_at": at,
                "kind": "charge",
                "status": "succeeded",
                "reference": reference,
                "refund_of": None,
            },
        )

    def forget(self, sub_id: str) -> None:
        """Drop what this book remembers of ``sub_id`` (after a savepoint rolled back)."""
        self._subs.pop(sub_id, None)

    def renewed(self, sub_id: str, due_at: datetime, document: str | None) -> None:
        """The exactly-once key of a renewal: a second renewal of ``sub_id`` for
        ``due_at`` violates the unique (subscription, due_at) and rolls its transaction
        back."""
        self.connection.execute(
            _INSERT_RENEWAL,
            {
                "tenant_id": self.tenant_id,
                "subscription_id": self.row_id(sub_id),
                "due_at": due_at,
                "document_number": document,
                "bill_run": self.bill_run,
                "created_at": due_at,
            },
        )

    def credit(self, account: str, currency: str) -> Money:
        """The balance, with the account row locked: credit is consumed by whoever holds it."""
        self._lock_account(self.accounts.id_of(account))
        return self.balance(account, currency)

    def balance(self, account: str, currency: str) -> Money:
        """The account's credit balance as read now, without a lock (previews, views)."""
        params = {"account": self.accounts.id_of(account), "currency": currency}
        units = self.connection.execute(_BALANCE, params).scalar_one()
        return Money.from_minor(int(units), currency)

    def _local(self, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(self.zone)

    def documents(self, where, *, limit: int | None = None, offset: int = 0) -> list[Document]:
        """The tenant's documents matching ``where`` (a SQL condition), in issue order."""
        rows = self.connection.execute(
            select(t.documents, t.accounts.c.key.label("account_key"))
            .join(t.accounts, t.accounts.c.id == t.documents.c.account_id)
            .where(t.documents.c.tenant_id == self.tenant_id, where)
            .order_by(t.documents.c.id)
            .limit(limit)
            .offset(offset)
        ).all()
        if not rows:
            return []
        lines: dict[int, list[Line]] = {row.id: [] for row in rows}
        currencies = {row.id: row.currency for row in rows}
        for line in self.connection.execute(
            select(t.document_lines)
            .where(t.document_lines.c.document_id.in_(list(lines)))
            .order_by(t.document_lines.c.document_id, t.document_lines.c.position)
        ):
            lines[line.document_id].append(self._line(line, currencies[line.document_id]))
        return [self._document(row, tuple(lines[row.id])) for row in rows]

    def _line(self, row: Any, currency: str) -> Line:
        return Line(
            kind=row.kind,
            description=row.description,
            subscription=row.subscription_key,
            plan=row.plan,
            quantity=row.quantity,
            amount=Money.from_minor(row.amount_minor, currency),
            start=self._local(row.period_start),
            end=self._local(row.period_end),
            fraction=_fraction(row.fraction),
            unit_price=None if row.unit_price is None else Decimal(row.unit_price),
            explanation=row.explanation,
        )

    def _document(self, row: Any, lines: tuple[Line, ...]) -> Document:
        def money(units: int) -> Money:
            return Money.from_minor(units, row.currency)

        common = {
            "number": row.number,
            "issued_at": self._local(row.issued_at),
            "account": row.account_key,
            "currency": row.currency,
            "lines": lines,
            "subtotal": money(row.subtotal_minor),
            "tax": money(row.tax_minor),
            "total": money(row.total_minor),
            "tax_rate": Decimal(row.tax_rate),
        }
        if row.type == "invoice":
            return Invoice(
                **common,
                credit_applied=money(row.credit_applied_minor),
                credit_added=money(row.credit_added_minor),
                amount_due=money(row.amount_due_minor),
                status=row.status,
            )
        return CreditNote(**common, refers_to=row.refers_to, credited_to=row.credited_to)

    def invoice(self, number: str) -> Invoice | None:
        found = self.documents((t.documents.c.number == number) & (t.documents.c.type == "invoice"))
        return found[0] if found else None

    def is_paid_on_issue(self, number: str) -> bool:
        """Whether invoice ``number`` was paid when issued (whatever its status now)."""
        return bool(
            self.connection.execute(
                select(t.documents.c.paid_on_issue).where(
                    t.documents.c.tenant_id == self.tenant_id,
                    t.documents.c.number == number,
                    t.documents.c.type == "invoice",
                )
            ).scalar_one_or_none()
        )

    def notes_for(self, invoice: str) -> list[CreditNote]:
        return self.documents(
            (t.documents.c.refers_to == invoice) & (t.documents.c.type == "credit_note")
        )

    # requests --------------------------------------------------------------------------
    def _request(self, row: Any) -> Request:
        return Request(
            id=row.number,
            subscription=row.subscription_key,
            reason=row.reason,
            action=codec.decode(row.action),
            created_at=self._local(row.created_at),
            state=row.state,
            decided_at=self._local(row.decided_at),
        )

    def requests(self, *where) -> list[Request]:
        """The tenant's requests matching ``where`` (SQL conditions on requests or their
        subscription), by number."""
        rows = self.connection.execute(
            select(t.requests, t.subscriptions.c.key.label("subscription_key"))
            .join(t.subscriptions, t.subscriptions.c.id == t.requests.c.subscription_id)
            .where(t.requests.c.tenant_id == self.tenant_id, *where)
            .order_by(t.requests.c.number)
        )
        return [self._request(row) for row in rows]

    def open_request(
        self,
        sub_id: str,
        reason: str,
        action: Change | Cancel,
        at: datetime,
    ) -> Request:
        number = next_in_series(self.connection, self.tenant_id, "REQ")
        self.connection.execute(
            insert(t.requests).values(
                tenant_id=self.tenant_id,
                number=number,
                subscription_id=self.row_id(sub_id),
                reason=reason,
                action=codec.encode(action),
                state="pending",
                order_id=self.order_id,
                requested_by=self.acting_user,
                created_at=at,
            )
        )
        return Request(number, sub_id, reason, action, at)

    def pending_request(self, sub_id: str) -> Request | None:
        found = self.requests(
            t.requests.c.subscription_id == self.row_id(sub_id), t.requests.c.state == "pending"
        )
        return found[0] if found else None

    def request(self, number: int) -> Request | None:
        found = self.requests(t.requests.c.number == number)
        return found[0] if found else None

    def decide(self, request: Request, state: str, at: datetime) -> Request:
        self.connection.execute(
            update(t.requests)
            .where(t.requests.c.tenant_id == self.tenant_id, t.requests.c.number == request.id)
            .values(state=state, decided_at=at, decided_by=self.acting_user)
        )
        request.state = state
        request.decided_at = at
        return request

    # reading out -----------------------------------------------------------------------
    def snapshot(self) -> Book:
        """Everything recorded for this tenant, as the in-memory :class:`Book` holds it."""
        book = Book()
        for key in self.subscription_keys():
            book.subscriptions[key] = self.subscription(key)
        book.documents = self.documents(t.documents.c.id.is_not(None))
        book.paid_on_issue = set(
            self.connection.execute(
                select(t.documents.c.number).where(
                    t.documents.c.tenant_id == self.tenant_id, t.documents.c.paid_on_issue
                )
            ).scalars()
        )
        entries = self.connection.execute(
            select(t.ledger_entries, t.accounts.c.key.label("account_key"))
            .join(t.accounts, t.accounts.c.id == t.ledger_entries.c.account_id)
            .where(t.ledger_entries.c.tenant_id == self.tenant_id)
            .order_by(t.ledger_entries.c.id)
        )
        book.ledger = [
            LedgerEntry(
                self._local(e.at),
                e.account_key,
                Money.from_minor(e.amount_minor, e.currency),
                e.document_number,
                e.reason,
            )
            for e in entries
        ]
        book.requests = self.requests()
        book.payment_list = self.payments()
        book.collections = {c.invoice: c for c in self.collections()}
        waiting = self.connection.execute(
            select(t.accounts.c.key, t.accounts.c.pending_lines)
            .where(
                t.accounts.c.tenant_id == self.tenant_id,
                t.accounts.c.pending_lines.is_not(None),
            )
            .order_by(t.accounts.c.id)
        )
        book.pending = {row.key: codec.decode(row.pending_lines) for row in waiting}
        return book

"""Reading a tenant back from the store, comparing it with a book, and the store's invariants.

:func:`read_store` reads one tenant in bulk (a handful of queries however many
subscriptions): each subscription's head state, every document, the ledger and the
renewal keys. :func:`check_invariants` asserts what must hold after any number of bill runs,
crashed or concurrent:

- document numbers are unique and gapless per series, and equal the series counters;
- every document has its lines (summing to its subtotal) and total = subtotal + tax;
- every subscription's terms run 1..n, its head is the newest terms and agrees with it
  (plan, quantity, status, due instant);
- at most one renewal row per (subscription, due instant), each naming an existing invoice;
- the ledger is exactly the documents' credit (applied, added, noted) and no account's
  balance goes negative;
- the outbox has one ``subscription.renewed`` event per renewal row and one
  ``invoice.issued`` event per renewal invoice.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, select, true

from prorata.adapters import codec
from prorata.adapters import schema as t
from prorata.adapters.store import StoreBook, load_config
from prorata.core.documents import CreditNote, Document, LedgerEntry
from prorata.core.lifecycle import due_at
from prorata.core.money import Money
from prorata.core.subscription import Subscription
from prorata.services.book import Book


@dataclass
class Stored:
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    renewals: dict[tuple[str, datetime], str | None] = field(default_factory=dict)
    bill_runs: Counter = field(default_factory=Counter)  # renewal rows per bill_run value


def read_store(engine, tenant: int) -> Stored:
    stored = Stored()
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        config = load_config(connection, tenant)
        zone = config.zone
        sub, terms = t.subscriptions.c, t.subscription_terms.c
        for row in connection.execute(
            select(sub.key, sub.version, terms.state)
            .join(
                t.subscription_terms,
                (terms.subscription_id == sub.id) & (terms.version == sub.version),
            )
            .where(sub.tenant_id == tenant)
            .order_by(sub.id)
        ):
            stored.subscriptions[row.key] = codec.decode(row.state)
            stored.versions[row.key] = row.version
        book = StoreBook(connection, config)
        stored.documents = book.documents(true())
        ledger = t.ledger_entries.c
        for e in connection.execute(
            select(t.ledger_entries, t.accounts.c.key.label("account_key"))
            .join(t.accounts, t.accounts.c.id == ledger.account_id)
            .where(ledger.tenant_id == tenant)
            .order_by(ledger.id)
        ):
            stored.ledger.append(
                LedgerEntry(
                    e.at.astimezone(zone),
                    e.account_key,
                    Money.from_minor(e.amount_minor, e.currency),
                    e.document_number,
                    e.reason,
                )
            )
        renewal = t.renewals.c
        for row in connection.execute(
            select(sub.key, renewal.due_at, renewal.document_number, renewal.bill_run)
            .join(t.subscriptions, sub.id == renewal.subscription_id)
            .where(renewal.tenant_id == tenant)
        ):
            key = (row.key, row.due_at.astimezone(zone))
            assert key not in stored.renewals, f"renewed twice: {key}"
            stored.renewals[key] = row.document_number
            stored.bill_runs[row.bill_run] += 1
        connection.rollback()
    return stored


def assert_same_as_book(stored: Stored, book: Book) -> None:
    """Identical documents (numbers included), states, ledger and renewal keys."""
    assert len(stored.documents) == len(book.documents)
    for got, want in zip(stored.documents, book.documents, strict=True):
        assert got == want, (got.number, want.number)
    assert stored.subscriptions.keys() == book.subscriptions.keys()
    for key, want in book.subscriptions.items():
        assert stored.subscriptions[key] == want, key
    assert stored.ledger == book.ledger
    assert stored.renewals == book.renewals


# comparisons that ignore document numbers ------------------------------------------------


def unnumbered(doc: Document):
    """``doc`` without its number (nor the number of the invoice a credit note refers to)."""
    if isinstance(doc, CreditNote):
        return replace(doc, number="", refers_to=None)
    return replace(doc, number="")


def unnumbered_state(sub: Subscription) -> Subscription:
    return replace(sub, segments=tuple(replace(s, document=None) for s in sub.segments))


def document_multiset(documents) -> Counter:
    return Counter(unnumbered(doc) for doc in documents)


# invariants ----------------------------------------------------------------------------


def check_invariants(engine, tenant: int) -> dict[str, int]:
    """Assert the invariants above on one snapshot; the number of documents per series."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        series = _numbers(connection, tenant)
        _terms(connection, tenant)
        _ledger(connection, tenant)
        _renewals(connection, tenant)
        connection.rollback()
    return series


def _numbers(connection, tenant: int) -> dict[str, int]:
    doc = t.documents.c
    docs = connection.execute(
        select(doc.id, doc.number, doc.type, doc.subtotal_minor, doc.tax_minor, doc.total_minor)
        .where(doc.tenant_id == tenant)
        .order_by(doc.id)
    ).all()
    numbers = Counter(row.number for row in docs)
    twice = [number for number, n in numbers.items() if n > 1]
    assert not twice, f"numbers used twice: {twice[:10]}"
    by_series: dict[str, list[int]] = defaultdict(list)
    for row in docs:
        prefix, _, digits = row.number.rpartition("-")
        by_series[prefix].append(int(digits))
    counters = dict(
        connection.execute(
            select(t.number_series.c.series, t.number_series.c.last).where(
                t.number_series.c.tenant_id == tenant, t.number_series.c.series != "REQ"
            )
        ).all()
    )
    for prefix, found in by_series.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"gaps in {prefix}"
        assert counters.get(prefix) == len(found), (prefix, counters.get(prefix), len(found))
    assert set(counters) <= set(by_series) | {p for p, n in counters.items() if n == 0}
    line = t.document_lines.c
    sums = dict(
        connection.execute(
            select(line.document_id, func.sum(line.amount_minor))
            .join(t.documents, t.documents.c.id == line.document_id)
            .where(t.documents.c.tenant_id == tenant)
            .group_by(line.document_id)
        ).all()
    )
    for row in docs:
        assert row.id in sums, f"{row.number} has no lines"
        assert sums[row.id] == row.subtotal_minor, row.number
        assert row.total_minor == row.subtotal_minor + row.tax_minor, row.number
    return {prefix: len(found) for prefix, found in by_series.items()}


def _terms(connection, tenant: int) -> None:
    sub, term = t.subscriptions.c, t.subscription_terms.c
    versions: dict[int, list[int]] = defaultdict(list)
    for row in connection.execute(
        select(term.subscription_id, term.version)
        .join(t.subscriptions, sub.id == term.subscription_id)
        .where(sub.tenant_id == tenant)
    ):
        versions[row.subscription_id].append(row.version)
    heads = connection.execute(
        select(
            sub.id, sub.key, sub.version, sub.plan, sub.quantity, sub.status, sub.due_at, term.state
        )
        .join(
            t.subscription_terms, (term.subscription_id == sub.id) & (term.version == sub.version)
        )
        .where(sub.tenant_id == tenant)
    ).all()
    assert len(heads) == len(versions), "a head without its terms"
    for head in heads:
        found = sorted(versions[head.id])
        assert found == list(range(1, len(found) + 1)), (head.key, found)
        assert head.version == found[-1], (head.key, head.version, found[-1])
        state = codec.decode(head.state)
        due = due_at(state)
        assert (head.plan, head.quantity, head.status) == (
            state.plan,
            state.quantity,
            state.status,
        ), head.key
        assert (head.due_at is None) == (due is None), head.key
        assert due is None or head.due_at == due, (head.key, head.due_at, due)


def _ledger(connection, tenant: int) -> None:
    doc, ledger = t.documents.c, t.ledger_entries.c
    docs = connection.execute(
        select(
            doc.number,
            doc.type,
            doc.account_id,
            doc.total_minor,
            doc.credit_applied_minor,
            doc.credit_added_minor,
        ).where(doc.tenant_id == tenant)
    ).all()
    found: dict[str, Counter] = defaultdict(Counter)
    balance: Counter = Counter()
    numbers = {row.number for row in docs}
    for entry in connection.execute(
        select(ledger.id, ledger.account_id, ledger.amount_minor, ledger.document_number)
        .add_columns(ledger.reason)
        .where(ledger.tenant_id == tenant)
        .order_by(ledger.id)
    ):
        assert entry.document_number in numbers, f"entry for missing {entry.document_number}"
        found[entry.document_number][(entry.reason, entry.amount_minor)] += 1
        balance[entry.account_id] += entry.amount_minor
        assert balance[entry.account_id] >= 0, f"negative credit after entry {entry.id}"
    expected_balance: Counter = Counter()
    for row in docs:
        expected = Counter()
        if row.type == "invoice":
            if row.credit_applied_minor:
                expected[("credit_applied", -row.credit_applied_minor)] += 1
            if row.credit_added_minor:
                expected[("credit_added", row.credit_added_minor)] += 1
            delta = row.credit_added_minor - row.credit_applied_minor
        else:
            expected[("credit_note", row.total_minor)] += 1
            delta = row.total_minor
        assert found[row.number] == expected, (row.number, found[row.number], expected)
        expected_balance[row.account_id] += delta
    assert +balance == +expected_balance


def _renewals(connection, tenant: int) -> None:
    renewal, doc = t.renewals.c, t.documents.c
    rows = connection.execute(
        select(renewal.subscription_id, renewal.due_at, renewal.document_number).where(
            renewal.tenant_id == tenant
        )
    ).all()
    keys = Counter((row.subscription_id, row.due_at) for row in rows)
    assert not [k for k, n in keys.items() if n > 1], "a renewal key twice"
    invoices = set(
        connection.execute(
            select(doc.number).where(doc.tenant_id == tenant, doc.type == "invoice")
        ).scalars()
    )
    named = [row.document_number for row in rows if row.document_number is not None]
    assert set(named) <= invoices, "a renewal names a missing invoice"
    assert len(set(named)) == len(named), "two renewals name one invoice"
    events = Counter()
    for topic, payload in connection.execute(
        select(t.outbox.c.topic, t.outbox.c.payload).where(t.outbox.c.tenant_id == tenant)
    ):
        if topic == "subscription.renewed":
            events[topic] += 1
        elif topic == "invoice.issued":
            events[json.loads(payload)["number"]] += 1
    assert events["subscription.renewed"] == len(rows), (events["subscription.renewed"], len(rows))
    for number in named:
        assert events[number] == 1, f"invoice.issued of {number}: {events[number]}"

"""Crash safety of checkout: a checkout process killed with SIGKILL at random points, at least
50 times per database (SQLite and PostgreSQL); after each restart no partial document exists
and no committed checkout is lost.

Two tenants share the database: the world's (GoToAssist policy: quantity changes make
invoices, negative ones adding account credit, positive ones consuming it) and one on the
Chargebee policy with 8.875 % tax, paying by hand (every change makes a credit note and an
invoice: while the invoice the note refers to is open, an adjustment note allocated to it,
with any excess a refundable note to the account that the change's invoice consumes).
``crash_worker`` forks a process that checks out carts of one or two changes with fresh
idempotency keys and journals each key before the call and its response after it (the
acknowledgement); this test kills it a random 10-250 ms after it is
ready, reaps it (it must have died of SIGKILL, not of an error), waits on PostgreSQL until
its server processes are gone (a COMMIT sent before the kill may still complete), and checks
the store from a fresh engine, on one snapshot (REPEATABLE READ on PostgreSQL):

- every acknowledged key is stored with the acknowledged response, and its order and
  documents exist with their lines and amounts as acknowledged;
- no partial work: every document has its lines (summing to its subtotal; total = subtotal
  + tax; invoice credit and amount due consistent; the credit notes allocated to an invoice
  within its amount due), its ledger entries and its outbox
  event; every order has its items (one per change in its key's response) and audit rows,
  belongs to exactly one idempotency key, and is completed; every key has its response;
- numbers are gapless and unique per tenant and series, and equal the series counters;
- every subscription's version is its newest terms' version, versions run 1..n, and the
  head row agrees with those terms;
- the ledger matches the documents (each document's entries are exactly the credit it
  added, applied or noted) and no account's balance is ever negative.

The summary printed at the end (``-s``) says how many kills interrupted a checkout inside its
transaction or after its first write, and how many of those committed anyway.

At the end acknowledged keys (and keys committed by a killed process before it could
acknowledge them) are replayed: each returns its stored response and writes nothing; then a
new checkout still works and the checks hold again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.adapters.tenants import add_account, add_membership, add_user, create_tenant
from prorata.core.model import Account
from prorata.scenario.loader import parse_scenario
from prorata.services import subscriptions
from prorata.services.access import Principal, load_principal
from prorata.services.subscriptions import ChangeInput
from tests import fork_server
from tests.store.world import CATALOG, ZONE, build

KILLS = 50  # per database
DELAY = (0.01, 0.25)  # seconds between a worker's being ready and its kill
SEED = 20240216


# the world ---------------------------------------------------------------------------------


SETUP_KEY = "setup-s1"


def populate(engine) -> list[tuple[int, int]]:
    """Two tenants with four subscriptions each; (tenant, owner user) of each."""
    world = build(engine)
    owner = world.principals["owner"]
    # s1, subscribed on 15 January, renews on 15 February: let a first checkout catch that
    # up, so that the workers know every version they expect.
    subscriptions.checkout(
        engine, owner, [ChangeInput("s1", quantity=3)], at=world.at(16, hour=9), key=SETUP_KEY
    )
    tenants = [(world.tenant, world.users["owner"])]
    scenario = parse_scenario(CATALOG.replace("policy: gotoassist", "policy: chargebee"))
    with engine.begin() as connection:
        tenant = create_tenant(
            connection,
            slug=f"chargebee-{id(engine)}",
            name="chargebee",
            currency=scenario.currency,
            timezone=scenario.timezone.key,
            catalog=scenario.catalog,
            policy=scenario.policy,
        )
        account = add_account(
            connection, tenant, Account("corp", auto_pay=False, tax_rate=Decimal("8.875"))
        )
        user = add_user(connection, tenant, "owner@corp.example")
        add_membership(connection, user, account, "owner")
    tenants.append((tenant, user))
    # An API token names the subscriptions (customers may not choose their ids).
    for principal, keys in (
        (world.principals["token"], ("s2", "s3", "s4")),
        (Principal(tenant, kind="token"), ("b1", "b2", "b3", "b4")),
    ):
        for key in keys:
            subscriptions.subscribe(
                engine,
                principal,
                subscription=key,
                account="corp",
                plan="standard-monthly",
                quantity=2,
                billing_day=15,
                at=world.at(15),
            )
    return tenants


# the fork server ---------------------------------------------------------------------------


class ForkServer(fork_server.ForkServer):
    """``crash_worker`` as a subprocess: forks checkout workers on demand and reaps them."""

    def __init__(self, url: str, journal: Path, tenants, stderr: Path) -> None:
        spec = ",".join(f"{tenant}:{user}" for tenant, user in tenants)
        super().__init__("tests.store.crash_worker", [url, str(journal), spec], stderr)

    def start(self, run: int, seed: int) -> None:
        """Fork a worker and wait until it has connected and read its state."""
        answers = self.fork(f"go {run} {seed}")
        if ["ready"] not in answers:
            self.kill(expect_sigkill=False)
            pytest.fail(f"the worker failed to start:\n{self.errors()}")

    def kill(self, expect_sigkill: bool = True) -> None:
        """SIGKILL the worker; it must have been running (not dead of an error)."""
        os.kill(self.pid, signal.SIGKILL)
        answer = self.ask("reap")
        while answer[0] != "status":  # a worker that failed said so first
            assert answer == ["failed"], answer
            answer = self.ask(None)
        self.pid = None
        status = int(answer[1])
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if expect_sigkill and not killed:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            pytest.fail(f"the worker ended by itself (status {code}):\n{self.errors()}")


# the journal -------------------------------------------------------------------------------


class Journal:
    """What the workers wrote: keys started, their transactions and their acknowledgements.

    :meth:`read` takes in what was appended since it last read (the workers are dead then).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.started: dict[str, dict] = {}
        self.acked: dict[str, dict] = {}
        self.begun: set[str] = set()
        self.wrote: set[str] = set()
        self.torn = 0
        self.used_by_test: set[str] = {SETUP_KEY}  # keys of checkouts the test made
        self.runs: dict[int, list[str]] = defaultdict(list)  # run -> keys started
        self.backends: dict[int, list[int]] = defaultdict(list)  # run -> PostgreSQL pids

    def read(self) -> Journal:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        for raw in data.split(b"\n"):
            if not raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                self.torn += 1  # a line the kill cut short: acknowledges nothing
                continue
            kind = entry["e"]
            if kind == "start":
                self.started[entry["key"]] = entry
                self.runs[entry["run"]].append(entry["key"])
            elif kind == "ack":
                self.acked[entry["key"]] = {**self.started[entry["key"]], **entry}
            elif kind == "begin":
                self.begun.add(entry["key"])
            elif kind == "write":
                self.wrote.add(entry["key"])
            elif kind == "backend":
                self.backends[entry["run"]].append(entry["pid"])
            else:
                assert kind in ("ready", "exhausted"), entry
                assert kind != "exhausted", "the worker ran out of instants: fewer kills"
        return self

    def in_flight(self) -> list[str]:
        """Keys started and never acknowledged: the checkouts the kills interrupted."""
        return [key for key in self.started if key not in self.acked]


# the checks --------------------------------------------------------------------------------


def minor(amount: str) -> int:
    return int(Decimal(amount) * 100)  # USD


def check_tenant(connection, tenant: int, journal: Journal) -> dict[str, dict]:
    """Every invariant of one tenant's store; the responses its idempotency keys hold."""
    d = t.documents.c
    docs = connection.execute(
        select(
            d.id,
            d.number,
            d.type,
            d.account_id,
            d.subtotal_minor,
            d.tax_minor,
            d.total_minor,
            d.credit_applied_minor,
            d.credit_added_minor,
            d.amount_due_minor,
            d.credited_to,
            d.refers_to,
            d.order_id,
        )
        .where(d.tenant_id == tenant)
        .order_by(d.id)
    ).all()
    by_number = {doc.number: doc for doc in docs}
    assert len(by_number) == len(docs), "a document number is used twice"
    lines = defaultdict(list)
    line = t.document_lines.c
    for row in connection.execute(
        select(line.document_id, line.position, line.amount_minor)
        .join(t.documents, t.documents.c.id == t.document_lines.c.document_id)
        .where(t.documents.c.tenant_id == tenant)
        .order_by(t.document_lines.c.document_id, t.document_lines.c.position)
    ):
        lines[row.document_id].append(row)

    # documents: whole, each with its lines
    for doc in docs:
        rows = lines[doc.id]
        assert rows, f"{doc.number} has no lines"
        assert [row.position for row in rows] == list(range(len(rows))), doc.number
        assert sum(row.amount_minor for row in rows) == doc.subtotal_minor, doc.number
        assert doc.total_minor == doc.subtotal_minor + doc.tax_minor, doc.number
        if doc.type == "invoice":
            applied, added = doc.credit_applied_minor, doc.credit_added_minor
            assert doc.amount_due_minor == max(doc.total_minor - applied, 0), doc.number
            assert added == max(-doc.total_minor, 0), doc.number
            assert 0 <= applied <= max(doc.total_minor, 0), doc.number
        else:
            assert doc.type == "credit_note", doc.number
            assert doc.credited_to in ("account", "invoice"), doc.number
    # adjustment notes: allocated to an invoice of their account, within its amount due
    allocated: Counter = Counter()
    for doc in docs:
        if doc.type == "credit_note" and doc.credited_to == "invoice":
            invoice = by_number.get(doc.refers_to)
            assert invoice is not None and invoice.type == "invoice", doc.number
            assert invoice.account_id == doc.account_id, doc.number
            allocated[doc.refers_to] += doc.total_minor
    for number, amount in allocated.items():
        assert amount <= by_number[number].amount_due_minor, number

    # numbers: gapless and unique per series, equal to the counters
    counters = dict(
        connection.execute(
            select(t.number_series.c.series, t.number_series.c.last).where(
                t.number_series.c.tenant_id == tenant
            )
        ).all()
    )
    for kind, series in (("invoice", "INV"), ("credit_note", "CN")):
        numbers = {doc.number for doc in docs if doc.type == kind}
        expected = {f"{series}-{n:04d}" for n in range(1, counters.get(series, 0) + 1)}
        missing, unexpected = sorted(expected - numbers), sorted(numbers - expected)
        assert not missing and not unexpected, f"{series}: missing {missing}, extra {unexpected}"

    # orders: completed, with their items, their audit rows and exactly one key each
    orders = {
        row.id: row
        for row in connection.execute(
            select(t.orders.c.id, t.orders.c.account_id, t.orders.c.status).where(
                t.orders.c.tenant_id == tenant
            )
        )
    }
    positions = defaultdict(list)
    for row in connection.execute(
        select(t.order_items.c.order_id, t.order_items.c.position)
        .join(t.orders, t.orders.c.id == t.order_items.c.order_id)
        .where(t.orders.c.tenant_id == tenant)
        .order_by(t.order_items.c.order_id, t.order_items.c.position)
    ):
        positions[row.order_id].append(row.position)
    for order_id, order in orders.items():
        assert order.status == "completed", (order_id, order.status)
        assert positions[order_id] == list(range(len(positions[order_id]))), order_id
        assert positions[order_id], f"order {order_id} has no items"
    assert set(positions) <= set(orders)
    for doc in docs:
        if doc.order_id is not None:
            assert doc.order_id in orders, f"{doc.number} refers to a missing order"
            assert orders[doc.order_id].account_id == doc.account_id, doc.number
    changes = connection.execute(
        select(func.count()).where(
            t.audit_log.c.tenant_id == tenant, t.audit_log.c.action.like("subscription.change.%")
        )
    ).scalar_one()
    assert changes == sum(len(p) for p in positions.values()), "audit rows ≠ order items"

    # idempotency keys: each with its response, its order and its documents
    keys = {
        row.key: row
        for row in connection.execute(
            select(
                t.idempotency_keys.c.key,
                t.idempotency_keys.c.operation,
                t.idempotency_keys.c.response,
            ).where(t.idempotency_keys.c.tenant_id == tenant)
        )
    }
    key_of_order = {}
    responses = {}
    for key, row in keys.items():
        assert row.response, f"key {key} is stored without its response"
        assert row.operation == "checkout", key
        assert key in journal.started or key in journal.used_by_test, f"{key} never used"
        response = responses[key] = json.loads(row.response)
        order_id = response["order"]
        assert order_id in orders, f"key {key}: order {order_id} is missing"
        assert order_id not in key_of_order, f"order {order_id} has two keys"
        key_of_order[order_id] = key
        assert len(positions[order_id]) == len(response["items"]), key
        for item in response["items"]:
            assert item["status"] == "applied", (key, item["status"])
            for view in item["documents"]:
                doc = by_number.get(view["number"])
                assert doc is not None, f"key {key}: {view['number']} is missing"
                assert doc.order_id == order_id, view["number"]
                assert doc.type == view["type"], view["number"]
                assert doc.total_minor == minor(view["total"]), view["number"]
                assert doc.tax_minor == minor(view["tax"]), view["number"]
                amounts = [row.amount_minor for row in lines[doc.id]]
                assert amounts == [minor(line["amount"]) for line in view["lines"]], view["number"]
        if key in journal.acked:
            assert response == journal.acked[key]["response"], f"key {key}: another response"
    assert set(key_of_order) == set(orders), "an order without its idempotency key"
    lost = [k for k, a in journal.acked.items() if a["tenant"] == tenant and k not in keys]
    assert not lost, f"acknowledged checkouts lost: {lost}"

    # subscriptions: head = newest terms, versions 1..n
    terms = defaultdict(dict)
    term = t.subscription_terms.c
    for row in connection.execute(
        select(term.subscription_id, term.version, term.plan, term.quantity, term.status)
        .join(t.subscriptions, t.subscriptions.c.id == t.subscription_terms.c.subscription_id)
        .where(t.subscriptions.c.tenant_id == tenant)
    ):
        terms[row.subscription_id][row.version] = row
    sub = t.subscriptions.c
    heads = connection.execute(
        select(sub.id, sub.key, sub.version, sub.plan, sub.quantity, sub.status).where(
            sub.tenant_id == tenant
        )
    ).all()
    assert heads
    for head in heads:
        versions = sorted(terms[head.id])
        assert versions == list(range(1, len(versions) + 1)), (head.key, versions)
        assert head.version == versions[-1], (head.key, head.version, versions[-1])
        newest = terms[head.id][head.version]
        assert (head.plan, head.quantity, head.status) == (
            newest.plan,
            newest.quantity,
            newest.status,
        ), head.key

    # ledger: exactly the documents' credit, never negative
    ledger = t.ledger_entries.c
    entries = connection.execute(
        select(
            ledger.id, ledger.account_id, ledger.amount_minor, ledger.document_number, ledger.reason
        )
        .where(ledger.tenant_id == tenant)
        .order_by(ledger.id)
    ).all()
    found = defaultdict(Counter)
    balance: Counter = Counter()
    for entry in entries:
        assert entry.document_number in by_number, f"entry for missing {entry.document_number}"
        found[entry.document_number][(entry.reason, entry.amount_minor)] += 1
        balance[entry.account_id] += entry.amount_minor
        assert balance[entry.account_id] >= 0, f"negative credit after entry {entry.id}"
    expected_balance: Counter = Counter()
    for doc in docs:
        expected = Counter()
        if doc.type == "invoice":
            if doc.credit_applied_minor:
                expected[("credit_applied", -doc.credit_applied_minor)] += 1
            if doc.credit_added_minor:
                expected[("credit_added", doc.credit_added_minor)] += 1
            delta = doc.credit_added_minor - doc.credit_applied_minor
        elif doc.credited_to == "invoice":
            delta = 0  # an adjustment: allocated to its invoice, nothing to the ledger
        else:
            expected[("credit_note", doc.total_minor)] += 1
            delta = doc.total_minor
        assert found[doc.number] == expected, (doc.number, found[doc.number], expected)
        expected_balance[doc.account_id] += delta
    assert +balance == +expected_balance

    # outbox: one event per document of an order
    events = Counter(
        (row.topic, json.loads(row.payload).get("number"))
        for row in connection.execute(
            select(t.outbox.c.topic, t.outbox.c.payload).where(t.outbox.c.tenant_id == tenant)
        )
    )
    for doc in docs:
        if doc.order_id is not None:
            assert events[(f"{doc.type}.issued", doc.number)] == 1, doc.number
    return responses


def check(url: str, tenants, journal: Journal) -> dict[str, dict]:
    """All checks, from a fresh engine, on one snapshot; the responses stored by key."""
    engine = make_engine(url, pool=False)
    if engine.dialect.name == "postgresql":  # SQLite transactions see one snapshot anyway
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            stored = {}
            for tenant, _ in tenants:
                stored |= check_tenant(connection, tenant, journal)
            connection.rollback()
    finally:
        engine.dispose()
    assert set(journal.acked) <= set(stored)
    return stored


def counts(url: str) -> dict[str, int]:
    tables = (
        t.orders,
        t.order_items,
        t.documents,
        t.document_lines,
        t.ledger_entries,
        t.subscription_terms,
        t.idempotency_keys,
        t.audit_log,
        t.outbox,
    )
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection:
            found = {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in tables
            }
            found["numbers"] = connection.execute(select(func.sum(t.number_series.c.last))).scalar()
            connection.rollback()
    finally:
        engine.dispose()
    return found


def principal_of(engine, tenant: int, user: int):
    with engine.connect() as connection:
        return load_principal(connection, tenant, user)


# the test ----------------------------------------------------------------------------------


def test_checkout_survives_sigkill(db_url, engine, tmp_path):
    began = time.monotonic()
    tenants = populate(engine)
    journal_path = tmp_path / "journal.jsonl"
    journal = Journal(journal_path)
    rng = random.Random(SEED)
    server = ForkServer(db_url, journal_path, tenants, tmp_path / "worker.err")
    try:
        for run in range(KILLS):
            server.start(run, rng.randrange(2**32))
            time.sleep(rng.uniform(*DELAY))
            server.kill()
            journal.read()
            fork_server.wait_for_backends(db_url, journal.backends[run])
            stored = check(db_url, tenants, journal)  # the restart finds a whole store
    finally:
        server.close()
    interrupted = journal.in_flight()
    for keys in journal.runs.values():  # only the last checkout of a run can be in flight
        assert not set(keys[:-1]) & set(interrupted)
    committed = [key for key in interrupted if key in stored]
    assert len(journal.acked) > KILLS, "too few checkouts acknowledged to mean anything"

    # Replays: acknowledged keys, and keys committed but not acknowledged, write nothing.
    before = counts(db_url)
    replayed = rng.sample(sorted(journal.acked), min(40, len(journal.acked))) + committed
    for key in replayed:
        entry = journal.started[key]
        principal = principal_of(engine, entry["tenant"], entry["user"])
        items = [
            ChangeInput(**{**body, "add_products": tuple(body["add_products"])})
            for body in entry["items"]
        ]
        at = datetime.fromisoformat(entry["at"])
        response = subscriptions.checkout(engine, principal, items, at=at, key=key)
        assert response == stored[key], key
        if key in journal.acked:
            assert response == journal.acked[key]["response"], key
    assert counts(db_url) == before

    # The store still works after the crashes: a new checkout per tenant, numbers go on.
    for tenant, user in tenants:
        principal = principal_of(engine, tenant, user)
        with engine.connect() as connection:
            key, quantity = connection.execute(
                select(t.subscriptions.c.key, t.subscriptions.c.quantity)
                .where(t.subscriptions.c.tenant_id == tenant)
                .order_by(t.subscriptions.c.key)
                .limit(1)
            ).one()
        result = subscriptions.checkout(
            engine,
            principal,
            [ChangeInput(key, quantity=quantity % 6 + 1)],
            at=datetime(2024, 3, 14, 12, tzinfo=ZONE),
            key=f"after-{tenant}",
        )
        assert result["status"] == "completed"
        journal.used_by_test.add(f"after-{tenant}")
    check(db_url, tenants, journal)

    print(
        f"\n{engine.dialect.name}: {KILLS} kills in {time.monotonic() - began:.1f}s; "
        f"{len(journal.started)} checkouts started, {len(journal.acked)} acknowledged; "
        f"{len(interrupted)} interrupted by a kill: {len(journal.begun & set(interrupted))} "
        f"inside a transaction, {len(journal.wrote & set(interrupted))} after writing, "
        f"{len(committed)} committed unacknowledged, {len(interrupted) - len(committed)} "
        f"rolled back; {journal.torn} torn journal lines"
    )

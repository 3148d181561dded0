"""Concurrency on the store, on SQLite and on PostgreSQL.

- Many checkouts made against one version, released together (50 threads, then 16
  processes of their own): exactly one applies, every other one is a version conflict and
  nothing else; the version moves by one, document numbers stay gapless and the credit
  ledger balances.
- One idempotency key replayed a hundred times, twenty of them at once: one effect, one
  response, and the key refuses a different body.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.services import subscriptions
from prorata.services.errors import IdempotencyMismatch
from prorata.services.subscriptions import ChangeInput
from tests.store.concurrent_worker import checkout_once, describe
from tests.store.world import World, build

CALLERS = 50
PROCESSES = 16  # each spawned process imports the whole engine: 16 keep the test short
CONFLICT = "prorata.services.errors.Conflict"


def run_together(count: int, call: Callable[[int], Any]) -> list[dict[str, Any]]:
    """``call(0..count-1)`` in ``count`` threads released at once; what each did."""
    barrier = threading.Barrier(count, timeout=30)
    outcomes: list[dict[str, Any] | None] = [None] * count

    def one(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = describe(call(index))
        except BaseException as exc:
            outcomes[index] = describe(error=exc)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a caller never returned"
    return outcomes


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def stored_version(world: World, key: str = "s1") -> int:
    with world.engine.connect() as connection:
        return connection.execute(
            select(t.subscriptions.c.version).where(
                t.subscriptions.c.tenant_id == world.tenant, t.subscriptions.c.key == key
            )
        ).scalar_one()


def assert_numbers_gapless(engine) -> None:
    """Per tenant and series: numbers 1..n, each once, and the series counter at n."""
    with engine.connect() as connection:
        rows = connection.execute(select(t.documents.c.tenant_id, t.documents.c.number)).all()
        series_last = {
            (row.tenant_id, row.series): row.last
            for row in connection.execute(select(t.number_series))
        }
    numbers: dict[tuple[int, str], list[str]] = defaultdict(list)
    for tenant_id, number in rows:
        prefix = number.partition("-")[0]
        assert prefix in ("INV", "CN"), number
        numbers[tenant_id, prefix].append(number)
    assert numbers, "no documents at all"
    for (tenant_id, prefix), issued in numbers.items():
        expected = [f"{prefix}-{n:04d}" for n in range(1, len(issued) + 1)]
        assert sorted(issued) == expected, (tenant_id, prefix, sorted(issued))
        assert series_last[tenant_id, prefix] == len(issued), (tenant_id, prefix)


def assert_ledger_balances(engine) -> None:
    """Per account: the ledger is what the documents say, and it never goes below zero."""
    d = t.documents
    with engine.connect() as connection:
        from_documents = {
            (row.account_id, row.currency): int(row.added) + int(row.noted) - int(row.applied)
            for row in connection.execute(
                select(
                    d.c.account_id,
                    d.c.currency,
                    func.sum(d.c.credit_added_minor).label("added"),
                    func.coalesce(
                        func.sum(d.c.total_minor).filter(
                            d.c.type == "credit_note", d.c.credited_to == "account"
                        ),
                        0,
                    ).label("noted"),
                    func.sum(d.c.credit_applied_minor).label("applied"),
                ).group_by(d.c.account_id, d.c.currency)
            )
        }
        entries = connection.execute(
            select(
                t.ledger_entries.c.account_id,
                t.ledger_entries.c.currency,
                t.ledger_entries.c.amount_minor,
            ).order_by(t.ledger_entries.c.id)
        ).all()
    balances: dict[tuple[int, str], int] = defaultdict(int)
    for account_id, currency, amount in entries:
        balances[account_id, currency] += amount
        assert balances[account_id, currency] >= 0, (account_id, currency, "went negative")
    for key in set(balances) | set(from_documents):
        assert balances.get(key, 0) == from_documents.get(key, 0), key


def snapshot(engine) -> dict[str, int]:
    tables = (t.orders, t.order_items, t.documents, t.ledger_entries, t.audit_log, t.outbox)
    return {table.name: count(engine, table) for table in tables}


def grown(before: dict[str, int], **added: int) -> dict[str, int]:
    return {name: rows + added.get(name, 0) for name, rows in before.items()}


def ledger_entries_of(document: dict[str, Any]) -> int:
    if document["type"] == "credit_note":
        return int(document["credited_to"] == "account")
    return int(document["credit_applied"] != "0.00") + int(document["credit_added"] != "0.00")


# many checkouts against one version -------------------------------------------------------


def prepare(engine):
    """The world, after a decrease that leaves credit on the account; the instant of the
    storm and the version every caller expects."""
    world = build(engine)
    owner = world.principals["owner"]
    subscriptions.checkout(engine, owner, [ChangeInput("s1", quantity=1)], at=world.at(20))
    at = world.at(21)
    version = subscriptions.get_subscription(engine, owner, "s1", at=at)["version"]
    assert stored_version(world) == version  # nothing was due: reading changed nothing
    assert_ledger_balances(engine)
    return world, at, version


def conflicting_change(index: int, version: int) -> dict[str, Any]:
    """Every caller asks for something else: quantities 3..52, every other one premium."""
    return {
        "subscription": "s1",
        "quantity": 3 + index,
        "plan": "premium-monthly" if index % 2 else None,
        "expected_version": version,
    }


def check_storm(world: World, at, version: int, before: dict[str, int], outcomes) -> None:
    assert all(o is not None for o in outcomes), outcomes
    won = [i for i, o in enumerate(outcomes) if o["ok"]]
    lost = [o for o in outcomes if not o["ok"]]
    assert len(won) == 1, f"{len(won)} checkouts applied: {won}"
    not_conflicts = [o for o in lost if (o["type"], o["code"]) != (CONFLICT, "version_conflict")]
    assert not not_conflicts, not_conflicts[:3]
    # Every loser saw the winner's version under the lock (not a failed compare-and-set).
    seen = {"subscription": "s1", "expected": version, "found": version + 1}
    assert all(o["details"] == seen for o in lost), [o for o in lost if o["details"] != seen][:3]

    winner = won[0]
    change = conflicting_change(winner, version)
    response = outcomes[winner]["response"]
    (item,) = response["items"]
    assert item["status"] == "applied" and item["version"] == version + 1
    assert stored_version(world) == version + 1
    owner = world.principals["owner"]
    sub = subscriptions.get_subscription(world.engine, owner, "s1", at=at)
    assert sub["quantity"] == change["quantity"]
    assert sub["plan"] == (change["plan"] or "standard-monthly")

    documents = item["documents"]
    assert documents and documents[-1]["credit_applied"] == "37.24"  # the credit, used once
    assert snapshot(world.engine) == grown(
        before,
        orders=1,
        order_items=1,
        documents=len(documents),
        ledger_entries=sum(ledger_entries_of(doc) for doc in documents),
        audit_log=1,  # the winner's change; the losers left nothing behind
        outbox=1 + len(documents),
    )
    assert_numbers_gapless(world.engine)
    assert_ledger_balances(world.engine)


def test_conflicting_checkouts_in_threads_one_applies(engine):
    world, at, version = prepare(engine)
    owner = world.principals["owner"]
    before = snapshot(engine)

    def checkout(index: int):
        item = ChangeInput(**conflicting_change(index, version))
        return subscriptions.checkout(engine, owner, [item], at=at)

    check_storm(world, at, version, before, run_together(CALLERS, checkout))


def test_conflicting_checkouts_in_processes_one_applies(engine, db_url):
    world, at, version = prepare(engine)
    before = snapshot(engine)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES, timeout=120)
    results = context.Queue()
    user = world.users["owner"]
    processes = [
        context.Process(
            target=checkout_once,
            args=(
                i,
                db_url,
                world.tenant,
                user,
                conflicting_change(i, version),
                at,
                barrier,
                results,
            ),
            daemon=True,
        )
        for i in range(PROCESSES)
    ]
    outcomes: list[dict[str, Any] | None] = [None] * PROCESSES
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + 180
        while any(o is None for o in outcomes) and time.monotonic() < deadline:
            try:
                index, outcome = results.get(timeout=1)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    break  # everyone exited; what they put is in the queue already
                continue
            outcomes[index] = outcome
        for process in processes:
            process.join(timeout=30)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    missing = [i for i, o in enumerate(outcomes) if o is None]
    assert not missing, f"{len(missing)} of {PROCESSES} processes never reported: {missing[:5]}"
    setup_failures = [o for o in outcomes if o.get("phase") == "setup"]
    assert not setup_failures, setup_failures[:3]
    assert all(process.exitcode == 0 for process in processes)
    check_storm(world, at, version, before, outcomes)


# one idempotency key, replayed ----------------------------------------------------------


@pytest.fixture
def world(engine):
    return build(engine)


def test_a_replayed_key_has_one_effect_and_one_response(world):
    engine, owner = world.engine, world.principals["owner"]
    at = world.at(20, month=1)  # before the first renewal: the checkout is the only effect
    version = subscriptions.get_subscription(engine, owner, "s1", at=at)["version"]
    cart = [ChangeInput("s1", quantity=7, expected_version=version)]
    before = snapshot(engine)
    invoices = count_invoices(engine)

    def replay(_index: int = 0):
        return subscriptions.checkout(engine, owner, cart, at=at, key="replayed-key")

    outcomes = run_together(20, replay)
    assert all(o["ok"] for o in outcomes), [o for o in outcomes if not o["ok"]][:3]
    responses = [o["response"] for o in outcomes]
    responses += [replay() for _ in range(80)]
    assert len(responses) == 100
    first = responses[0]
    assert all(response == first for response in responses)
    assert first["items"][0]["status"] == "applied"
    assert len(first["items"][0]["documents"]) == 1
    assert first["items"][0]["version"] == version + 1

    after = snapshot(engine)
    assert after == grown(before, orders=1, order_items=1, documents=1, audit_log=1, outbox=2)
    assert count_invoices(engine) == invoices + 1
    assert stored_version(world) == version + 1
    assert count(engine, t.idempotency_keys) == 1

    with pytest.raises(IdempotencyMismatch):
        subscriptions.checkout(
            engine,
            owner,
            [ChangeInput("s1", quantity=8, expected_version=version)],
            at=at,
            key="replayed-key",
        )
    assert snapshot(engine) == after
    assert stored_version(world) == version + 1
    assert_numbers_gapless(engine)
    assert_ledger_balances(engine)


def count_invoices(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).where(t.documents.c.type == "invoice")
        ).scalar_one()
